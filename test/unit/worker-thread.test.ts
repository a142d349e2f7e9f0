// The addon is context-aware: it loads and works in worker_threads, alongside the main thread, and a worker that is
// terminated with native work in flight does not take the process down.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

import test from 'ava';

import { runtimeInfo, WeightFile } from 'showo2';
import { repoRoot, tempDir, writeSafetensors } from '../helpers.js';

const dir = tempDir();
const sample = writeSafetensors(path.join(dir, 'w.safetensors'), [
  { name: 'x', dtype: 'F32', shape: [3], data: new Float32Array([1, 2, 3]) },
]);

function runWorker(source: string, workerData: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(source, { eval: true, workerData });
    let result: unknown;
    worker.on('message', (m) => (result = m));
    worker.on('error', reject);
    worker.on('exit', (code) => (code === 0 ? resolve(result) : reject(new Error(`worker exited with ${code}`))));
  });
}

const readInWorker = `
  const { parentPort, workerData } = require('node:worker_threads');
  const { WeightFile, runtimeInfo } = require(workerData.entry);
  (async () => {
    const info = await runtimeInfo();
    const weights = await WeightFile.open(workerData.file);
    const x = await weights.read('x');
    weights.dispose();
    parentPort.postMessage({ threads: info.defaultThreadCount, values: Array.from(x.data) });
  })().catch((err) => { parentPort.postMessage({ error: String(err) }); });
`;

test('two workers and the main thread use the addon at the same time', async (t) => {
  const data = { entry: path.join(repoRoot, 'dist', 'index.js'), file: sample };
  const [a, b, main] = await Promise.all([
    runWorker(readInWorker, data),
    runWorker(readInWorker, data),
    (async () => {
      const weights = await WeightFile.open(sample);
      const x = await weights.read('x');
      weights.dispose();
      return Array.from(x.data as Float32Array);
    })(),
  ]);
  const expected = { threads: (await runtimeInfo()).defaultThreadCount, values: [1, 2, 3] };
  t.deepEqual(a, expected);
  t.deepEqual(b, expected);
  t.deepEqual(main, [1, 2, 3]);
});

test('terminating a worker with native calls in flight leaves the main thread working', async (t) => {
  // Four chains of open/read/runtimeInfo that never end, so calls are always in flight when terminate() lands, and
  // the worker cannot exit by itself (its exit code is then always 1, the code of a terminated worker).
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { WeightFile, runtimeInfo } = require(workerData.entry);
    async function chain() {
      for (;;) {
        const w = await WeightFile.open(workerData.file);
        await Promise.all([w.read('x'), w.read('x'), runtimeInfo()]);
        w.dispose();
        parentPort.postMessage('tick');
      }
    }
    for (let i = 0; i < 4; i++) chain();
  `;
  for (let round = 0; round < 3; round++) {
    const worker = new Worker(source, { eval: true, workerData: { entry: path.join(repoRoot, 'dist', 'index.js'), file: sample } });
    await new Promise((resolve) => worker.once('message', resolve));
    t.is(await worker.terminate(), 1);
  }
  const weights = await WeightFile.open(sample);
  t.deepEqual(Array.from((await weights.read('x')).data as Float32Array), [1, 2, 3]);
  weights.dispose();
});

// N workers, each loading its own copy of the tiny Show-o2 and running an answer and an image generation while the
// main thread does the same: every thread gets the main thread's results bit for bit, and every worker exits by itself.
const modelInWorker = `
  const { parentPort, workerData } = require('node:worker_threads');
  const { createHash } = require('node:crypto');
  const { ShowO2Model } = require(workerData.entry);
  (async () => {
    const model = await ShowO2Model.load(workerData.modelDir, { vaePath: workerData.vaePath });
    const answer = await model.answer({ image: workerData.image, question: 'What is this?', maxTokens: 6 });
    const { latents, images } = await model.generateImages({ prompt: 'a red square', width: 48, height: 48, steps: 3, seed: 11 });
    const hash = createHash('sha256').update(Buffer.from(latents.data.buffer, latents.data.byteOffset, latents.data.byteLength));
    hash.update(images[0].data);
    model.dispose();
    parentPort.postMessage({ tokens: answer.tokens, text: answer.text, digest: hash.digest('hex') });
  })().catch((err) => { parentPort.postMessage({ error: String(err && err.stack || err) }); });
`;

test('four workers and the main thread each load and run a model at the same time, with identical results', async (t) => {
  const { photoPath, tinyVaePath, writeTinyModel } = await import('../scenarios/tiny-model.js');
  const { ShowO2Model } = await import('showo2');
  const { createHash } = await import('node:crypto');
  const modelDir = writeTinyModel(path.join(dir, 'model'));
  const data = { entry: path.join(repoRoot, 'dist', 'index.js'), modelDir, vaePath: tinyVaePath, image: photoPath };
  const workers = Array.from({ length: 4 }, () => runWorker(modelInWorker, data));
  const main = (async () => {
    const model = await ShowO2Model.load(modelDir, { vaePath: tinyVaePath });
    try {
      const answer = await model.answer({ image: photoPath, question: 'What is this?', maxTokens: 6 });
      const { latents, images } = await model.generateImages({ prompt: 'a red square', width: 48, height: 48, steps: 3, seed: 11 });
      const hash = createHash('sha256').update(Buffer.from(latents.data.buffer, latents.data.byteOffset, latents.data.byteLength));
      hash.update(images[0]!.data);
      return { tokens: answer.tokens, text: answer.text, digest: hash.digest('hex') };
    } finally {
      model.dispose();
    }
  })();
  const [expected, ...results] = await Promise.all([main, ...workers]);
  t.true((expected as { tokens: number[] }).tokens.length > 0);
  for (const result of results) t.deepEqual(result, expected);
});

test('terminating workers in the middle of model calls leaves the main thread working', async (t) => {
  const { tinyVaePath, writeTinyModel } = await import('../scenarios/tiny-model.js');
  const modelDir = writeTinyModel(path.join(dir, 'model-terminate'));
  // Each worker loops generations and answers forever; it is terminated once it reports its first round, so native
  // work (a generation with its progress callback, an evaluation) is in flight when the worker's environment goes away.
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { ShowO2Model } = require(workerData.entry);
    (async () => {
      const model = await ShowO2Model.load(workerData.modelDir, { vaePath: workerData.vaePath });
      const loop = async (kind) => {
        for (;;) {
          if (kind === 0) await model.generateImages({ prompt: 'x', width: 64, height: 64, steps: 8, seed: 1, onStep: () => {} });
          else await model.answer({ question: 'hello there', maxTokens: 16 });
          parentPort.postMessage('round');
        }
      };
      loop(0); loop(1);
    })();
  `;
  const data = { entry: path.join(repoRoot, 'dist', 'index.js'), modelDir, vaePath: tinyVaePath };
  await Promise.all(
    Array.from({ length: 3 }, async () => {
      const worker = new Worker(source, { eval: true, workerData: data });
      await new Promise((resolve) => worker.once('message', resolve));
      t.is(await worker.terminate(), 1);
    }),
  );
  const weights = await WeightFile.open(sample);
  t.deepEqual(Array.from((await weights.read('x')).data as Float32Array), [1, 2, 3]);
  weights.dispose();
});
