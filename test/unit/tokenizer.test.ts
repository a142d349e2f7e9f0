// ShowO2Tokenizer against Python's `tokenizers` (tools/fixtures/make_tokenizer_fixtures.py) on the corpus in
// test/fixtures/tokenizer/, Show-o2's special ids (spec §2.2), streaming detokenization, a tiny custom tokenizer.json,
// and typed errors.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import test from 'ava';

import { ShowO2Error, ShowO2Tokenizer, type ShowO2SpecialTokens } from 'showo2';
import { repoRoot, tempDir } from '../helpers.js';

const fixtureDir = path.join(repoRoot, 'test', 'fixtures', 'tokenizer');

interface CorpusEntry {
  name: string;
  text: string;
}
interface ExpectedEntry {
  name: string;
  ids: number[];
  decoded: string;
  decoded_skip_special: string;
}
interface Expected {
  source: { path: string; sha256: string };
  vocab_size: number;
  special: ShowO2SpecialTokens;
  entries: ExpectedEntry[];
}

const readFixture = (name: string): unknown => JSON.parse(fs.readFileSync(path.join(fixtureDir, name), 'utf8'));
const corpus = (readFixture('corpus.json') as { entries: CorpusEntry[] }).entries;
const expected = readFixture('expected.json') as Expected;
const bundledPath = path.join(repoRoot, expected.source.path);
const bundledBytes = fs.readFileSync(bundledPath);
const bundledJson = JSON.parse(bundledBytes.toString('utf8')) as Record<string, unknown>;

const tokenizerPromise = ShowO2Tokenizer.load();

/** Spec §2.2, written out: the ids Show-o2's reference gets from the Qwen2.5 tokenizer. */
const SPEC_IDS: ShowO2SpecialTokens = {
  bos: 151644,
  eos: 151645,
  boi: 151652,
  eoi: 151653,
  imgPad: 151655,
  vidPad: 151656,
  pad: 151665,
  img: 151666,
  bov: 151667,
  eov: 151668,
};

function textOf(name: string): string {
  const entry = corpus.find((e) => e.name === name);
  if (!entry) throw new Error(`no corpus entry ${name}`);
  return entry.text;
}

/** Decodes ids one at a time through a stream decoder; returns the chunks (flush last). */
function streamChunks(tokenizer: ShowO2Tokenizer, ids: readonly number[], skipSpecialTokens = false): string[] {
  const stream = tokenizer.createStreamDecoder({ skipSpecialTokens });
  const chunks = ids.map((id) => stream.push(id));
  chunks.push(stream.flush());
  return chunks;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

test('the bundled tokenizer.json is the file the fixtures were made from', (t) => {
  t.is(createHash('sha256').update(bundledBytes).digest('hex'), expected.source.sha256,
    `${expected.source.path} changed: rerun tools/fixtures/make_tokenizer_fixtures.py and review the diff`);
  t.is(corpus.length, expected.entries.length);
  t.deepEqual(corpus.map((e) => e.name), expected.entries.map((e) => e.name));
});

test('special ids of the bundled vocabulary are spec §2.2', async (t) => {
  const tokenizer = await tokenizerPromise;
  t.deepEqual({ ...tokenizer.special }, SPEC_IDS);
  t.deepEqual({ ...tokenizer.special }, expected.special);
  t.is(tokenizer.vocabSize, 151669);
  t.true(Object.isFrozen(tokenizer.special));
  t.is(tokenizer.idToToken(151665), '[PAD]');
  t.is(tokenizer.idToToken(151666), '<image>');
  t.is(tokenizer.idToToken(151667), '<|vid_start|>');
  t.is(tokenizer.idToToken(151668), '<|vid_end|>');
  t.is(tokenizer.idToToken(151643), '<|endoftext|>');
  t.is(tokenizer.idToToken(151669), undefined);
  t.is(tokenizer.idToToken(-1), undefined);
  // The Qwen3 extras of the bundled file are gone.
  for (const extra of ['<tool_response>', '</tool_response>', '<think>', '</think>']) {
    t.is(tokenizer.tokenToId(extra), undefined);
  }
  t.is(tokenizer.tokenToId('<|im_end|>'), 151645);
  t.is(tokenizer.tokenToId('Ġworld'), 1879);
  t.is(tokenizer.idToToken(1879), 'Ġworld');
});

test('encode matches Python tokenizers on every corpus entry', async (t) => {
  const tokenizer = await tokenizerPromise;
  for (const [i, entry] of corpus.entries()) {
    const want = expected.entries[i]!;
    const ids = tokenizer.encode(entry.text);
    const first = ids.findIndex((id, k) => id !== want.ids[k]);
    t.deepEqual(ids, want.ids, `${entry.name}: ${ids.length} vs ${want.ids.length} ids, first difference at ${first}`);
    t.true(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tokenizer.vocabSize), entry.name);
  }
});

