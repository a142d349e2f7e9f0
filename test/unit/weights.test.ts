// WeightFile on safetensors files written by the test itself: listing, reading every dtype, metadata, lifetimes.
import * as fs from 'node:fs';
import * as path from 'node:path';

import test from 'ava';

import { ShowO2Error, WeightFile, bf16ToFloat32 } from 'showo2';
import { tempDir, writeSafetensors } from '../helpers.js';

const dir = tempDir();
const sample = writeSafetensors(
  path.join(dir, 'sample.safetensors'),
  [
    { name: 'layer.weight', dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, -6.5]) },
    { name: 'layer.bias', dtype: 'BF16', shape: [4], data: new Uint16Array([0x3f80, 0x4000, 0xbf80, 0x0000]) },
    { name: 'half', dtype: 'F16', shape: [2, 2], data: new Uint16Array([0x3c00, 0x4000, 0x4200, 0xc400]) },
    { name: 'ids', dtype: 'I64', shape: [3], data: new BigInt64Array([1n, -2n, 2n ** 40n]) },
    { name: 'counts', dtype: 'I32', shape: [2], data: new Int32Array([7, -8]) },
    { name: 'mask', dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
    { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
    { name: 'scalar', dtype: 'F64', shape: [], data: new Float64Array([Math.PI]) },
  ],
  { format: 'pt', source: 'weights.test.ts' },
);

test('open lists format, path, metadata and every tensor sorted by name', async (t) => {
  const weights = await WeightFile.open(sample);
  t.is(weights.format, 'safetensors');
  t.is(weights.path, sample);
  t.deepEqual({ ...weights.metadata }, { format: 'pt', source: 'weights.test.ts' });
  t.deepEqual(
    weights.tensors.map((x) => [x.name, x.dtype, [...x.shape]]),
    [
      ['counts', 'I32', [2]],
      ['empty', 'F32', [0, 4]],
      ['half', 'F16', [2, 2]],
      ['ids', 'I64', [3]],
      ['layer.bias', 'BF16', [4]],
      ['layer.weight', 'F32', [2, 3]],
      ['mask', 'BOOL', [3]],
      ['scalar', 'F64', []],
    ],
  );
  t.true(weights.has('layer.weight'));
  t.false(weights.has('layer'));
  weights.dispose();
});

test('read returns the stored bytes as the typed array of each dtype', async (t) => {
  const weights = await WeightFile.open(sample);
  const w = await weights.read('layer.weight');
  t.is(w.dtype, 'F32');
  t.deepEqual([...w.shape], [2, 3]);
  t.true(w.data instanceof Float32Array);
  t.deepEqual(Array.from(w.data as Float32Array), [1, 2, 3, 4, 5, -6.5]);

  const b = await weights.read('layer.bias');
  t.true(b.data instanceof Uint16Array);
  t.deepEqual(Array.from(b.data as Uint16Array), [0x3f80, 0x4000, 0xbf80, 0x0000]);
  t.deepEqual(Array.from(bf16ToFloat32(b.data as Uint16Array)), [1, 2, -1, 0]);

  const h = await weights.read('half');
  t.is(h.dtype, 'F16');
  t.true(h.data instanceof Uint16Array);

  const ids = await weights.read('ids');
  t.true(ids.data instanceof BigInt64Array);
  t.deepEqual(Array.from(ids.data as BigInt64Array), [1n, -2n, 2n ** 40n]);

  const counts = await weights.read('counts');
  t.deepEqual(Array.from(counts.data as Int32Array), [7, -8]);

  const mask = await weights.read('mask');
  t.true(mask.data instanceof Uint8Array);
  t.deepEqual(Array.from(mask.data as Uint8Array), [1, 0, 1]);

  const empty = await weights.read('empty');
  t.is(empty.data.length, 0);
  t.deepEqual([...empty.shape], [0, 4]);

  const scalar = await weights.read('scalar');
  t.deepEqual([...scalar.shape], []);
  t.deepEqual(Array.from(scalar.data as Float64Array), [Math.PI]);
  weights.dispose();
});

