// Byte-level mutations for the JavaScript fuzzer (engine.ts), in the spirit of libFuzzer's MutationDispatcher: each
// new input is a corpus entry with a stack of 1 to 8 random edits (bit flips, interesting integers, arithmetic on
// size fields, erasing, inserting and copying ranges, dictionary words, crossover with another entry). A seeded
// generator makes a run reproducible from its seed.

/** A small, fast, seedable generator (mulberry32). */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A uniform integer in [0, n); n >= 1. */
  below(n: number): number {
    return n <= 1 ? 0 : this.u32() % n;
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.u32() / 4294967296 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }
}

// Values that sit on parser boundaries: zero, one, sign bits, all ones, powers of two around common limits.
const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff, 0x10, 0x20, 0x40, 0x64];
const INTERESTING_16 = [0, 1, 0x7fff, 0x8000, 0xffff, 0x100, 0x200, 0x400, 0x3fff, 0x4000, 0x4001];
const INTERESTING_32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x10000, 0x100000, 0x40000000, 0x4001, 0x10000000];

function splice(data: Uint8Array, at: number, remove: number, insert: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length - remove + insert.length);
  out.set(data.subarray(0, at), 0);
  out.set(insert, at);
  out.set(data.subarray(at + remove), at + insert.length);
  return out;
}

function writeUint(data: Uint8Array, at: number, bytes: number, value: number, bigEndian: boolean): void {
  for (let i = 0; i < bytes; i++) {
    const shift = 8 * (bigEndian ? bytes - 1 - i : i);
    data[at + i] = Math.floor(value / 2 ** shift) & 0xff;
  }
}

function readUint(data: Uint8Array, at: number, bytes: number, bigEndian: boolean): number {
  let v = 0;
  for (let i = 0; i < bytes; i++) v = v * 256 + data[at + (bigEndian ? i : bytes - 1 - i)]!;
  return v;
}

export interface MutationContext {
  rng: Rng;
  dictionary: readonly Uint8Array[];
  /** Another corpus entry, for crossover. */
  other: () => Uint8Array;
  maxLength: number;
}

type Mutator = (data: Uint8Array, ctx: MutationContext) => Uint8Array;

const MUTATORS: readonly Mutator[] = [
  // Flip one bit.
  (d, { rng }) => {
    if (d.length === 0) return d;
    const out = d.slice();
    out[rng.below(out.length)]! ^= 1 << rng.below(8);
    return out;
  },
  // Set one byte to a random or an interesting value.
  (d, { rng }) => {
    if (d.length === 0) return d;
    const out = d.slice();
    out[rng.below(out.length)] = rng.chance(0.5) ? rng.below(256) : rng.pick(INTERESTING_8);
    return out;
  },
  // Overwrite a 16- or 32-bit field (either byte order) with an interesting value.
  (d, { rng }) => {
    const bytes = rng.chance(0.5) ? 2 : 4;
    if (d.length < bytes) return d;
    const out = d.slice();
    const value = bytes === 2 ? rng.pick(INTERESTING_16) : rng.pick(INTERESTING_32);
    writeUint(out, rng.below(out.length - bytes + 1), bytes, value, rng.chance(0.5));
    return out;
  },
  // Add a small signed delta to a 8-, 16- or 32-bit field: sizes and counts one off.
  (d, { rng }) => {
    const bytes = rng.pick([1, 2, 4]);
    if (d.length < bytes) return d;
    const out = d.slice();
    const at = rng.below(out.length - bytes + 1);
    const bigEndian = rng.chance(0.5);
    const delta = rng.below(33) - 16 || 1;
    const modulus = 2 ** (8 * bytes);
    writeUint(out, at, bytes, (readUint(out, at, bytes, bigEndian) + delta + modulus) % modulus, bigEndian);
    return out;
  },
  // Erase a range.
  (d, { rng }) => {
    if (d.length < 2) return d;
    const at = rng.below(d.length);
    const n = 1 + rng.below(Math.min(d.length - at, rng.chance(0.8) ? 16 : d.length));
    return splice(d, at, n, new Uint8Array(0));
  },
  // Insert random bytes or a run of one byte.
  (d, { rng }) => {
    const n = 1 + rng.below(rng.chance(0.8) ? 8 : 256);
    const insert = new Uint8Array(n);
    if (rng.chance(0.5)) insert.fill(rng.chance(0.5) ? rng.below(256) : rng.pick(INTERESTING_8));
    else for (let i = 0; i < n; i++) insert[i] = rng.below(256);
    return splice(d, rng.below(d.length + 1), 0, insert);
  },
  // Copy a range of the input over another place in it, or insert the copy.
  (d, { rng }) => {
    if (d.length < 2) return d;
    const from = rng.below(d.length);
    const n = 1 + rng.below(Math.min(d.length - from, 64));
    const part = d.slice(from, from + n);
    const to = rng.below(d.length);
    if (rng.chance(0.5)) return splice(d, to, 0, part);
    const out = d.slice();
    out.set(part.subarray(0, Math.min(n, out.length - to)), to);
    return out;
  },
  // Insert or overwrite with a dictionary word (chunk names, markers, special tokens).
  (d, { rng, dictionary }) => {
    if (dictionary.length === 0) return d;
    const word = rng.pick(dictionary);
    const at = rng.below(d.length + 1);
    if (rng.chance(0.5) || at + word.length > d.length) return splice(d, at, 0, word);
    const out = d.slice();
    out.set(word, at);
    return out;
  },
  // Crossover: a prefix of this input with a suffix of another.
  (d, { rng, other }) => {
    const o = other();
    const cut = rng.below(d.length + 1);
    const from = rng.below(o.length + 1);
    return splice(d, cut, d.length - cut, o.subarray(from));
  },
  // Truncate.
  (d, { rng }) => (d.length < 2 ? d : d.slice(0, rng.below(d.length))),
];

/** One mutated copy of `data`: 1 to 8 stacked edits, capped at `maxLength` bytes. */
export function mutate(data: Uint8Array, ctx: MutationContext): Uint8Array {
  let out = data;
  const edits = 1 + ctx.rng.below(ctx.rng.chance(0.7) ? 3 : 8);
  for (let i = 0; i < edits; i++) out = ctx.rng.pick(MUTATORS)(out, ctx);
  return out.length > ctx.maxLength ? out.slice(0, ctx.maxLength) : out;
}

/** Bytes of a dictionary word: a string as UTF-8 (or latin-1 with `\xNN` escapes, as in libFuzzer's .dict files). */
export function dictionaryWord(word: string | Uint8Array): Uint8Array {
  if (word instanceof Uint8Array) return word;
  if (/\\x[0-9a-fA-F]{2}/.test(word)) {
    const bytes: number[] = [];
    for (let i = 0; i < word.length; i++) {
      const m = /^\\x([0-9a-fA-F]{2})/.exec(word.slice(i));
      if (m) {
        bytes.push(parseInt(m[1]!, 16));
        i += 3;
      } else {
        bytes.push(word.charCodeAt(i) & 0xff);
      }
    }
    return Uint8Array.from(bytes);
  }
  return new TextEncoder().encode(word);
}
