// Faults and hostile inputs on the tiny Show-o2: each gives its typed error (never a crash, a hang or an untyped
// error), and the model keeps working afterwards (every test ends with a normal call on the same model).
// docs/RELIABILITY.md lists every case with the test that shows it.
//
// - weights deleted or truncated around a load; truncated after a load (SHOWO2_NO_MMAP=1, in a child process: with
//   the default memory mapping that is a SIGBUS, see docs/RELIABILITY.md);
// - the disk filling up while convertToSafetensors writes (a 64 kB tmpfs when this runs as root, else a file-size
//   limit: `ulimit -f`);
// - allocation failures (SHOWO2_TEST_ALLOC_LIMIT, in a child process);
// - a prompt exactly at the context limit, and one position over;
// - images of 1x1 and of 20000x20000 (PNG and JPEG headers), and a decoded image that claims more pixels than it has;
// - NaN and Infinity in latents (generateImages `latents`, vae.decode, vae.encode);
// - generation sizes far beyond the context (once a V8 fatal "invalid array length" that killed the process);
// - a video question with 1 or 2 frames (once "bidirectional block lies outside the chunk").
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

import test from 'ava';

import {
  convertToSafetensors,
  decodeImage,
  encodePng,
  FileAccessError,
  InvalidInputError,
  ModelNotFoundError,
  ShowO2Error,
  ShowO2Model,
  WeightFile,
  type RgbImage,
} from 'showo2';
import { buildTurn } from '../../dist/prompt.js';
import { repoRoot, tempDir, timeScale } from '../helpers.js';
import { photoPath, tinyVaePath, writeTinyModel } from '../scenarios/tiny-model.js';

const modelDir = writeTinyModel(path.join(tempDir('showo2-faults-'), 'model'));
const modelPromise = ShowO2Model.load(modelDir, { vaePath: tinyVaePath });
const child = path.join(repoRoot, 'build-test', 'scenarios', 'faults-child.js');

/** The model's answer before any fault, for stillWorks to compare with. */
const baseline = modelPromise.then((model) => model.answer({ question: 'Are you there?', maxTokens: 4 }));

/** A normal call after a fault: the model must still answer, and exactly as it did before any fault. */
async function stillWorks(t: { deepEqual: (a: unknown, b: unknown, m?: string) => void }, model: ShowO2Model): Promise<void> {
  const again = await model.answer({ question: 'Are you there?', maxTokens: 4 });
  t.deepEqual(again.tokens, (await baseline).tokens, 'the model answers as before');
  const { images } = await model.generateImages({ prompt: 'ok', width: 32, height: 32, steps: 2, seed: 1 });
  t.deepEqual([images[0]!.width, images[0]!.height], [32, 32]);
}

function runChild(args: string[], env: Record<string, string>): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 100_000 * timeScale);
    p.on('error', reject);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// ---- weight files -------------------------------------------------------------------------------------------------

test('a checkpoint deleted before or just after the load starts: a typed error or a loaded model, never a crash', async (t) => {
  const model = await modelPromise;
  const gone = writeTinyModel(path.join(tempDir(), 'gone'));
  fs.rmSync(path.join(gone, 'pytorch_model.bin'));
  await t.throwsAsync(ShowO2Model.load(gone, { vaePath: tinyVaePath }), { instanceOf: ModelNotFoundError, code: 'ERR_MODEL_NOT_FOUND' });

  const racing = writeTinyModel(path.join(tempDir(), 'racing'));
  for (const delay of [0, 1, 5, 20]) {
    fs.writeFileSync(path.join(racing, 'pytorch_model.bin'), zlib.gunzipSync(fs.readFileSync(path.join(repoRoot, 'test', 'fixtures', 'showo2', 'tiny-model', 'pytorch_model.bin.gz'))));
    const loading = ShowO2Model.load(racing, { vaePath: tinyVaePath });
    await new Promise((resolve) => setTimeout(resolve, delay));
    fs.rmSync(path.join(racing, 'pytorch_model.bin'));
    try {
      // Deleted after the file was opened: POSIX keeps the open file, so the model loads and works.
      const loaded = await loading;
      t.true((await loaded.answer({ question: 'hi', maxTokens: 2 })).tokens.length > 0);
      loaded.dispose();
    } catch (err) {
      t.true(err instanceof ModelNotFoundError || err instanceof FileAccessError, String(err));
    }
  }
  await stillWorks(t, model);
});

