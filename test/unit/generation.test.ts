// Image and video generation through the public API on the tiny random-weight Show-o2 (test/fixtures/showo2):
// the sizes the issue names (a 432x432 image, a 17-frame video), seeds, explicit latents, latent output, progress,
// abort, image-to-video, and the typed errors for bad options. Parity with the PyTorch reference is in
// generation-parity.test.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';

import test from 'ava';

import { CancelledError, encodeAnimatedPng, ShowO2Error, ShowO2Model, type GenerationProgress } from 'showo2';
import { repoRoot, tempDir } from '../helpers.js';
import { writeTinyModel } from '../scenarios/tiny-model.js';

const fixtureDir = path.join(repoRoot, 'test', 'fixtures', 'showo2');
const vaePath = path.join(repoRoot, 'test', 'fixtures', 'vae', 'tiny_vae.pth');
const photo = path.join(repoRoot, 'test', 'fixtures', 'images', 'photo.png');

function makeModelDir(): string {
  return writeTinyModel(tempDir('showo2-gen-'));
}

const modelPromise = ShowO2Model.load(makeModelDir(), { vaePath });

test('a 432x432 image comes out of generateImages, with progress per step', async (t) => {
  const model = await modelPromise;
  const steps: GenerationProgress[] = [];
  const result = await model.generateImages({
    prompt: 'a red fox in the snow',
    width: 432,
    height: 432,
    steps: 3,
    seed: 11,
    onStep: (p) => steps.push(p),
  });
  t.is(result.images.length, 1);
  t.is(result.images[0]!.width, 432);
  t.is(result.images[0]!.height, 432);
  t.is(result.images[0]!.data.length, 432 * 432 * 3);
  t.deepEqual([...result.latents.shape], [1, 16, 1, 54, 54]);
  t.is(result.seed, 11);
  t.deepEqual(
    steps.map((s) => [s.step, s.totalSteps]),
    [
      [1, 2],
      [2, 2],
    ],
  );
  t.true(steps[1]!.t === 1 && steps[0]!.t > 0 && steps[0]!.t < 1);
  t.true(steps[1]!.elapsedMs >= steps[0]!.elapsedMs);
  t.true(result.timings.totalMs >= result.timings.denoiseMs);
});

test('a 17-frame video comes out of generateVideo and encodes as an animated PNG', async (t) => {
  const model = await modelPromise;
  const result = await model.generateVideo({ prompt: 'waves on a beach', width: 432, height: 432, steps: 2, seed: 3 });
  t.is(result.videos.length, 1);
  t.is(result.videos[0]!.length, 17);
  t.is(result.videos[0]![16]!.width, 432);
  t.deepEqual([...result.latents.shape], [1, 16, 5, 54, 54]);
  const apng = await encodeAnimatedPng(result.videos[0]!);
  t.true(apng.length > 1000);
});

test('the same seed gives the same image; explicit latents replace the noise; latent output skips the VAE', async (t) => {
  const model = await modelPromise;
  const options = { prompt: ['a cat', 'a dog'], width: 64, height: 64, steps: 3 } as const;
  const a = await model.generateImages({ ...options, seed: 5 });
  const b = await model.generateImages({ ...options, seed: 5 });
  t.deepEqual(a.latents.data, b.latents.data);
  t.deepEqual(a.images, b.images);
  t.is(a.images.length, 2);
  const c = await model.generateImages({ ...options, seed: 6 });
  t.notDeepEqual(a.latents.data, c.latents.data);

  const noise = new Float32Array(2 * 16 * 8 * 8).map((_, i) => Math.sin(i * 0.37));
  const d = await model.generateImages({ ...options, latents: { data: noise, shape: [2, 16, 1, 8, 8] }, output: 'latent' });
  const e = await model.generateImages({ ...options, latents: { data: noise, shape: [2, 16, 1, 8, 8] }, output: 'latent' });
  t.deepEqual(d.images, []);
  t.deepEqual(d.latents.data, e.latents.data);
  t.notDeepEqual(d.latents.data, a.latents.data);
});

test('a batch of prompts equals each prompt generated alone from its slice of the noise', async (t) => {
  const model = await modelPromise;
  const noise = new Float32Array(2 * 16 * 8 * 8).map((_, i) => Math.cos(i * 0.11));
  const both = await model.generateImages({ prompt: ['a cat', 'a red bicycle'], width: 64, height: 64, steps: 3, latents: { data: noise, shape: [2, 16, 1, 8, 8] }, output: 'latent' });
  const half = 16 * 8 * 8;
  for (const [i, prompt] of ['a cat', 'a red bicycle'].entries()) {
    const alone = await model.generateImages({ prompt, width: 64, height: 64, steps: 3, latents: { data: noise.slice(i * half, (i + 1) * half), shape: [1, 16, 1, 8, 8] }, output: 'latent' });
    const got = both.latents.data.subarray(i * half, (i + 1) * half);
    // Batching changes only the float32 summation order (GEMM blocking): the reference measured 2.4e-5 on ~8.5.
    let worst = 0;
    let scale = 0;
    for (let k = 0; k < half; k++) {
      worst = Math.max(worst, Math.abs(got[k]! - alone.latents.data[k]!));
      scale = Math.max(scale, Math.abs(alone.latents.data[k]!));
    }
    t.true(worst <= 1e-5 * scale, `prompt ${i}: max difference ${worst} on values up to ${scale}`);
  }
});

