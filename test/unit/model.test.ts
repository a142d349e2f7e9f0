// ShowO2Model (image and video understanding, chat) on the tiny random-weight Show-o2 of
// tools/fixtures/make_showo2_fixtures.py, against the independent PyTorch reference (tools/reference/showo2.py):
// the prompt ids, the first-step logits, the greedy tokens and text, streaming, abort, multi-turn chat with a kept
// KV cache (checked against one full evaluation), and the typed errors for bad inputs.
//
// Tolerance of the first-step logits: the reference computed them in float32 from the bf16 weights; its own
// float32-vs-float64 difference is ~1e-6 (understanding.json max_abs_fp32_vs_fp64). We require
// |ours - ref| <= 1e-4 + 1e-4 |ref| (the 1e-4, ~100x the reference's own error; logits have std ~0.4).
// The greedy tokens must be identical: the smallest top-2 logit gap over every decode step is 2.7e-3 >> 1e-4.
import * as fs from 'node:fs';
import * as path from 'node:path';

import test from 'ava';

import {
  decodeImage,
  FileAccessError,
  InvalidInputError,
  ModelNotFoundError,
  ShowO2Error,
  ShowO2Model,
  WeightFile,
  type GenerationResult,
} from 'showo2';
import { addon } from '../../dist/native.js';
import { buildTurn } from '../../dist/prompt.js';
import { ShowO2Tokenizer } from '../../dist/tokenizer.js';
import { repoRoot, tempDir } from '../helpers.js';
import { writeTinyModel } from '../scenarios/tiny-model.js';

const fixtureDir = path.join(repoRoot, 'test', 'fixtures', 'showo2');
const imagesDir = path.join(repoRoot, 'test', 'fixtures', 'images');
const vaePath = path.join(repoRoot, 'test', 'fixtures', 'vae', 'tiny_vae.pth');

interface Case {
  name: string;
  input: 'image' | 'video';
  layout: 'demo' | 'training';
  question: string;
  input_ids: number[];
  time_position: number;
  visual_offset: number;
  num_visual_tokens: number;
  block: { offset: number; length: number };
  generated_ids: number[];
  finish_reason: string;
  text: string;
}
interface Fixture {
  system_prompt: string;
  max_new_tokens: number;
  cases: Case[];
}
const fixture = JSON.parse(fs.readFileSync(path.join(fixtureDir, 'understanding.json'), 'utf8')) as Fixture;
const imageCase = (name: string) => fixture.cases.find((c) => c.name === name)!;

/** A model directory as published: config.json + pytorch_model.bin (gunzipped from the committed fixture). */
function makeModelDir(): string {
  return writeTinyModel(tempDir('showo2-model-'));
}

const modelDir = makeModelDir();
const modelPromise = ShowO2Model.load(modelDir, { vaePath });

async function readTensors(): Promise<Record<string, Float32Array>> {
  const file = await WeightFile.open(path.join(fixtureDir, 'understanding.safetensors'));
  try {
    const out: Record<string, Float32Array> = {};
    for (const { name } of file.tensors) out[name] = (await file.read(name)).data as Float32Array;
    return out;
  } finally {
    file.dispose();
  }
}
const tensorsPromise = readTensors();

function maxViolation(out: Float32Array, ref: Float32Array, atol: number, rtol: number): number {
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const excess = Math.abs(out[i]! - ref[i]!) - (atol + rtol * Math.abs(ref[i]!));
    if (!(excess <= worst)) worst = Number.isNaN(excess) ? Infinity : excess;
  }
  return worst;
}

const photo = path.join(imagesDir, 'photo.png');
const videoFrames = ['photo.png', 'tall.png', 'strip.png'].map((f) => path.join(imagesDir, f));