test('decode matches Python tokenizers, with and without special tokens', async (t) => {
  const tokenizer = await tokenizerPromise;
  for (const want of expected.entries) {
    t.is(tokenizer.decode(want.ids), want.decoded, want.name);
    t.is(tokenizer.decode(want.ids, { skipSpecialTokens: true }), want.decoded_skip_special, want.name);
  }
});

test('decode(encode(text)) gives back the text (in NFC, Qwen2.5 normalizes)', async (t) => {
  const tokenizer = await tokenizerPromise;
  for (const { name, text } of corpus) t.is(tokenizer.decode(tokenizer.encode(text)), text.normalize('NFC'), name);
  t.is(tokenizer.decode([]), '');
});

test('the understanding prompt pieces of spec §2.3 tokenize as the reference does', async (t) => {
  const tokenizer = await tokenizerPromise;
  const { bos, eos } = tokenizer.special;
  t.deepEqual(tokenizer.encode('system\nYou are a helpful assistant.<|im_end|>'),
    [8948, 198, 2610, 525, 264, 10950, 17847, 13, eos]);
  t.deepEqual(tokenizer.encode('\n<|im_start|>user\n'), [198, bos, 872, 198]);
  t.deepEqual(tokenizer.encode('\n<|im_start|>assistant\n'), [198, bos, 77091, 198]);
  t.deepEqual(tokenizer.encode('a<|im_end|>b<|vision_start|>'), [64, eos, 65, tokenizer.special.boi]);
});

test('the stream decoder reassembles characters split across tokens and equals decode()', async (t) => {
  const tokenizer = await tokenizerPromise;
  for (const want of expected.entries) {
    for (const skipSpecialTokens of [false, true]) {
      const chunks = streamChunks(tokenizer, want.ids, skipSpecialTokens);
      const label = `${want.name} skip=${skipSpecialTokens}`;
      t.is(chunks.join(''), tokenizer.decode(want.ids, { skipSpecialTokens }), label);
      for (const chunk of chunks) t.false(LONE_SURROGATE.test(chunk), want.name);
      if (!textOf(want.name).includes('\uFFFD')) t.false(chunks.some((c) => c.includes('\uFFFD')), want.name);
    }
  }
  // These entries hold characters that byte-level BPE splits across tokens: some push must have waited.
  for (const name of ['rare_cjk', 'emoji_simple', 'emoji_zwj_family', 'emoji_skin_tones', 'long_emoji_run']) {
    const ids = tokenizer.encode(textOf(name));
    const chunks = streamChunks(tokenizer, ids).slice(0, -1);
    t.true(chunks.some((c) => c === ''), `${name}: no split character`);
  }
});

test('the stream decoder holds back a partial character and flushes it as decode() does', async (t) => {
  const tokenizer = await tokenizerPromise;
  const ids = tokenizer.encode('𠀀');
  t.true(ids.length > 1, `𠀀 is ${ids.length} token(s)`);
  const stream = tokenizer.createStreamDecoder();
  t.is(stream.push(ids[0]!), '');
  t.is(stream.flush(), tokenizer.decode([ids[0]!])); // a cut-short character: U+FFFD, as decode gives
  t.true(tokenizer.decode([ids[0]!]).includes('\uFFFD'));
  // After flush the decoder starts over.
  t.is(ids.map((id) => stream.push(id)).join('') + stream.flush(), '𠀀');
  const hello = tokenizer.createStreamDecoder({ skipSpecialTokens: true });
  t.is(hello.push(9707), 'Hello');
  t.is(hello.push(tokenizer.special.eos), '');
  t.is(hello.push(1879), ' world');
  t.is(hello.flush(), '');
});