test('a checkpoint truncated before the load: ERR_CORRUPT_FILE naming the file', async (t) => {
  const dir = writeTinyModel(path.join(tempDir(), 'truncated'));
  const weights = path.join(dir, 'pytorch_model.bin');
  for (const size of [10, 1000, Math.floor(fs.statSync(weights).size / 2), fs.statSync(weights).size - 1]) {
    fs.truncateSync(weights, size);
    const err = await t.throwsAsync(ShowO2Model.load(dir, { vaePath: tinyVaePath }), { instanceOf: ShowO2Error, code: 'ERR_CORRUPT_FILE' });
    t.true(err!.message.includes(weights), err!.message);
  }
  await stillWorks(t, await modelPromise);
});

test('SHOWO2_NO_MMAP=1: a checkpoint truncated while loading gives a typed error or a working model', async (t) => {
  const result = await runChild(['truncate-during-load', writeTinyModel(path.join(tempDir(), 'during'))], { SHOWO2_NO_MMAP: '1' });
  t.is(result.signal, null, result.stderr);
  t.is(result.code, 0, result.stderr);
  const { outcomes } = JSON.parse(result.stdout) as { outcomes: { loaded: boolean; answered?: boolean; error?: { name: string; code: string } }[] };
  t.is(outcomes.length, 6);
  for (const o of outcomes) {
    if (o.loaded) t.true(o.answered, JSON.stringify(o));
    else t.true(o.error!.code === 'ERR_CORRUPT_FILE' || o.error!.code === 'ERR_INVALID_ARGUMENT', JSON.stringify(o));
  }
});

test('SHOWO2_NO_MMAP=1: a checkpoint truncated and deleted after the load does not reach the model', async (t) => {
  const result = await runChild(['truncate-after-load', writeTinyModel(path.join(tempDir(), 'after'))], { SHOWO2_NO_MMAP: '1' });
  t.is(result.signal, null, `killed by ${result.signal}: ${result.stderr}`);
  t.is(result.code, 0, result.stderr);
  t.like(JSON.parse(result.stdout), { same: true, truncated: { ok: true }, deleted: { ok: true } });
});

// ---- disk full while converting -----------------------------------------------------------------------------------

test('the disk filling up while converting: ERR_FILE_READ naming the output, nothing left behind, then a conversion works', async (t) => {
  const src = path.join(modelDir, 'pytorch_model.bin'); // 9 MB of tensors: far more than the 64 kB that fit
  const full = path.join(tempDir(), 'full');
  fs.mkdirSync(full);
  const mounted = process.platform === 'linux' && process.getuid?.() === 0 &&
    spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', full]).status === 0;
  try {
    const dst = path.join(full, 'model.safetensors');
    let err: ShowO2Error | undefined;
    if (mounted) {
      err = await t.throwsAsync(convertToSafetensors(src, dst), { instanceOf: FileAccessError, code: 'ERR_FILE_READ' });
    } else {
      // Not root (CI): a file-size limit makes write() fail the same way (EFBIG instead of ENOSPC). SIGXFSZ is
      // ignored so that the write fails instead of the process being killed.
      const script = `require(${JSON.stringify(path.join(repoRoot, 'dist', 'index.js'))}).convertToSafetensors(${JSON.stringify(src)}, ${JSON.stringify(dst)})` +
        `.then(() => console.log('converted'), (e) => console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })))`;
      const r = spawnSync('sh', ['-c', `trap '' XFSZ; ulimit -f 128; exec "${process.execPath}" -e "$0"`, script], { encoding: 'utf8' });
      t.is(r.status, 0, r.stderr);
      const e = JSON.parse(r.stdout) as { name: string; code: string; message: string };
      t.is(e.code, 'ERR_FILE_READ');
      t.is(e.name, 'FileAccessError');
      err = e as unknown as ShowO2Error;
    }
    t.true(err!.message.includes(full), err!.message);
    t.deepEqual(fs.readdirSync(full), [], 'no partial or temporary file is left');
    if (mounted) {
      // Room again: a small checkpoint converts into the same (now empty) tmpfs.
      const small = path.join(repoRoot, 'test', 'fixtures', 'vae', 'tiny_vae.pth');
      if (fs.statSync(small).size < 48_000) t.true((await convertToSafetensors(small, dst)) > 0);
    }
  } finally {
    if (mounted) spawnSync('umount', [full]);
  }
  const out = path.join(tempDir(), 'ok.safetensors');
  t.true((await convertToSafetensors(src, out)) > 0);
  (await WeightFile.open(out)).dispose();
});