test('the prompt ids, TIME position and omni-mask block equal the reference for every case', async (t) => {
  const tokenizer = await ShowO2Tokenizer.load();
  for (const c of fixture.cases) {
    const turn = buildTurn(tokenizer, {
      start: 0,
      continuation: false,
      systemPrompt: fixture.system_prompt,
      question: c.question,
      visual: { tokens: c.num_visual_tokens, tokensPerImage: 16 },
      layout: c.layout,
    });
    t.deepEqual(turn.ids, c.input_ids, c.name);
    t.is(turn.timePosition, c.time_position, c.name);
    t.is(turn.visualPosition, c.visual_offset, c.name);
    t.deepEqual(turn.blocks, [c.block], c.name);
  }
});

test('the first-step logits of every case match the reference (1e-4)', async (t) => {
  const model = await modelPromise;
  const tensors = await tensorsPromise;
  // The raw addon, so the fixture's own pixels and ids go in unchanged.
  const native = await addon().Showo2Model.load({
    configJson: fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8'),
    configSource: 'config.json',
    weightsPath: path.join(modelDir, 'pytorch_model.bin'),
    vaePath,
    threads: 2,
  });
  t.is(native.config.image_resolution, model.config.image_resolution);
  try {
    for (const c of fixture.cases) {
      const pixels = tensors[`${c.input}.pixels`]!;
      const frames = c.input === 'video' ? 3 : 1;
      const session = native.createSession();
      const { logits } = await session.evaluate(
        {
          ids: Int32Array.from(c.input_ids),
          times: [{ position: c.time_position, t: 1 }],
          blocks: [c.block],
          images: [
            {
              data: pixels,
              shape: [frames, 3, 1, 64, 64],
              position: c.visual_offset,
              ...(c.input === 'video' ? { poolTo: [2, 2] as [number, number] } : {}),
            },
          ],
        },
        { returnLogits: true },
      );
      session.dispose();
      const ref = tensors[`${c.name}.logits`]!;
      t.is(logits!.length, ref.length);
      t.true(maxViolation(logits!, ref, 1e-4, 1e-4) <= 0, `${c.name}: logits beyond 1e-4 + 1e-4|ref|`);
    }
  } finally {
    native.dispose();
  }
});

test('image preprocessing of photo.png equals the reference pixels exactly', async (t) => {
  const tensors = await tensorsPromise;
  const { centerCrop, imageToTensor, resizeShorterSide } = await import('showo2');
  const ours = imageToTensor(centerCrop(resizeShorterSide(decodeImage(fs.readFileSync(photo)), 64), 64, 64));
  t.deepEqual(ours, tensors['image.pixels']);
});

for (const name of ['image_demo_q0', 'image_demo_q1', 'image_training_q0', 'image_training_q1']) {
  test(`model.answer gives the reference's greedy tokens and text: ${name}`, async (t) => {
    const model = await modelPromise;
    const c = imageCase(name);
    const result = await model.answer({ image: photo, question: c.question, layout: c.layout, maxTokens: fixture.max_new_tokens });
    const expected = c.finish_reason === 'length' ? c.generated_ids : c.generated_ids.slice(0, -1);
    t.deepEqual(result.tokens, expected);
    t.is(result.finishReason, c.finish_reason === 'length' ? 'length' : 'eos');
    t.is(result.text, c.text);
    t.is(result.usage.promptTokens, c.input_ids.length);
  });
}

test("video understanding gives the reference's greedy tokens (frames letterboxed, 4x4 -> 2x2 pooling)", async (t) => {
  const model = await modelPromise;
  const c = imageCase('video_demo_q0');
  const result = await model.answer({ video: { frames: videoFrames, numFrames: 3 }, question: c.question });
  t.deepEqual(result.tokens, c.generated_ids.slice(0, -1));
  t.is(result.finishReason, 'eos');
  t.is(result.text, c.text);
});