test('encode speed on 100 KB of mixed text', async (t) => {
  const tokenizer = await tokenizerPromise;
  let text = '';
  for (let i = 0; text.length < 100_000; i++) text += `${corpus[i % corpus.length]!.text} ${i}\n`;
  text = text.slice(0, 100_000);
  const bytes = Buffer.byteLength(text);
  const runs: number[] = [];
  let count = 0;
  for (let r = 0; r < 3; r++) {
    const start = process.hrtime.bigint();
    count = tokenizer.encode(text).length;
    runs.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  const times = runs.map((ms) => ms.toFixed(0)).join(' / ');
  t.log(`encode: ${text.length} chars (${bytes} bytes) -> ${count} tokens in ${times} ms (first / again / again)`);
  const start = process.hrtime.bigint();
  const ids = tokenizer.encode(text);
  const decoded = tokenizer.decode(ids);
  t.log(`decode: ${ids.length} ids in ${(Number(process.hrtime.bigint() - start) / 1e6).toFixed(0)} ms (incl. encode)`);
  t.is(decoded, text.normalize('NFC'));
  t.true(runs[0]! < 20_000); // a sanity bound only: the timings are for the log
});

// A byte-level BPE small enough to check by hand, with role tokens at its own ids and a foreign added token where
// Show-o2's belong. Python's tokenizers (same rule) gives the ids asserted below.
function tinyTokenizerJson(): Record<string, unknown> {
  const pieces = 'h e l o Ġ w r d he ll hell hello Ġw or Ġwor Ġworl Ġworld !'.split(' ');
  const merges = 'h e|l l|he ll|hell o|Ġ w|o r|Ġw or|Ġwor l|Ġworl d'.split('|').map((m) => m.split(' '));
  const added = (id: number, content: string, special = true) =>
    ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special });
  const roles = ['<|im_start|>', '<|im_end|>', '<|vision_start|>', '<|vision_end|>', '<|image_pad|>', '<|video_pad|>'];
  roles.push('[PAD]');
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [...roles.map((c, i) => added(18 + i, c)), added(25, '<junk>', false)],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false,
      vocab: Object.fromEntries(pieces.map((p, i) => [p, i])),
      merges,
    },
  };
}

test('a custom tokenizer.json keeps its own ids and gets the missing Show-o2 tokens appended', async (t) => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tinyTokenizerJson()));
  for (const tokenizer of [
    await ShowO2Tokenizer.load({ path: dir, vocabSize: 29 }), // a directory without tokenizer_config.json
    await ShowO2Tokenizer.load({ path: path.join(dir, 'tokenizer.json'), vocabSize: 29 }),
    ShowO2Tokenizer.fromJSON(tinyTokenizerJson(), {}, { vocabSize: 29 }),
  ]) {
    // <junk> (id 25 >= 29 - 4) is dropped; [PAD] is held already; the other three follow the largest id.
    t.deepEqual({ ...tokenizer.special },
      { bos: 18, eos: 19, boi: 20, eoi: 21, imgPad: 22, vidPad: 23, pad: 24, img: 25, bov: 26, eov: 27 });
    t.is(tokenizer.vocabSize, 29);
    t.is(tokenizer.tokenToId('<junk>'), undefined);
    t.deepEqual(tokenizer.encode('hello world!<|im_end|><image>'), [11, 16, 17, 19, 25]);
    const text = '<|im_start|>hello<|vision_start|><|image_pad|><|vision_end|> world<|vid_start|>[PAD]<|vid_end|>';
    const ids = tokenizer.encode(text);
    t.deepEqual(ids, [18, 11, 20, 22, 21, 16, 26, 24, 27]);
    t.is(tokenizer.decode(ids), text);
    t.is(tokenizer.decode(ids, { skipSpecialTokens: true }), 'hello world<|vid_start|><|vid_end|>');
    t.is(streamChunks(tokenizer, ids, true).join(''), 'hello world<|vid_start|><|vid_end|>');
    t.is(tokenizer.decode([28]), ''); // below vocabSize, but no token: nothing, as in Hugging Face
  }
});

const showo2Ids = ({ pad, img, bov, eov }: ShowO2SpecialTokens) => ({ pad, img, bov, eov });

test('added tokens below vocabSize - 4 stay where they are', (t) => {
  const tokenizer = ShowO2Tokenizer.fromJSON(tinyTokenizerJson()); // vocabSize 151669: <junk> (25) is not in the way
  t.is(tokenizer.tokenToId('<junk>'), 25);
  t.deepEqual(showo2Ids(tokenizer.special), { pad: 24, img: 26, bov: 27, eov: 28 });
});

