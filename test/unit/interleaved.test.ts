// Mixed-modality (interleaved text and image) generation through the public API on the tiny random-weight Show-o2:
// the part sequence, the image budget, forced images, history images, streaming, progress, abort, the reference-quirk
// mode, typed errors, and that the KV-cached conversation gives what a recomputed one gives. Parity with the PyTorch
// reference is test/unit/mixed-parity.test.ts.
import test from 'ava';

import { ShowO2Error, ShowO2Model, type InterleavedEvent, type InterleavedGenerationOptions } from 'showo2';
import { tinyVaePath, writeTinyModel } from '../scenarios/tiny-model.js';

const modelPromise = ShowO2Model.load(writeTinyModel(), { vaePath: tinyVaePath });

// A random model almost never picks <|vision_start|> by itself: a logit bias makes it (the sampler's documented knob).
async function base(): Promise<InterleavedGenerationOptions> {
  const model = await modelPromise;
  return {
    prompt: 'Mixed-modality generation. A fox in the snow.',
    temperature: 0,
    logitBias: { [model.tokenizer.special.boi]: 6 },
    maxTokens: 12,
    steps: 3,
    guidanceScale: 2,
    width: 64,
    height: 64,
  };
}

test('an answer with two images: ordered parts, the budget bans <|vision_start|> afterwards', async (t) => {
  const model = await modelPromise;
  const { boi } = model.tokenizer.special;
  const result = await model.generateInterleaved({ ...(await base()), maxImages: 2, logitBias: { [boi]: 30 } });
  const kinds = result.parts.map((p) => p.type);
  t.is(result.usage.images, 2);
  t.is(kinds.filter((k) => k === 'image').length, 2);
  // With a huge bias <|vision_start|> wins whenever it is allowed: image, image, then only text.
  t.deepEqual(kinds.slice(0, 2), ['image', 'image']);
  t.true(kinds.slice(2).every((k) => k === 'text'));
  for (const part of result.parts) {
    if (part.type === 'image') {
      t.deepEqual([...part.latents.shape], [1, 16, 1, 8, 8]);
      t.is(part.image!.width, 64);
      t.is(part.image!.data.length, 64 * 64 * 3);
      t.is(part.seed, part.index);
    } else {
      t.false(part.tokens.includes(boi));
    }
  }
  t.is(result.finishReason, 'length');
  // completionTokens counts every sampled token: 2 x <|vision_start|> + the text.
  const textTokens = result.parts.reduce((n, p) => n + (p.type === 'text' ? p.tokens.length : 0), 0);
  t.is(result.usage.completionTokens, 2 + textTokens);
});

test('maxImages 0 never draws; startWithImage begins with an image', async (t) => {
  const model = await modelPromise;
  const { boi } = model.tokenizer.special;
  const none = await model.generateInterleaved({ ...(await base()), maxImages: 0, logitBias: { [boi]: 30 } });
  t.is(none.usage.images, 0);
  t.true(none.parts.every((p) => p.type === 'text'));
  const first = await model.generateInterleaved({ ...(await base()), maxImages: 1, startWithImage: true, logitBias: {} });
  t.is(first.parts[0]!.type, 'image');
  t.is(first.usage.images, 1);
});

test('the stream yields text pieces and images in order, and progress names the image', async (t) => {
  const model = await modelPromise;
  const events: InterleavedEvent[] = [];
  const progress: number[] = [];
  const texts: string[] = [];
  const stream = model.generateInterleavedStream({
    ...(await base()),
    maxImages: 2,
    onStep: (p) => progress.push(p.imageIndex),
    onTextChunk: (s) => texts.push(s),
  });
  let step = await stream.next();
  while (!step.done) {
    events.push(step.value);
    step = await stream.next();
  }
  const result = step.value;
  const images = events.filter((e) => e.type === 'image');
  t.is(images.length, result.usage.images);
  t.true(result.usage.images >= 1, 'the bias of 6 should make this model draw at least once');
  // Two ODE steps per image (steps: 3 grid points), reported with the image's index.
  t.deepEqual(progress, images.flatMap((e) => [e.index, e.index]));
  // The streamed text equals the parts' text.
  const streamed = events.map((e) => (e.type === 'text' ? e.text : '\u0000')).join('');
  const fromParts = result.parts.map((p) => (p.type === 'text' ? p.text : '\u0000')).join('');
  t.is(streamed, fromParts);
  t.is(texts.join(''), fromParts.replaceAll('\u0000', ''));
});