test('answerStream and onTextChunk stream the same text as the result, piece by piece', async (t) => {
  const model = await modelPromise;
  const c = imageCase('image_demo_q0');
  const chunks: string[] = [];
  const pieces: string[] = [];
  const stream = model.answerStream({ image: photo, question: c.question, maxTokens: 16, onTextChunk: (s) => chunks.push(s) });
  let result: GenerationResult | undefined;
  for (;;) {
    const step = await stream.next();
    if (step.done) {
      result = step.value;
      break;
    }
    pieces.push(step.value);
  }
  t.true(pieces.length > 1);
  t.deepEqual(chunks, pieces);
  t.is(pieces.join(''), result.text);
  t.is(result.text, c.text);
});

test('stop strings cut the answer before the stop string, even when it spans tokens', async (t) => {
  const model = await modelPromise;
  const c = imageCase('image_demo_q0'); // "pons UNtext bank UN UNtext noneypes.co ..."
  const result = await model.answer({ image: photo, question: c.question, stop: ['ext ban'] });
  t.is(result.finishReason, 'stop');
  t.is(result.text, 'pons UNt');
});

test('stop tokens end the answer before the token', async (t) => {
  const model = await modelPromise;
  const c = imageCase('image_demo_q0'); // 2737 6643 1318 6073 ...
  const result = await model.answer({ image: photo, question: c.question, stopTokens: [1318] });
  t.is(result.finishReason, 'stop');
  t.deepEqual(result.tokens, [2737, 6643]);
  t.is(result.text, model.tokenizer.decode([2737, 6643]));
  await t.throwsAsync(model.answer({ question: 'x', stopTokens: [-1] }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.stopTokens/ });
});

test('an AbortSignal stops the answer within one token; an aborted signal stops before the prompt', async (t) => {
  const model = await modelPromise;
  const c = imageCase('image_demo_q0');
  const controller = new AbortController();
  let seen = 0;
  const result = await model.answer({
    image: photo,
    question: c.question,
    signal: controller.signal,
    onTextChunk: () => {
      seen += 1;
      if (seen === 2) controller.abort();
    },
  });
  t.is(result.finishReason, 'abort');
  t.true(result.tokens.length <= 3, `got ${result.tokens.length} tokens after aborting at the second chunk`);
  t.deepEqual(result.tokens, c.generated_ids.slice(0, result.tokens.length));

  const before = await model.answer({ image: photo, question: c.question, signal: AbortSignal.abort() });
  t.is(before.finishReason, 'abort');
  t.deepEqual(before.tokens, []);
});

test('sampling is reproducible by seed', async (t) => {
  const model = await modelPromise;
  const options = { question: 'Hello', temperature: 1.0, topK: 50, topP: 0.9, maxTokens: 8 } as const;
  const a = await model.answer({ ...options, seed: 7 });
  const b = await model.answer({ ...options, seed: 7 });
  t.deepEqual(a.tokens, b.tokens);
  const seeds = await Promise.all([1, 2, 3, 4].map((seed) => model.answer({ ...options, seed })));
  t.true(new Set(seeds.map((r) => r.tokens.join(','))).size > 1, 'different seeds should not all agree');
});

test('a chat keeps its KV cache between turns and equals one evaluation of the whole conversation', async (t) => {
  const model = await modelPromise;
  const c = imageCase('image_demo_q0');
  const chat = model.createChat();
  const first = await chat.ask({ image: photo, question: c.question, maxTokens: 4 });
  t.deepEqual(first.tokens, c.generated_ids.slice(0, 4));
  const lengthAfterFirst = chat.length;
  const second = await chat.ask({ question: 'And then?', maxTokens: 3 });
  t.true(chat.length > lengthAfterFirst);

  // The same conversation as one chunk: turn 1, the 4 answer tokens, turn 2.
  const tokenizer = model.tokenizer;
  const turn1 = buildTurn(tokenizer, {
    start: 0,
    continuation: false,
    systemPrompt: fixture.system_prompt,
    question: c.question,
    visual: { tokens: 16, tokensPerImage: 16 },
    layout: 'demo',
  });
  const start2 = turn1.ids.length + first.tokens.length;
  const turn2 = buildTurn(tokenizer, { start: start2, continuation: true, systemPrompt: '', question: 'And then?', layout: 'demo' });
  const tensors = await tensorsPromise;
  const native = await addon().Showo2Model.load({
    configJson: fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8'),
    configSource: 'config.json',
    weightsPath: path.join(modelDir, 'pytorch_model.bin'),
    vaePath,
  });
  const session = native.createSession();
  const full = await session.evaluate(
    {
      ids: Int32Array.from([...turn1.ids, ...first.tokens, ...turn2.ids]),
      times: [{ position: turn1.timePosition!, t: 1 }],
      blocks: turn1.blocks,
      images: [{ data: tensors['image.pixels']!, shape: [1, 3, 1, 64, 64], position: turn1.visualPosition! }],
    },
    { sample: true },
  );
  t.is(full.token, second.tokens[0]);
  t.is(session.length, start2 + turn2.ids.length);
  session.dispose();
  native.dispose();
  chat.dispose();
  t.throws(() => chat.length, { instanceOf: ShowO2Error, code: 'ERR_DISPOSED' });
});