test('a Show-o2 token already in the model vocabulary keeps its id', (t) => {
  const json = tinyTokenizerJson();
  const model = json.model as { vocab: Record<string, number> };
  model.vocab['<image>'] = 18;
  json.added_tokens = (json.added_tokens as { id: number; content: string }[])
    .filter((a) => a.content !== '<junk>')
    .map((a) => ({ ...a, id: a.id + 1 }));
  const before = JSON.stringify(json);
  const tokenizer = ShowO2Tokenizer.fromJSON(json, undefined, { vocabSize: 28 });
  t.is(JSON.stringify(json), before, 'fromJSON must not modify its input');
  // Python: <image> 18 (the model's id), [PAD] 25, <|vid_start|> 26, <|vid_end|> 27.
  t.deepEqual(showo2Ids(tokenizer.special), { pad: 25, img: 18, bov: 26, eov: 27 });
  t.deepEqual(tokenizer.encode('<image>hello'), [18, 11]);
});

test('the bundled tokenizer with vocabSize 151668 still fits by dropping the added tokens in its way', (t) => {
  // The documented rule, followed literally: <|file_sep|> (151664) makes room, Show-o2's four take 151664..151667.
  const tokenizer = ShowO2Tokenizer.fromJSON(bundledJson, undefined, { vocabSize: 151668 });
  t.deepEqual(showo2Ids(tokenizer.special), { pad: 151664, img: 151665, bov: 151666, eov: 151667 });
  t.is(tokenizer.tokenToId('<|file_sep|>'), undefined);
});

function isError(code: string, message: string | RegExp) {
  return { instanceOf: ShowO2Error, code, message };
}

test('errors: a missing, unreadable or invalid tokenizer file names the path', async (t) => {
  const dir = tempDir();
  const write = (name: string, text: string): string => {
    fs.writeFileSync(path.join(dir, name), text);
    return path.join(dir, name);
  };
  const load = (file: string, vocabSize?: number) => ShowO2Tokenizer.load({ path: file, vocabSize });

  const missing = path.join(dir, 'nope.json');
  await t.throwsAsync(load(missing), isError('ERR_FILE_NOT_FOUND', `Tokenizer file not found: ${missing}`));
  const inDir = path.join(dir, 'tokenizer.json');
  await t.throwsAsync(load(dir), isError('ERR_FILE_NOT_FOUND', `Tokenizer file not found: ${inDir}`));

  const invalid = write('invalid.json', '{"model": {');
  const err = await t.throwsAsync(load(invalid), { instanceOf: ShowO2Error, code: 'ERR_CORRUPT_FILE' });
  t.true(err.message.startsWith(`Invalid tokenizer ${invalid}: not valid JSON (`), err.message);

  const array = write('array.json', '[1, 2]');
  await t.throwsAsync(load(array),
    isError('ERR_CORRUPT_FILE', `Invalid tokenizer ${array}: expected a JSON object but found an array of length 2`));
  const noModel = write('nomodel.json', '{"added_tokens": []}');
  await t.throwsAsync(load(noModel),
    isError('ERR_CORRUPT_FILE', `Invalid tokenizer ${noModel}: expected an object "model" (the vocabulary)`));
  const unknownModel = write('unknown.json', JSON.stringify({ ...tinyTokenizerJson(), model: { type: 'Nope' } }));
  await t.throwsAsync(load(unknownModel, 29),
    isError('ERR_CORRUPT_FILE', `Invalid tokenizer ${unknownModel}: Unknown TokenizerModel type: Nope`));

  const badConfigDir = path.join(dir, 'badconfig');
  fs.mkdirSync(badConfigDir);
  fs.writeFileSync(path.join(badConfigDir, 'tokenizer.json'), JSON.stringify(tinyTokenizerJson()));
  fs.writeFileSync(path.join(badConfigDir, 'tokenizer_config.json'), 'nope');
  await t.throwsAsync(load(badConfigDir, 29),
    isError('ERR_CORRUPT_FILE', /^Invalid tokenizer \S+tokenizer_config\.json: not valid JSON/));

  // The OS refuses to read a directory as a file (a permission test would not fail as root).
  const configIsDir = path.join(dir, 'config-is-dir');
  fs.mkdirSync(path.join(configIsDir, 'tokenizer_config.json'), { recursive: true });
  fs.writeFileSync(path.join(configIsDir, 'tokenizer.json'), JSON.stringify(tinyTokenizerJson()));
  const configPath = path.join(configIsDir, 'tokenizer_config.json');
  await t.throwsAsync(load(configIsDir, 29), isError('ERR_FILE_READ', `Cannot read tokenizer file ${configPath}: ` +
    `EISDIR: illegal operation on a directory, read`));
});