test('seeded and deterministic; explicit noise per image replaces the seeded noise', async (t) => {
  const model = await modelPromise;
  const options = { ...(await base()), maxImages: 1, startWithImage: true, temperature: 1, seed: 5 };
  const a = await model.generateInterleaved(options);
  const b = await model.generateInterleaved(options);
  t.deepEqual(a.parts, b.parts);
  const noise = { data: new Float32Array(16 * 64).fill(0.25), shape: [1, 16, 1, 8, 8] };
  const c = await model.generateInterleaved({ ...options, latents: [noise] });
  const d = await model.generateInterleaved({ ...options, latents: [noise], seed: 6 });
  const latentOf = (r: typeof a) => (r.parts.find((p) => p.type === 'image') as { latents: { data: Float32Array } }).latents.data;
  t.notDeepEqual(latentOf(a), latentOf(c));
  t.deepEqual(latentOf(c), latentOf(d)); // same explicit noise, different text seed: same first image
});

test('history images enter the conversation and change what comes next; referenceQuirks leaves an image drawn before any text unchanged', async (t) => {
  const model = await modelPromise;
  const drawn = await model.generateInterleaved({ ...(await base()), maxImages: 1, startWithImage: true });
  const picture = (drawn.parts[0] as { image: { width: number; height: number; data: Uint8Array } }).image;
  const options = { ...(await base()), maxImages: 1, startWithImage: true, history: [{ type: 'text' as const, text: 'Once upon a time' }, { type: 'image' as const, image: picture }] };
  const withHistory = await model.generateInterleaved(options);
  const withoutImage = await model.generateInterleaved({ ...options, history: [options.history[0]!] });
  const latentOf = (r: typeof drawn) => (r.parts.find((p) => p.type === 'image') as { latents: { data: Float32Array } }).latents.data;
  t.notDeepEqual(latentOf(withHistory), latentOf(withoutImage));
  t.is(withHistory.usage.promptTokens - withoutImage.usage.promptTokens, 1 + 16 + 1 + 1); // boi TIME vis eoi
  // referenceQuirks changes only how TEXT sees earlier images (TIME 0): the first image (drawn before any text is
  // sampled after the history) is the same, the text after it may differ.
  const quirk = await model.generateInterleaved({ ...options, referenceQuirks: true });
  t.deepEqual(latentOf(quirk), latentOf(withHistory));
});

test('the KV-cached conversation equals recomputing it: a continued answer matches one given the same history', async (t) => {
  // Run 1 writes, draws, writes and draws again, all in one growing KV-cached conversation. Run 2 is given run 1's
  // parts before its second image as history (token ids and latents, so the positions are identical) and starts with
  // an image: that image is drawn from a conversation computed in one piece, with the same noise (seed 0 + 1).
  const model = await modelPromise;
  const { boi } = model.tokenizer.special;
  const options = { ...(await base()), maxImages: 2, logitBias: { [boi]: 1 }, maxTokens: 40, seed: 0 }; // T6 I T8 I T...
  const first = await model.generateInterleaved(options);
  const images = first.parts.filter((p) => p.type === 'image');
  t.is(images.length, 2, 'the tiny model with this bias draws twice');
  const secondAt = first.parts.indexOf(images[1]!);
  t.true(first.parts.slice(0, secondAt).some((p) => p.type === 'text'), 'text between the prompt and the second image');
  const history = first.parts.slice(0, secondAt).map((p) =>
    p.type === 'text' ? { type: 'text' as const, tokens: p.tokens } : { type: 'image' as const, latents: p.latents },
  );
  const second = await model.generateInterleaved({ ...options, history, startWithImage: true, maxImages: 1, seed: 1 });
  const a = images[1]!.latents.data;
  const b = (second.parts[0] as { latents: { data: Float32Array } }).latents.data;
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < a.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(a[i]! - b[i]!));
    maxRef = Math.max(maxRef, Math.abs(a[i]!));
  }
  t.log(`max |cached - recomputed| ${maxErr.toExponential(2)} of ${maxRef.toFixed(2)}`);
  t.true(maxErr <= 2e-5 * maxRef);
});