test('read copies: the data outlives dispose and writing to it does not change the file', async (t) => {
  const weights = await WeightFile.open(sample);
  const first = await weights.read('layer.weight');
  (first.data as Float32Array)[0] = 100;
  const second = await weights.read('layer.weight');
  t.is((second.data as Float32Array)[0], 1);
  weights.dispose();
  t.is((first.data as Float32Array)[1], 2);
});

test('many reads in parallel', async (t) => {
  const weights = await WeightFile.open(sample);
  const names = weights.tensors.map((x) => x.name);
  const all = await Promise.all([...names, ...names, ...names].map((name) => weights.read(name)));
  t.deepEqual(
    all.map((x) => x.dtype),
    [...names, ...names, ...names].map((name) => weights.tensors.find((x) => x.name === name)!.dtype),
  );
  weights.dispose();
});

test('read of an unknown name or a non-string is a typed error naming it', async (t) => {
  const weights = await WeightFile.open(sample);
  await t.throwsAsync(weights.read('layer.wieght'), {
    instanceOf: ShowO2Error,
    code: 'ERR_TENSOR_NOT_FOUND',
    message: `No tensor named "layer.wieght" in ${sample}`,
  });
  await t.throwsAsync(weights.read(7 as unknown as string), {
    code: 'ERR_INVALID_ARGUMENT',
    message: 'Expected a string for name but received 7 (number)',
  });
  weights.dispose();
});

test('open reports a missing file and a directory with their codes and the path', async (t) => {
  const missing = path.join(dir, 'nope.safetensors');
  const err = await t.throwsAsync(WeightFile.open(missing), { instanceOf: ShowO2Error, code: 'ERR_FILE_NOT_FOUND' });
  t.true(err!.message.includes(missing), err!.message);
  const dirErr = await t.throwsAsync(WeightFile.open(dir), { code: 'ERR_FILE_READ' });
  t.true(dirErr!.message.includes(dir), dirErr!.message);
});

test('use after dispose throws ERR_DISPOSED everywhere; dispose is idempotent', async (t) => {
  const weights = await WeightFile.open(sample);
  t.false(weights.disposed);
  weights.dispose();
  weights.dispose();
  t.true(weights.disposed);
  const disposed = (operation: string) => ({
    instanceOf: ShowO2Error,
    code: 'ERR_DISPOSED',
    message: `Cannot ${operation}: the WeightFile has been disposed`,
  });
  t.throws(() => weights.path, disposed('read path'));
  t.throws(() => weights.format, disposed('read format'));
  t.throws(() => weights.tensors, disposed('list tensors'));
  t.throws(() => weights.metadata, disposed('read metadata'));
  t.throws(() => weights.has('mask'), disposed('look up a tensor'));
  await t.throwsAsync(weights.read('mask'), disposed('read a tensor'));
});

test('a read in flight completes even if the file is disposed meanwhile', async (t) => {
  const weights = await WeightFile.open(sample);
  const pending = weights.read('layer.weight');
  weights.dispose();
  const w = await pending;
  t.deepEqual(Array.from(w.data as Float32Array), [1, 2, 3, 4, 5, -6.5]);
});

test('await using disposes at the end of the block', async (t) => {
  let escaped: WeightFile | undefined;
  {
    await using weights = await WeightFile.open(sample);
    escaped = weights;
    t.false(weights.disposed);
  }
  t.true(escaped.disposed);
});

test('the file can be replaced on disk while open (it is mapped, and reads see the mapped bytes)', async (t) => {
  const copy = path.join(dir, 'copy.safetensors');
  fs.copyFileSync(sample, copy);
  const weights = await WeightFile.open(copy);
  fs.rmSync(copy);
  const w = await weights.read('counts');
  t.deepEqual(Array.from(w.data as Int32Array), [7, -8]);
  weights.dispose();
});