test('errors: a vocabSize too small for the tokenizer names the token', (t) => {
  const fromJSON = (json: unknown, vocabSize: number) => () => ShowO2Tokenizer.fromJSON(json, undefined, { vocabSize });
  const tooSmall = (what: string, token: string, id: number, vocabSize: number) => isError('ERR_INVALID_ARGUMENT',
    `Expected vocabSize to exceed every ${what}, but ${token} has id ${id} and vocabSize is ${vocabSize} ` +
      '(tokenizer tokenizerJson)');
  t.throws(fromJSON(bundledJson, 151660), tooSmall('special token id', '<|vid_end|> (eov)', 151660, 151660));
  const vocab = (bundledJson.model as { vocab: Record<string, number> }).vocab;
  const last = Object.keys(vocab).find((k) => vocab[k] === 151642)!;
  t.throws(fromJSON(bundledJson, 151000), tooSmall('token id', JSON.stringify(last), 151642, 151000));
  t.throws(fromJSON(tinyTokenizerJson(), 27), tooSmall('special token id', '<|vid_end|> (eov)', 27, 27));
});

test('errors: not a usable tokenizer object', (t) => {
  const json = tinyTokenizerJson();
  json.added_tokens = (json.added_tokens as { content: string }[]).filter((a) => a.content !== '<|vision_start|>');
  const noBoi = "Tokenizer tiny has no <|vision_start|> token (Show-o2's boi); Show-o2 needs a Qwen2.5 tokenizer";
  t.throws(() => ShowO2Tokenizer.fromJSON(json, undefined, { vocabSize: 40, source: 'tiny' }),
    isError('ERR_INVALID_ARGUMENT', noBoi));
  t.throws(() => ShowO2Tokenizer.fromJSON({ model: {}, added_tokens: [{ id: -1, content: 'x' }] }), isError(
    'ERR_INVALID_ARGUMENT', 'Invalid tokenizer tokenizerJson: expected every added token to have a string "content" ' +
      'and an id >= 0, found {"id":-1,"content":"x"}'));
  t.throws(() => ShowO2Tokenizer.fromJSON(tinyTokenizerJson(), 'config'), isError('ERR_INVALID_ARGUMENT',
    'Invalid tokenizer tokenizerJson: expected tokenizer_config to be a JSON object but found "config" (string)'));
});

test('errors: invalid arguments', async (t) => {
  const tokenizer = await tokenizerPromise;
  const cases: [() => unknown, string][] = [
    [() => tokenizer.encode(42 as never), 'Expected a string for text but received 42 (number)'],
    [() => tokenizer.decode('1 2' as never), 'Expected an array of token ids for ids but received "1 2" (string)'],
    [() => tokenizer.decode([1, 1.5]),
      'Expected an integer token id in [0, 151669) for ids[1] but received 1.5 (number)'],
    [() => tokenizer.decode([-1]), 'Expected an integer token id in [0, 151669) for ids[0] but received -1 (number)'],
    [() => tokenizer.decode([151669]),
      'Expected an integer token id in [0, 151669) for ids[0] but received 151669 (number)'],
    [() => tokenizer.decode([1], { skipSpecialTokens: 'yes' as never }),
      'Expected a boolean for options.skipSpecialTokens but received "yes" (string)'],
    [() => tokenizer.createStreamDecoder().push(151669),
      'Expected an integer token id in [0, 151669) for id but received 151669 (number)'],
    [() => tokenizer.tokenToId(null as never), 'Expected a string for token but received null'],
    [() => tokenizer.idToToken('1' as never), 'Expected an integer for id but received "1" (string)'],
    [() => tokenizer.idToToken(Number.NaN), 'Expected an integer for id but received NaN (number)'],
    [() => tokenizer.createStreamDecoder('x' as never), 'Expected an object for options but received "x" (string)'],
    [() => tokenizer.createStreamDecoder().push('1' as never),
      'Expected an integer token id in [0, 151669) for id but received "1" (string)'],
    [() => ShowO2Tokenizer.fromJSON({}, {}, { vocabSize: 1.5 }),
      'Expected a positive integer up to 2^31 for options.vocabSize but received 1.5 (number)'],
    // A misspelt option is an error, not a silent default.
    [() => tokenizer.decode([1], { skipSpecial: true } as never),
      'Expected one of skipSpecialTokens for a key of options but received "skipSpecial" (string)'],
    [() => tokenizer.createStreamDecoder({ skip: true } as never),
      'Expected one of skipSpecialTokens for a key of options but received "skip" (string)'],
    [() => ShowO2Tokenizer.fromJSON({}, {}, { vocab_size: 10 } as never),
      'Expected one of vocabSize, source for a key of options but received "vocab_size" (string)'],
  ];
  for (const [call, message] of cases) t.throws(call, isError('ERR_INVALID_ARGUMENT', message));
  const asyncCases: [Promise<unknown>, string][] = [
    [ShowO2Tokenizer.load({ vocabSize: 0 }),
      'Expected a positive integer up to 2^31 for options.vocabSize but received 0 (number)'],
    [ShowO2Tokenizer.load({ path: '' }), 'Expected a non-empty string for options.path but received "" (string)'],
    [ShowO2Tokenizer.load('tokenizer.json' as never),
      'Expected an object for options but received "tokenizer.json" (string)'],
    [ShowO2Tokenizer.load({ dir: '.' } as never), 'Expected one of path, vocabSize for a key of options but received "dir" (string)'],
  ];
  for (const [call, message] of asyncCases) await t.throwsAsync(call, isError('ERR_INVALID_ARGUMENT', message));
});