test('bad input: typed errors naming the option', async (t) => {
  const model = await modelPromise;
  const o = await base();
  const expectCode = async (options: unknown, code: string, pattern: RegExp) => {
    const err = await t.throwsAsync(model.generateInterleaved(options as InterleavedGenerationOptions), { instanceOf: ShowO2Error });
    t.is(err!.code as string, code);
    t.regex(err!.message, pattern);
  };
  await expectCode({ ...o, maxImages: 0, startWithImage: true }, 'ERR_INVALID_ARGUMENT', /startWithImage.*maxImages is 0/);
  const wrong = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3) };
  await expectCode({ ...o, history: [{ type: 'image', image: wrong }] }, 'ERR_INVALID_ARGUMENT', /history\[0\]\.image to be 64x64.*32x32/);
  await expectCode({ ...o, history: [{ type: 'video' }] }, 'ERR_INVALID_ARGUMENT', /history\[0\]/);
  await expectCode({ ...o, history: [{ type: 'image', image: '/no/such.png' }] }, 'ERR_FILE_NOT_FOUND', /history\[0\]\.image/);
  await expectCode({ ...o, maxImages: 17 }, 'ERR_INVALID_ARGUMENT', /maxImages/);
  await expectCode({ ...o, logitBias: { 999999999: 1 } }, 'ERR_INVALID_ARGUMENT', /logitBias/);
  await expectCode({ ...o, logitBias: { 5: Number.NaN } }, 'ERR_INVALID_ARGUMENT', /logitBias\[5\]/);
  await expectCode({ ...o, width: 60 }, 'ERR_INVALID_ARGUMENT', /options\.width/);
  await expectCode({ ...o, latents: [{ data: new Float32Array(3), shape: [1, 16, 1, 8, 8] }] }, 'ERR_SHAPE_MISMATCH', /latents\[0\]/);
  await expectCode({ ...o, colour: 'red' }, 'ERR_INVALID_ARGUMENT', /colour/);
  // The model still works afterwards.
  t.is((await model.generateInterleaved({ ...o, maxImages: 1, startWithImage: true })).usage.images, 1);
});

test('abort: the parts so far, finishReason abort, and the model stays usable', async (t) => {
  const model = await modelPromise;
  const controller = new AbortController();
  const seen: number[] = [];
  // onStep reaches JavaScript asynchronously while the solver goes on, so the image is large and the steps many: the
  // abort lands long before the first image could finish (a 64x64 image with 6 steps raced it on a loaded machine).
  const result = await model.generateInterleaved({
    ...(await base()),
    maxImages: 2,
    startWithImage: true,
    width: 432,
    height: 432,
    steps: 30,
    onStep: (p) => {
      seen.push(p.step);
      if (p.step === 2) controller.abort();
    },
    signal: controller.signal,
  });
  t.is(result.finishReason, 'abort');
  t.is(result.usage.images, 0, `steps reported: ${seen.join(',')}`);
  t.true(seen.length < 30, `steps reported: ${seen.join(',')}`);
  const pre = new AbortController();
  pre.abort();
  t.is((await model.generateInterleaved({ ...(await base()), signal: pre.signal })).finishReason, 'abort');
  t.is((await model.generateInterleaved({ ...(await base()), maxImages: 1, startWithImage: true })).usage.images, 1);
});