test('image-to-video keeps the encoded first frame fixed', async (t) => {
  const model = await modelPromise;
  const result = await model.generateVideo({ prompt: 'the scene moves', image: photo, frames: 5, width: 64, height: 64, steps: 3, seed: 2, output: 'latent' });
  const again = await model.generateVideo({ prompt: 'something else entirely', image: photo, frames: 5, width: 64, height: 64, steps: 3, seed: 9, output: 'latent' });
  const frameSize = 8 * 8;
  // Latent frame 0 of every channel is the same (the encoded image) whatever the prompt and noise.
  for (let c = 0; c < 16; c++) {
    const from = c * 2 * frameSize;
    t.deepEqual(result.latents.data.subarray(from, from + frameSize), again.latents.data.subarray(from, from + frameSize));
  }
  t.notDeepEqual(result.latents.data, again.latents.data);
});

test('an AbortSignal stops the generation within one step with ERR_CANCELLED; the model stays usable', async (t) => {
  const model = await modelPromise;
  const controller = new AbortController();
  const seen: number[] = [];
  // 432x432 (730 tokens) so one step takes far longer than delivering a step report to JS: the abort issued from
  // the report of step 2 must stop the loop during step 3 at the latest, whatever the machine's load.
  await t.throwsAsync(
    model.generateImages({
      prompt: 'x',
      width: 432,
      height: 432,
      steps: 30,
      signal: controller.signal,
      output: 'latent',
      onStep: (p) => {
        seen.push(p.step);
        if (p.step === 2) controller.abort();
      },
    }),
    { instanceOf: CancelledError, code: 'ERR_CANCELLED' },
  );
  t.true(seen.length <= 3, `steps reported: ${seen.join(',')}`);
  await t.throwsAsync(model.generateImages({ prompt: 'x', width: 64, height: 64, steps: 3, signal: AbortSignal.abort() }), {
    code: 'ERR_CANCELLED',
  });
  const ok = await model.generateImages({ prompt: 'x', width: 64, height: 64, steps: 2, seed: 1 });
  t.is(ok.images.length, 1);
});

test('an error thrown by onStep stops the generation and rejects with that error', async (t) => {
  const model = await modelPromise;
  const boom = new Error('boom');
  const err = await t.throwsAsync(
    model.generateImages({ prompt: 'x', width: 64, height: 64, steps: 10, onStep: () => { throw boom; } }),
  );
  t.is(err, boom);
});

test('previews carry the predicted clean latent at every step', async (t) => {
  const model = await modelPromise;
  const previews: GenerationProgress[] = [];
  const result = await model.generateImages({ prompt: 'x', width: 64, height: 64, steps: 3, seed: 4, preview: true, onStep: (p) => previews.push(p), output: 'latent' });
  t.is(previews.length, 2);
  t.deepEqual([...previews[0]!.preview!.shape], [1, 16, 1, 8, 8]);
  // At the last step (t reaches 1) the prediction is the final latent itself.
  const last = previews[1]!.preview!.data;
  let worst = 0;
  for (let i = 0; i < last.length; i++) worst = Math.max(worst, Math.abs(last[i]! - result.latents.data[i]!));
  t.true(worst < 1e-5, `last preview vs final latent: ${worst}`);
});

test('bad options are typed errors naming the field', async (t) => {
  const model = await modelPromise;
  const bad = async (options: Record<string, unknown>, message: RegExp | string, code = 'ERR_INVALID_ARGUMENT') =>
    t.throwsAsync(model.generateImages({ prompt: 'x', width: 64, height: 64, steps: 3, ...options } as never), { instanceOf: ShowO2Error, code, message });
  await bad({ width: 500 }, 'Expected a positive multiple of 16 up to 16384 for options.width but received 500 (number)');
  await bad({ height: 0 }, /options\.height/);
  await bad({ steps: 0 }, /options\.steps/);
  await bad({ steps: 1 }, /options\.steps/);
  await bad({ guidanceScale: -1 }, 'Expected a finite number >= 0 for options.guidanceScale but received -1 (number)');
  await bad({ shift: 0 }, /options\.shift/);
  await bad({ solver: 'rk4' }, /options\.solver/);
  await bad({ seed: -3 }, /options\.seed/);
  await bad({ output: 'png' }, /options\.output/);
  await bad({ prompt: 'word '.repeat(400) }, /at most 290 fit \(options\.maxTextTokens\)/);
  await bad({ prompt: [] }, /options\.prompt/);
  await bad({ latents: { data: new Float32Array(10), shape: [1, 16, 1, 4, 4] } }, /options\.latents\.shape to be \[1, 16, 1, 8, 8\]/, 'ERR_SHAPE_MISMATCH');
  await bad({ frames: 17 }, /a key of options/);
  await t.throwsAsync(model.generateVideo({ prompt: 'x', frames: 6, width: 64, height: 64 }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /options\.frames/,
  });
  await t.throwsAsync(model.generateVideo({ prompt: 'x', frames: 5, width: 64, height: 64, image: path.join(repoRoot, 'nope.png') }), {
    code: 'ERR_FILE_NOT_FOUND',
  });
  // The reference's truncation is available on request.
  const cut = await model.generateImages({ prompt: 'word '.repeat(400), width: 64, height: 64, steps: 2, truncatePrompt: true, output: 'latent', seed: 1 });
  t.deepEqual([...cut.latents.shape], [1, 16, 1, 8, 8]);
});