// Found while writing docs/RELIABILITY.md: a Unigram vocabulary with a null entry was a TypeError, ids that are not
// integers made encode drop text silently, and a model with no id for a piece (no unk_token in its vocabulary) made
// encode return undefined among the ids.
test('errors: a malformed vocabulary names the entry; text the model cannot encode is a typed error', async (t) => {
  const withModel = (model: Record<string, unknown>) => ({ ...tinyTokenizerJson(), model });
  const fromJSON = (json: unknown) => () => ShowO2Tokenizer.fromJSON(json, undefined, { vocabSize: 40 });
  const prefix = 'Invalid tokenizer tokenizerJson: ';
  t.throws(fromJSON(withModel({ type: 'Unigram', vocab: [['a', -1], null] })),
    isError('ERR_INVALID_ARGUMENT', `${prefix}expected "model.vocab" entry 1 to be a [piece, score] pair but found null`));
  const bpe = tinyTokenizerJson().model as Record<string, unknown>;
  t.throws(fromJSON(withModel({ ...bpe, vocab: { h: 0, e: '1' } })), isError('ERR_INVALID_ARGUMENT',
    `${prefix}expected every id in "model.vocab" to be an integer >= 0, but "e" has "1" (string)`));
  t.throws(fromJSON(withModel({ ...bpe, vocab: { h: -5 } })), isError('ERR_INVALID_ARGUMENT',
    `${prefix}expected every id in "model.vocab" to be an integer >= 0, but "h" has -5 (number)`));
  t.throws(fromJSON(withModel({ ...bpe, vocab: null })), isError('ERR_INVALID_ARGUMENT',
    `${prefix}expected "model.vocab" to be an object of token ids or an array of [piece, score] pairs but found null`));
  t.throws(() => ShowO2Tokenizer.fromJSON(tinyTokenizerJson(), undefined, { source: 5 as never }),
    isError('ERR_INVALID_ARGUMENT', 'Expected a string for options.source but received 5 (number)'));

  // A WordLevel model whose unk_token is not in its vocabulary: the library gives undefined for unknown words.
  const wordLevel = withModel({ type: 'WordLevel', vocab: { hello: 0 }, unk_token: '[UNK]' });
  const message = `${prefix}its model gives no id for token 1 of the text (undefined): a piece it does not know, and no ` +
    'unk_token in its vocabulary to stand for it';
  const tokenizer = ShowO2Tokenizer.fromJSON(wordLevel, undefined, { vocabSize: 40 });
  t.deepEqual(tokenizer.encode('hello'), [0]);
  t.throws(() => tokenizer.encode('hello world'), isError('ERR_INVALID_ARGUMENT', message));
  // Loaded from a file, the same tokenizer is a corrupt file.
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(wordLevel));
  const loaded = await ShowO2Tokenizer.load({ path: dir, vocabSize: 40 });
  t.throws(() => loaded.encode('hello world'), isError('ERR_CORRUPT_FILE', message.replace('tokenizerJson', path.join(dir, 'tokenizer.json'))));
  t.deepEqual(loaded.encode('hello'), [0]);
});