// ---- out of memory ------------------------------------------------------------------------------------------------

test('allocation failures (SHOWO2_TEST_ALLOC_LIMIT): ERR_OUT_OF_MEMORY, and smaller calls still work', async (t) => {
  const result = await runChild(['oom', modelDir], { SHOWO2_TEST_ALLOC_LIMIT: String(4 << 20) });
  t.is(result.signal, null, result.stderr);
  t.is(result.code, 0, result.stderr);
  const out = JSON.parse(result.stdout) as Record<string, { ok: boolean; error?: { name: string; code: string; message: string } }>;
  for (const key of ['largeGeneration', 'largeDecode']) {
    t.false(out[key]!.ok, key);
    t.is(out[key]!.error!.code, 'ERR_OUT_OF_MEMORY', key);
    t.is(out[key]!.error!.name, 'OutOfMemoryError', key);
  }
  t.like(out, { smallGeneration: { ok: true, width: 32 }, answer: { ok: true } });
});

// ---- prompts at the context limit ---------------------------------------------------------------------------------

test('a prompt filling the context to its last position answers; one position more is ERR_INVALID_ARGUMENT', async (t) => {
  const model = await modelPromise;
  const context = model.info.contextLength;
  const base = buildTurn(model.tokenizer as never, { start: 0, continuation: false, systemPrompt: 'You are a helpful assistant.', question: '', layout: 'demo' }).ids.length;
  const question = (n: number) => ' a'.repeat(n);
  // ' a' is one token each: find the question length that makes the prompt exactly context - 1 positions.
  let n = context - 1 - base;
  while (base + model.tokenizer.encode(question(n)).length > context - 1) n--;
  t.is(base + model.tokenizer.encode(question(n)).length, context - 1);
  const atLimit = await model.answer({ question: question(n), maxTokens: 8 });
  t.is(atLimit.usage.promptTokens, context - 1);
  t.true(atLimit.tokens.length <= 2, 'at most the positions left');
  t.true(atLimit.finishReason === 'length' || atLimit.finishReason === 'eos');
  const over = await t.throwsAsync(model.answer({ question: question(n + 1), maxTokens: 8 }), { instanceOf: InvalidInputError, code: 'ERR_INVALID_ARGUMENT' });
  t.regex(over!.message, new RegExp(`context is ${context} positions`));
  // In a chat the limit counts what is already there.
  const chat = model.createChat();
  await chat.ask({ question: question(Math.floor(n / 2)), maxTokens: 2 });
  await t.throwsAsync(chat.ask({ question: question(Math.floor(n / 2) + 10), maxTokens: 2 }), { code: 'ERR_INVALID_ARGUMENT' });
  t.true((await chat.ask({ question: 'ok?', maxTokens: 2 })).usage.promptTokens > 0, 'the chat goes on after the refused turn');
  chat.dispose();
  await stillWorks(t, model);
});

// ---- images -------------------------------------------------------------------------------------------------------

/** A PNG whose IHDR claims width x height (CRC fixed up), with photo.png's pixel data after it. */
function pngClaiming(width: number, height: number): Buffer {
  const png = Buffer.from(fs.readFileSync(photoPath));
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(zlib.crc32(png.subarray(12, 29)), 29);
  return png;
}

/** A JPEG whose first SOF segment claims width x height. */
function jpegClaiming(width: number, height: number): Buffer {
  const jpeg = Buffer.from(fs.readFileSync(path.join(repoRoot, 'test', 'fixtures', 'images', 'photo.jpg')));
  for (let i = 2; i < jpeg.length - 9; ) {
    const marker = jpeg[i + 1]!;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      jpeg.writeUInt16BE(height, i + 5);
      jpeg.writeUInt16BE(width, i + 7);
      return jpeg;
    }
    i += 2 + jpeg.readUInt16BE(i + 2);
  }
  throw new Error('no SOF marker in photo.jpg');
}

