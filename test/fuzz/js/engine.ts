// The JavaScript fuzzer's engine: what a target is, and the loop that feeds it mutated inputs.
//
// A target (targets/*.ts) turns bytes into a call of a JavaScript or WebAssembly parser of the package and checks
// what comes out: a well-formed result, or a typed ShowO2Error with one of the codes its documentation promises. Any
// other exception, or a result that breaks an invariant, is a finding. The loop is mutation-based: it keeps a corpus
// (the seeds plus every input that produced an outcome not seen before, as `run` labels it) and feeds the target
// mutated copies of corpus entries. It has no code-coverage feedback; the outcome labels (distinct error messages,
// distinct decoded formats and sizes) stand in for it. run.ts runs the loop in a worker thread and watches it for
// hangs and memory blow-ups.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { ShowO2Error } from '../../../dist/errors.js';
import { dictionaryWord, mutate, Rng, type MutationContext } from './mutate.js';

export { Rng } from './mutate.js';

export interface FuzzTarget {
  name: string;
  /** One line: what the target calls and what it checks (printed by `run.js --list`). */
  description: string;
  /** Inputs are cut to this many bytes. */
  maxLength: number;
  /** Words the mutator inserts: chunk names, markers, special tokens (`\xNN` escapes allowed). */
  dictionary: readonly (string | Uint8Array)[];
  /** The starting corpus: real files from test/fixtures (never empty). */
  seeds(): Uint8Array[];
  /** Runs once per worker before the first input (loading a tokenizer, say). */
  setup?(): Promise<void>;
  /** A format-aware mutation, used for a quarter of the inputs (undefined: fall back to the byte-level ones). */
  mutate?(data: Uint8Array, rng: Rng): Uint8Array | undefined;
  /** A repair applied to half the mutated inputs, so edits reach past checksums and size fields. */
  repair?(data: Uint8Array, rng: Rng): Uint8Array;
  /**
   * Runs one input and returns a short label of the outcome (inputs with a label not seen before join the corpus).
   * Throws a {@link FuzzFinding} when an invariant fails; any other exception is a finding as well.
   */
  run(data: Uint8Array): string | Promise<string>;
}

/** An invariant that did not hold. */
export class FuzzFinding extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FuzzFinding';
  }
}

/** Throws a FuzzFinding unless `condition` holds. */
export function check(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) throw new FuzzFinding(typeof message === 'string' ? message : message());
}

/**
 * The label of an expected error, or a FuzzFinding: `err` must be a ShowO2Error with one of `codes` and a message
 * matching `mentions` (the option or format the documentation says the message names).
 */
export function expectedError(err: unknown, codes: readonly string[], mentions: RegExp): string {
  if (!(err instanceof ShowO2Error)) {
    throw new FuzzFinding(`not a ShowO2Error: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`, { cause: err });
  }
  if (!codes.includes(err.code)) throw new FuzzFinding(`unexpected code ${err.code} (expected ${codes.join(' or ')}): ${err.message}`, { cause: err });
  if (!mentions.test(err.message)) throw new FuzzFinding(`the ${err.code} message does not match ${mentions}: ${err.message}`, { cause: err });
  return `${err.code}:${messageShape(err.message)}`;
}

/**
 * A message without what varies with every input (byte dumps, numbers, quoted values), so that each distinct kind of
 * error is one outcome.
 */
export function messageShape(message: string): string {
  return message
    .replace(/"(?:[^"\\]|\\.)*"|'[^']*'|`[^`]*`/g, '<s>')
    .replace(/(?:\b[0-9a-f]{2}\b ?){2,}/gi, '<bytes> ')
    .replace(/0x[0-9a-f]+|\d+(?:\.\d+)?(?:e[+-]?\d+)?/gi, '#')
    .slice(0, 120);
}

export function sha1(data: Uint8Array): string {
  return createHash('sha1').update(data).digest('hex');
}

/** Shared between the loop (worker) and the watchdog (main thread): the input being run and a progress counter. */
export interface SharedState {
  /** [0]: executions so far; [1]: length of the current input. */
  counters: Int32Array;
  current: Uint8Array;
}