test('the event loop keeps running while the model works', async (t) => {
  const model = await modelPromise;
  let ticks = 0;
  const timer = setInterval(() => (ticks += 1), 1);
  await model.answer({ image: photo, question: 'What is in this image?', maxTokens: 8 });
  clearInterval(timer);
  t.true(ticks > 5, `only ${ticks} timer ticks`);
});

test('bad inputs are typed errors naming what was wrong', async (t) => {
  const model = await modelPromise;
  await t.throwsAsync(model.answer({ image: path.join(imagesDir, 'missing.png'), question: 'x' }), {
    instanceOf: ShowO2Error,
    code: 'ERR_FILE_NOT_FOUND',
    message: /missing\.png \(options\.image\)/,
  });
  await t.throwsAsync(model.answer({ image: new Uint8Array([1, 2, 3, 4]), question: 'x' }), {
    instanceOf: ShowO2Error,
    code: 'ERR_INVALID_IMAGE',
  });
  await t.throwsAsync(model.answer({ question: 'word '.repeat(5000) }), {
    instanceOf: ShowO2Error,
    code: 'ERR_INVALID_ARGUMENT',
    message: /context is 4096 positions/,
  });
  await t.throwsAsync(model.answer({ question: 'x', temperature: -1 }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: 'Expected a finite number >= 0 for options.temperature but received -1 (number)',
  });
  await t.throwsAsync(model.answer({ question: 'x', topP: 0 }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.topP/ });
  await t.throwsAsync(model.answer({ question: 'x', maxTokens: 0 }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.maxTokens/ });
  await t.throwsAsync(model.answer({ question: 'x', image: photo, video: { frames: [photo] } }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /either image or video/,
  });
  await t.throwsAsync(model.answer({ question: 'x', video: { frames: [] } }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.video\.frames/ });
  await t.throwsAsync(model.answer({ question: 'x', colour: 'red' } as never), { code: 'ERR_INVALID_ARGUMENT', message: /colour/ });
  await t.throwsAsync(model.answer({ question: 42 } as never), { code: 'ERR_INVALID_ARGUMENT', message: /options\.question/ });
  // The model is still usable after all of these.
  const ok = await model.answer({ image: photo, question: imageCase('image_demo_q1').question });
  t.deepEqual(ok.tokens, imageCase('image_demo_q1').generated_ids.slice(0, -1));
});