test('a 1x1 image works everywhere an image goes', async (t) => {
  const model = await modelPromise;
  const pixel: RgbImage = { width: 1, height: 1, data: new Uint8Array([200, 30, 60]) };
  const png = encodePng(pixel);
  t.deepEqual(decodeImage(png), pixel);
  const tokensPerImage = model.info.tokensPerImage;
  const asImage = await model.answer({ image: png, question: 'What colour?', maxTokens: 3 });
  t.true(asImage.usage.promptTokens > tokensPerImage && ['length', 'eos'].includes(asImage.finishReason));
  const asVideo = await model.answer({ video: { frames: [png, pixel], numFrames: 2 }, question: 'What happens?', maxTokens: 3 });
  t.true(asVideo.usage.promptTokens > 0 && ['length', 'eos'].includes(asVideo.finishReason));
  const video = await model.generateVideo({ prompt: 'x', image: png, frames: 5, width: 32, height: 32, steps: 2, seed: 1, output: 'latent' });
  t.deepEqual([...video.latents.shape], [1, 16, 2, 4, 4]);
  // The VAE itself takes sides that are multiples of 8: a 1x1 image is a typed refusal, 8x8 its smallest input.
  await t.throwsAsync(model.vae.encode(pixel), { instanceOf: InvalidInputError, code: 'ERR_INVALID_ARGUMENT' });
  const latent = await model.vae.encode({ width: 8, height: 8, data: new Uint8Array(192).fill(200) });
  t.deepEqual([...latent.shape], [1, 16, 1, 1, 1]);
  await stillWorks(t, model);
});

test('images of 20000x20000 are refused from their header, before decoding (PNG, JPEG, and a decoded image)', async (t) => {
  const model = await modelPromise;
  for (const [format, bytes] of [['PNG', pngClaiming(20000, 20000)], ['JPEG', jpegClaiming(20000, 20000)]] as const) {
    const err = t.throws(() => decodeImage(bytes), { instanceOf: InvalidInputError, code: 'ERR_INVALID_IMAGE' });
    t.regex(err!.message, /20000x20000 exceeds the limit/, format);
    await t.throwsAsync(model.answer({ image: bytes, question: 'What?' }), { code: 'ERR_INVALID_IMAGE' }, format);
    await t.throwsAsync(model.generateVideo({ prompt: 'x', image: bytes, frames: 5, width: 32, height: 32, steps: 2 }), { code: 'ERR_INVALID_IMAGE' }, format);
  }
  // A decoded image that claims 20000x20000 but holds 3 bytes.
  const liar = { width: 20000, height: 20000, data: new Uint8Array(3) };
  await t.throwsAsync(model.answer({ image: liar, question: 'What?' }), { instanceOf: InvalidInputError });
  await t.throwsAsync(model.vae.encode(liar), { instanceOf: InvalidInputError });
  await stillWorks(t, model);
});

// ---- NaN and Infinity in latents ----------------------------------------------------------------------------------

test('NaN or Infinity in user latents: ERR_INVALID_ARGUMENT naming the element', async (t) => {
  const model = await modelPromise;
  const shape = [1, 16, 1, 4, 4];
  for (const [i, bad] of [[0, Number.NaN], [7, Number.POSITIVE_INFINITY], [255, Number.NEGATIVE_INFINITY]] as const) {
    const data = new Float32Array(256).fill(0.5);
    data[i] = bad;
    const gen = await t.throwsAsync(model.generateImages({ prompt: 'x', width: 32, height: 32, steps: 2, latents: { data, shape } }), {
      instanceOf: InvalidInputError,
      code: 'ERR_INVALID_ARGUMENT',
    });
    t.true(gen!.message.includes(`options.latents.data[${i}]`), gen!.message);
    const dec = await t.throwsAsync(model.vae.decode({ data, shape }), { instanceOf: InvalidInputError, code: 'ERR_INVALID_ARGUMENT' });
    t.true(dec!.message.includes(`latent.data[${i}]`), dec!.message);
    const pixels = new Float32Array(3 * 8 * 8).fill(0);
    pixels[i % pixels.length] = bad;
    await t.throwsAsync(model.vae.encode({ data: pixels, shape: [1, 3, 1, 8, 8] }), { instanceOf: InvalidInputError, code: 'ERR_INVALID_ARGUMENT' });
  }
  await stillWorks(t, model);
});