export function createSharedState(maxLength: number): { buffers: [SharedArrayBuffer, SharedArrayBuffer] } & SharedState {
  const a = new SharedArrayBuffer(8);
  const b = new SharedArrayBuffer(maxLength);
  return { buffers: [a, b], counters: new Int32Array(a), current: new Uint8Array(b) };
}

export function attachSharedState([a, b]: readonly [SharedArrayBuffer, SharedArrayBuffer]): SharedState {
  return { counters: new Int32Array(a), current: new Uint8Array(b) };
}

export function currentInput(state: SharedState): Uint8Array {
  return state.current.slice(0, Atomics.load(state.counters, 1));
}

export interface LoopOptions {
  runs: number;
  seconds: number;
  seed: number;
  corpusDir: string;
  /** Called every couple of seconds and at the end. */
  onStats?: (stats: LoopStats) => void;
}

export interface LoopStats {
  execs: number;
  corpus: number;
  outcomes: number;
  elapsedMs: number;
}

function readCorpusDir(dir: string): Uint8Array[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .sort()
    .map((name) => new Uint8Array(fs.readFileSync(path.join(dir, name))));
}

/** Most inputs kept in memory; beyond it new outcomes still count but their inputs are only written to disk. */
const CORPUS_CAP = 8192;

/**
 * The fuzzing loop: every seed and saved corpus entry once as it is, then mutated inputs until `runs` executions
 * or `seconds` have passed (whichever comes first; 0 means no limit of that kind). A finding propagates as the
 * exception; the current input is in `state` for the caller to save.
 */
export async function fuzzLoop(target: FuzzTarget, state: SharedState, options: LoopOptions): Promise<LoopStats> {
  const rng = new Rng(options.seed);
  const dictionary = target.dictionary.map(dictionaryWord);
  const corpus: Uint8Array[] = [...target.seeds(), ...readCorpusDir(options.corpusDir)];
  if (corpus.length === 0) throw new Error(`fuzz target ${target.name} has no seeds`);
  fs.mkdirSync(options.corpusDir, { recursive: true });
  const outcomes = new Set<string>();
  const started = Date.now();
  let lastStats = started;
  let execs = 0;
  const ctx: MutationContext = { rng, dictionary, other: () => rng.pick(corpus), maxLength: target.maxLength };
  const stats = (): LoopStats => ({ execs, corpus: corpus.length, outcomes: outcomes.size, elapsedMs: Date.now() - started });

  const runOne = async (input: Uint8Array, keep: boolean): Promise<void> => {
    state.current.set(input.subarray(0, state.current.length));
    Atomics.store(state.counters, 1, Math.min(input.length, state.current.length));
    const label = await target.run(input);
    execs++;
    Atomics.store(state.counters, 0, execs);
    if (!outcomes.has(label)) {
      outcomes.add(label);
      if (keep) {
        if (corpus.length < CORPUS_CAP) corpus.push(input);
        fs.writeFileSync(path.join(options.corpusDir, sha1(input)), input);
      }
    }
  };

  const initial = corpus.length;
  for (let i = 0; i < initial; i++) await runOne(corpus[i]!.slice(0, target.maxLength), false);
  const limitMs = options.seconds > 0 ? options.seconds * 1000 : Infinity;
  const limitRuns = options.runs > 0 ? options.runs : Infinity;
  while (execs < limitRuns && Date.now() - started < limitMs) {
    const base = rng.pick(corpus);
    let input = (target.mutate && rng.chance(0.25) ? target.mutate(base, rng) : undefined) ?? mutate(base, ctx);
    if (target.repair && rng.chance(0.5)) input = target.repair(input, rng);
    if (input.length > target.maxLength) input = input.slice(0, target.maxLength);
    await runOne(input, true);
    if (options.onStats && Date.now() - lastStats > 2000) {
      lastStats = Date.now();
      options.onStats(stats());
    }
  }
  return stats();
}
