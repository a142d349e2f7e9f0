#!/usr/bin/env node
// Leak check: cycles of load, generate (an image and a 5-frame video), answer (text, image, a two-turn chat), VAE
// decode and dispose on the tiny Show-o2 fixture, with the process's resident memory sampled after every cycle.
//
//   npm run build:ts && node --expose-gc bench/leaks.mjs [--cycles 1000] [--warmup 100] [--max-growth 5] [--json]
//
// After `warmup` cycles (allocator pools, JIT, caches settle) the RSS may not grow by more than 5% (--max-growth,
// in percent; the short run in the tests allows more, as its windows are a few cycles each): the growth is
// (median RSS of the last tenth of the cycles - median RSS of the first tenth after warm-up) / the latter, medians so
// that one sample's noise cannot decide. It also checks, every cycle, that the model's weights count as V8 external
// memory (addon.externalMemory(): V8's own count) while it is loaded and stop counting after dispose(). Prints a
// summary (or one JSON line with --json) and exits with 1 when a check fails. test/unit/leaks.test.ts runs a short
// version; bench/RESULTS.md has a full run.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { ShowO2Model, WeightFile } = require(path.join(root, 'dist', 'index.js'));
const { addon } = require(path.join(root, 'dist', 'native.js'));

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} takes a non-negative integer`);
  return value;
}
const cycles = option('cycles', 1000);
const warmup = option('warmup', Math.min(100, Math.floor(cycles / 5)));
const maxGrowth = option('max-growth', 5) / 100;
const json = process.argv.includes('--json');
if (cycles - warmup < 10) throw new Error('--cycles must exceed --warmup by at least 10');

const fixture = path.join(root, 'test', 'fixtures', 'showo2', 'tiny-model');
const vaePath = path.join(root, 'test', 'fixtures', 'vae', 'tiny_vae.pth');
const photo = path.join(root, 'test', 'fixtures', 'images', 'photo.png');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'showo2-leaks-'));
fs.copyFileSync(path.join(fixture, 'config.json'), path.join(dir, 'config.json'));
fs.writeFileSync(path.join(dir, 'pytorch_model.bin'), zlib.gunzipSync(fs.readFileSync(path.join(fixture, 'pytorch_model.bin.gz'))));

const collect = () => globalThis.gc?.();

// What a loaded model reports to V8: the bytes of every tensor of the checkpoint and the VAE.
async function checkpointBytes(file) {
  const weights = await WeightFile.open(file);
  const sizes = { F64: 8, I64: 8, F32: 4, I32: 4, BF16: 2, F16: 2, I16: 2, I8: 1, U8: 1, BOOL: 1 };
  const bytes = weights.tensors.reduce((sum, t) => sum + sizes[t.dtype] * t.shape.reduce((a, b) => a * b, 1), 0);
  weights.dispose();
  return bytes;
}
const expectedExternal = (await checkpointBytes(path.join(dir, 'pytorch_model.bin'))) + (await checkpointBytes(vaePath));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

const rss = [];
const failures = [];
let externalHeld = 0;
const started = performance.now();
try {
  for (let cycle = 0; cycle < cycles; cycle++) {
    collect();
    const model = await ShowO2Model.load(dir, { vaePath });
    const loaded = addon().externalMemory();
    const { latents } = await model.generateImages({ prompt: 'a red square', width: 48, height: 48, steps: 3, seed: cycle });
    await model.generateVideo({ prompt: 'waves', width: 32, height: 32, frames: 5, steps: 2, seed: cycle, output: 'latent' });
    await model.answer({ question: 'hello', maxTokens: 4 });
    await model.answer({ image: photo, question: 'What is this?', maxTokens: 4 });
    const chat = model.createChat();
    await chat.ask({ question: 'one', maxTokens: 3 });
    await chat.ask({ question: 'two', maxTokens: 3 });
    await model.vae.decode(latents);
    const beforeDispose = addon().externalMemory();
    model.dispose();
    // dispose() is synchronous: exactly the weights' bytes leave V8's external memory count.
    externalHeld = beforeDispose - addon().externalMemory();
    if (externalHeld !== expectedExternal || loaded < expectedExternal) {
      failures.push(`cycle ${cycle}: V8 external memory ${loaded} after load, ${externalHeld} released by dispose (expected ${expectedExternal})`);
    }
    collect();
    rss.push(process.memoryUsage().rss);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

const window = Math.max(5, Math.floor((cycles - warmup) / 10));
const base = median(rss.slice(warmup, warmup + window));
const end = median(rss.slice(rss.length - window));
const growth = (end - base) / base;
if (!(growth < maxGrowth)) failures.push(`RSS grew by ${(growth * 100).toFixed(2)}% after warm-up (limit ${maxGrowth * 100}%)`);
const summary = {
  cycles,
  warmup,
  window,
  seconds: Math.round((performance.now() - started) / 100) / 10,
  gc: typeof globalThis.gc === 'function',
  rssFirstMiB: Math.round((rss[0] / 2 ** 20) * 10) / 10,
  rssBaseMiB: Math.round((base / 2 ** 20) * 10) / 10,
  rssEndMiB: Math.round((end / 2 ** 20) * 10) / 10,
  rssMaxMiB: Math.round((Math.max(...rss) / 2 ** 20) * 10) / 10,
  growthPercent: Math.round(growth * 10000) / 100,
  externalHeldBytes: externalHeld,
  externalExpectedBytes: expectedExternal,
  failures,
};
if (json) process.stdout.write(`${JSON.stringify(summary)}\n`);
else {
  console.log(`${cycles} cycles (${warmup} warm-up) in ${summary.seconds} s; gc exposed: ${summary.gc}`);
  console.log(`RSS: first cycle ${summary.rssFirstMiB} MiB, after warm-up ${summary.rssBaseMiB} MiB, end ${summary.rssEndMiB} MiB, max ${summary.rssMaxMiB} MiB: growth ${summary.growthPercent}%`);
  console.log(`V8 external memory held by a loaded model and released by dispose(): ${externalHeld} bytes (expected ${expectedExternal})`);
  console.log(failures.length ? `FAIL\n${failures.join('\n')}` : 'OK');
}
process.exitCode = failures.length ? 1 : 0;
