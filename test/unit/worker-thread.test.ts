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