test('a wrong model directory is a typed error naming the problem', async (t) => {
  await t.throwsAsync(ShowO2Model.load(path.join(repoRoot, 'no-such-model')), {
    instanceOf: ModelNotFoundError,
    code: 'ERR_MODEL_NOT_FOUND',
    message: /does not exist/,
  });
  const empty = tempDir();
  await t.throwsAsync(ShowO2Model.load(empty), { instanceOf: ModelNotFoundError, code: 'ERR_MODEL_NOT_FOUND', message: /has no config\.json/ });
  fs.copyFileSync(path.join(modelDir, 'config.json'), path.join(empty, 'config.json'));
  await t.throwsAsync(ShowO2Model.load(empty, { vaePath }), { instanceOf: ModelNotFoundError, code: 'ERR_MODEL_NOT_FOUND', message: /No checkpoint/ });
  fs.symlinkSync(path.join(modelDir, 'pytorch_model.bin'), path.join(empty, 'pytorch_model.bin'));
  await t.throwsAsync(ShowO2Model.load(empty), { instanceOf: ModelNotFoundError, code: 'ERR_MODEL_NOT_FOUND', message: /No VAE found.*vaePath/s });
  // A VAE path the caller names is a file like any other: FileAccessError.
  await t.throwsAsync(ShowO2Model.load(empty, { vaePath: path.join(empty, 'no-vae.pth') }), {
    instanceOf: FileAccessError,
    code: 'ERR_FILE_NOT_FOUND',
    message: /no-vae\.pth \(options\.vaePath\) does not exist/,
  });

  // A config that does not describe the checkpoint: every mismatch is listed.
  const wrong = tempDir();
  const config = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8'));
  config.llm_config.num_hidden_layers = 3;
  config.und_trans_config.intermediate_size = 100;
  fs.writeFileSync(path.join(wrong, 'config.json'), JSON.stringify(config));
  fs.symlinkSync(path.join(modelDir, 'pytorch_model.bin'), path.join(wrong, 'pytorch_model.bin'));
  const err = await t.throwsAsync(ShowO2Model.load(wrong, { vaePath }), { instanceOf: InvalidInputError, code: 'ERR_INVALID_ARGUMENT' });
  t.regex(err!.message, /missing keys.*showo\.model\.layers\.2\.input_layernorm\.weight/s);
  t.regex(err!.message, /und_trans\.layers\.0\.mlp\.fc1\.weight \(expected \[100, 48\], found \[96, 48\]\)/);

  config.llm_config.num_hidden_layers = 'two';
  fs.writeFileSync(path.join(wrong, 'config.json'), JSON.stringify(config));
  await t.throwsAsync(ShowO2Model.load(wrong, { vaePath }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /config\.json: llm_config\.num_hidden_layers: expected an integer/,
  });
  await t.throwsAsync(ShowO2Model.load(modelDir, { vaePath, threads: 0 }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.threads/ });

  // A model with a vocabulary of its own (the demo model's 429 tokens) and no tokenizer.json: the bundled Qwen2.5
  // tokenizer cannot serve it, and the error says what to pass, before any tokenizer is read.
  const ownVocab = tempDir();
  for (const file of ['config.json', 'model.safetensors', 'vae.safetensors']) {
    fs.symlinkSync(path.join(repoRoot, 'models', 'demo', file), path.join(ownVocab, file));
  }
  await t.throwsAsync(ShowO2Model.load(ownVocab), {
    instanceOf: InvalidInputError,
    code: 'ERR_INVALID_ARGUMENT',
    message: /has a vocabulary of \d+ tokens \(llm_vocab_size in config\.json\) and no tokenizer\.json; the bundled Qwen2\.5 tokenizer needs 151669\. .*options\.tokenizerPath/,
  });
  const withTokenizer = await ShowO2Model.load(ownVocab, { tokenizerPath: path.join(repoRoot, 'models', 'demo', 'tokenizer.json') });
  withTokenizer.dispose();
});

test('dispose releases the model and its chats; later use is ERR_DISPOSED', async (t) => {
  const model = await ShowO2Model.load(modelDir, { vaePath });
  const chat = model.createChat();
  model.dispose();
  model.dispose();
  t.true(model.disposed);
  t.true(chat.disposed);
  t.throws(() => model.createChat(), { instanceOf: ShowO2Error, code: 'ERR_DISPOSED' });
  await t.throwsAsync(chat.ask({ question: 'x' }), { code: 'ERR_DISPOSED' });
  await t.throwsAsync(model.answer({ question: 'x' }), { code: 'ERR_DISPOSED' });
});
