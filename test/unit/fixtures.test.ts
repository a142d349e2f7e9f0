// Every good checkpoint fixture (test/fixtures/weights/, written by tools/fixtures/make_weight_fixtures.py with the
// real torch.save / safetensors tools) opens, lists and reads back exactly the values recorded in expected.json.
import * as fs from 'node:fs';
import * as path from 'node:path';

import test from 'ava';

import { convertToSafetensors, toFloat32Array, WeightFile, type TensorData } from 'showo2';
import { fixturesDir, tempDir } from '../helpers.js';

interface ExpectedTensor {
  dtype: string;
  shape: number[];
  values: number[];
}
interface ExpectedFile {
  metadata: Record<string, string>;
  shared: string[][];
  tensors: Record<string, ExpectedTensor>;
}

const expected = JSON.parse(fs.readFileSync(path.join(fixturesDir, 'expected.json'), 'utf8')) as Record<string, ExpectedFile>;

function values(tensor: TensorData): number[] {
  if (tensor.dtype === 'I64') return Array.from(tensor.data, (v) => Number(v));
  if (tensor.dtype === 'F64') return Array.from(tensor.data);
  return Array.from(toFloat32Array(tensor));
}

test('the fixture set is there', (t) => {
  for (const name of [
    'tiny.safetensors',
    'tiny_model.bin',
    'tiny_model_unaligned.bin',
    'tiny_model_zip64.bin',
    'tiny_params_archive.pth',
    'sharded_safetensors/model.safetensors.index.json',
    'sharded_torch/pytorch_model.bin.index.json',
  ]) {
    t.truthy(expected[name], `expected.json lists ${name}`);
    t.true(fs.existsSync(path.join(fixturesDir, name)), `${name} exists`);
  }
});

for (const [name, want] of Object.entries(expected)) {
  test(`fixture ${name}: open, list and read every tensor`, async (t) => {
    const file = path.join(fixturesDir, name);
    await using weights = await WeightFile.open(file);
    t.is(weights.format, /safetensors/.test(name) ? 'safetensors' : 'torch');
    t.is(weights.path, file);
    t.deepEqual({ ...weights.metadata }, want.metadata);
    const names = Object.keys(want.tensors).sort();
    t.deepEqual(
      weights.tensors.map((x) => [x.name, x.dtype, [...x.shape]]),
      names.map((n) => [n, want.tensors[n]!.dtype, want.tensors[n]!.shape]),
    );
    for (const n of names) {
      const tensor = await weights.read(n);
      t.is<string, string>(tensor.dtype, want.tensors[n]!.dtype, n);
      t.deepEqual([...tensor.shape], want.tensors[n]!.shape, n);
      t.deepEqual(values(tensor), want.tensors[n]!.values, n);
    }
    for (const group of want.shared) {
      const [first, ...rest] = group;
      const firstValues = values(await weights.read(first!));
      for (const other of rest) {
        const otherTensor = want.tensors[other]!;
        // Tied tensors read the same storage; those with the same shape hold the same values.
        if (JSON.stringify(otherTensor.shape) === JSON.stringify(want.tensors[first!]!.shape)) {
          t.deepEqual(values(await weights.read(other)), firstValues, `${other} is tied to ${first}`);
        }
      }
    }
  });
}

test('a PyTorch checkpoint converts to safetensors with every tensor, tied ones included', async (t) => {
  const dir = tempDir();
  const dst = path.join(dir, 'tiny.safetensors');
  const want = expected['tiny_model.bin']!;
  const written = await convertToSafetensors(path.join(fixturesDir, 'tiny_model.bin'), dst);
  t.is(written, Object.keys(want.tensors).length);
  await using out = await WeightFile.open(dst);
  t.is(out.format, 'safetensors');
  for (const [n, tensor] of Object.entries(want.tensors)) {
    const read = await out.read(n);
    t.is<string, string>(read.dtype, tensor.dtype, n);
    t.deepEqual(values(read), tensor.values, n);
  }
});