// ---- sizes beyond the context -------------------------------------------------------------------------------------

test('generation sizes far beyond the context are ERR_INVALID_ARGUMENT before any work (no V8 fatal error)', async (t) => {
  const model = await modelPromise;
  const cases = [
    () => model.generateVideo({ prompt: 'x', width: 16384, height: 16384, frames: 4097, steps: 2 }),
    () => model.generateVideo({ prompt: 'x', width: 16384, height: 16384, frames: 17, steps: 2 }),
    () => model.generateImages({ prompt: 'x', width: 16384, height: 16384, steps: 2 }),
    () => model.generateImages({ prompt: ['x', 'y'], width: 1024, height: 1024, steps: 2 }),
    () => model.generateImages({ prompt: 'x', width: 32, height: 32, steps: 2, maxTextTokens: 1e9 }),
  ];
  for (const call of cases) {
    const started = performance.now();
    const err = await t.throwsAsync(call(), { instanceOf: InvalidInputError, code: 'ERR_INVALID_ARGUMENT' });
    t.regex(err!.message, /context is 4096 positions/);
    t.true(performance.now() - started < 1000 * timeScale, 'refused before building anything');
  }
  // Exactly at the context: a 48x48 image is 9 visual tokens, so maxTextTokens 4096 - 9 - 5 fills it to the last
  // position and runs; one more is refused.
  const fits = await model.generateImages({ prompt: 'x', width: 48, height: 48, steps: 2, maxTextTokens: 4096 - 9 - 5, output: 'latent' });
  t.deepEqual([...fits.latents.shape], [1, 16, 1, 6, 6]);
  await t.throwsAsync(model.generateImages({ prompt: 'x', width: 48, height: 48, steps: 2, maxTextTokens: 4096 - 9 - 4 }), { code: 'ERR_INVALID_ARGUMENT' });
  await stillWorks(t, model);
});

// ---- video questions with few frames ------------------------------------------------------------------------------

test('a video question with 1 or 2 frames works (the demo block is clamped to the prompt, as the reference slices it)', async (t) => {
  const model = await modelPromise;
  for (const numFrames of [1, 2, 3, 4]) {
    const r = await model.answer({ video: { frames: [photoPath, photoPath, photoPath], numFrames }, question: 'What happens?', maxTokens: 3 });
    t.true(['length', 'eos'].includes(r.finishReason), `numFrames ${numFrames}`);
  }
  // The block: from one position after TIME, the per-image length (16 + 1 for the tiny model), cut at the prompt's end.
  const turn = (frames: number) =>
    buildTurn(model.tokenizer as never, {
      start: 0,
      continuation: false,
      systemPrompt: 'You are a helpful assistant.',
      question: 'Q',
      visual: { tokens: frames * 4, tokensPerImage: 16 },
      layout: 'demo',
    });
  for (const frames of [1, 2]) {
    const chunk = turn(frames);
    t.is(chunk.blocks[0]!.offset, chunk.timePosition! + 1);
    t.is(chunk.blocks[0]!.offset + chunk.blocks[0]!.length, chunk.ids.length, `frames ${frames}: ends with the prompt`);
  }
  for (const frames of [5, 8]) t.is(turn(frames).blocks[0]!.length, 17, `frames ${frames}: the per-image length`);
  await stillWorks(t, model);
});

// ---- dispose under load -------------------------------------------------------------------------------------------

test('disposing a model while it evaluates a long prompt rejects the answer with ERR_DISPOSED (not a cancellation)', async (t) => {
  const model = await ShowO2Model.load(modelDir, { vaePath: tinyVaePath });
  const chat = model.createChat();
  const answering = chat.ask({ question: ' a'.repeat(3000), maxTokens: 4 });
  // Once the prompt is in the native evaluation (the tokenizer runs first, synchronously), dispose the model.
  await new Promise((resolve) => setTimeout(resolve, 20));
  model.dispose();
  const err = await t.throwsAsync(answering, { instanceOf: ShowO2Error, code: 'ERR_DISPOSED' });
  t.is(err!.name, 'DisposedError');
  t.true(chat.disposed);
  await stillWorks(t, await modelPromise);
});

test.after.always(async () => {
  (await modelPromise).dispose();
});
