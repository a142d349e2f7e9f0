// The tokenizer input path on the bundled Qwen2.5 vocabulary: any text (valid UTF-8, invalid UTF-8, lone UTF-16
// surrogates, special-token strings) through encode, decode and the streaming decoder, and any id sequence through
// decode. Checks: encode never throws and gives ids in [0, vocabSize); decode(encode(text)) is the text as the
// tokenizer normalizes it (well-formed, NFC); the stream decoder's chunks add up to decode's text, with and without
// special tokens; out-of-range ids are ERR_INVALID_ARGUMENT naming them.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { ShowO2Tokenizer } from '../../../../dist/tokenizer.js';
import { repoRoot } from '../../../helpers.js';
import { check, expectedError, type FuzzTarget } from '../engine.js';

let tokenizer: ShowO2Tokenizer | undefined;

const SPECIAL = ['<|im_start|>', '<|im_end|>', '<|vision_start|>', '<|vision_end|>', '<|endoftext|>', '<|image_pad|>', '<|video_pad|>', '[PAD]', '<image>'];

// Input modes, the first byte.
const UTF8 = 0;
const UTF16 = 1;
const IDS = 2;

function utf16(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i + 1 < bytes.length; i += 2) s += String.fromCharCode(bytes[i]! | (bytes[i + 1]! << 8));
  return s;
}

/** Lone surrogates replaced by U+FFFD (String.prototype.toWellFormed, not in TypeScript's ES2022 lib). */
function wellFormed(s: string): string {
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

function streamed(t: ShowO2Tokenizer, ids: readonly number[], skipSpecialTokens: boolean): string {
  const stream = t.createStreamDecoder({ skipSpecialTokens });
  let text = '';
  for (const id of ids) text += stream.push(id);
  return text + stream.flush();
}

function checkDecoding(t: ShowO2Tokenizer, ids: readonly number[]): void {
  for (const skipSpecialTokens of [false, true]) {
    const whole = t.decode(ids, { skipSpecialTokens });
    const pieces = streamed(t, ids, skipSpecialTokens);
    check(pieces === whole, () => `stream decoding (skipSpecialTokens ${skipSpecialTokens}) gave ${JSON.stringify(pieces)}, decode ${JSON.stringify(whole)}`);
  }
}

export const tokenizerTarget: FuzzTarget = {
  name: 'tokenizer',
  description: 'ShowO2Tokenizer encode / decode / stream decoder on any text and id sequence: ids in range, exact round trip, stream = decode',
  maxLength: 256,
  dictionary: [
    ...SPECIAL,
    '\\xf0\\x9f\\x98\\x80', '\\xe4\\xbd\\xa0\\xe5\\xa5\\xbd', '\\xcc\\x81', '\\xed\\xa0\\x80', '\\xef\\xbf\\xbd', '\\xc3\\xa9',
    '\\x0d\\x0a', "'s", "'ll", '   ', '\\x00', '\\xe2\\x80\\x8b',
  ],
  seeds: () => {
    const corpus = JSON.parse(fs.readFileSync(path.join(repoRoot, 'test', 'fixtures', 'tokenizer', 'corpus.json'), 'utf8')) as {
      entries: { text: string }[];
    };
    const encoder = new TextEncoder();
    const seeds = corpus.entries.map((e) => Uint8Array.from([UTF8, ...encoder.encode(e.text)]));
    seeds.push(Uint8Array.from([UTF16, 0x3d, 0xd8, 0x00, 0xde, 0x3d, 0xd8, 0x41, 0x00])); // an emoji, then a lone surrogate
    seeds.push(Uint8Array.from([IDS, 0x2c, 0x4f, 0x02, 0x00, 0x2d, 0x4f, 0x02, 0x00, 0x99, 0x07, 0x00, 0x00]));
    return seeds;
  },
  setup: async () => {
    tokenizer = await ShowO2Tokenizer.load();
  },
  run(input) {
    const t = tokenizer!;
    const mode = (input[0] ?? 0) % 3;
    const body = input.subarray(1);
    if (mode === IDS) {
      const ids: number[] = [];
      // Little-endian 32-bit words, mostly folded into the vocabulary, some just past it.
      for (let i = 0; i + 3 < body.length; i += 4) {
        const word = (body[i]! | (body[i + 1]! << 8) | (body[i + 2]! << 16) | (body[i + 3]! << 24)) >>> 0;
        ids.push(word % 512 === 511 ? t.vocabSize + (word % 7) : word % t.vocabSize);
      }
      const bad = ids.findIndex((id) => id >= t.vocabSize);
      if (bad >= 0) {
        try {
          t.decode(ids);
        } catch (err) {
          return expectedError(err, ['ERR_INVALID_ARGUMENT'], /ids\[\d+\]/);
        }
        throw new Error(`decode accepted id ${ids[bad]} >= vocabSize ${t.vocabSize}`);
      }
      checkDecoding(t, ids);
      return `ok:ids:${Math.min(ids.length, 4)}`;
    }
    const text = mode === UTF8 ? new TextDecoder().decode(body) : utf16(body);
    const ids = t.encode(text);
    for (const id of ids) check(Number.isInteger(id) && id >= 0 && id < t.vocabSize, `encode gave id ${id}`);
    const expected = wellFormed(text).normalize('NFC');
    const decoded = t.decode(ids);
    check(decoded === expected, () => `decode(encode(text)) = ${JSON.stringify(decoded)}, expected ${JSON.stringify(expected)}`);
    checkDecoding(t, ids);
    const special = SPECIAL.some((s) => text.includes(s));
    return `ok:text:${mode}:${special}:${Math.min(ids.length, 8)}`;
  },
};
