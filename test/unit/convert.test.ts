// convertToSafetensors: casts float tensors with round-to-nearest-even, keeps the rest, never leaves partial output.
import * as fs from 'node:fs';
import * as path from 'node:path';

import test from 'ava';

import { convertToSafetensors, ShowO2Error, toFloat32Array, WeightFile } from 'showo2';
import { tempDir, writeSafetensors } from '../helpers.js';

const dir = tempDir();
const values = new Float32Array([0, -0, 1, 1.00390625, 1.01171875, -3.5, 65504, 1e-8, 3.4e38, Number.POSITIVE_INFINITY]);
const src = writeSafetensors(path.join(dir, 'src.safetensors'), [
  { name: 'f', dtype: 'F32', shape: [values.length], data: values },
  { name: 'ids', dtype: 'I64', shape: [2], data: new BigInt64Array([5n, 6n]) },
]);

// Reference float32 -> bfloat16 -> float32, round to nearest even (what torch's .to(torch.bfloat16) does).
function roundToBf16(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0]!;
  const rounded = (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
  return new Float32Array(new Uint32Array([rounded << 16]).buffer)[0]!;
}

test('dtype BF16 casts floats (round to nearest even) and keeps integer tensors', async (t) => {
  const dst = path.join(dir, 'bf16.safetensors');
  t.is(await convertToSafetensors(src, dst, { dtype: 'BF16' }), 2);
  await using out = await WeightFile.open(dst);
  t.deepEqual(out.tensors.map((x) => `${x.name}:${x.dtype}`), ['f:BF16', 'ids:I64']);
  const f = await out.read('f');
  t.deepEqual(Array.from(toFloat32Array(f)), Array.from(values, roundToBf16));
  t.deepEqual(Array.from((await out.read('ids')).data as BigInt64Array), [5n, 6n]);
});

test('dtype F16 casts floats; values beyond the half range become infinity', async (t) => {
  const dst = path.join(dir, 'f16.safetensors');
  await convertToSafetensors(src, dst, { dtype: 'F16' });
  await using out = await WeightFile.open(dst);
  const f = toFloat32Array(await out.read('f'));
  t.deepEqual(Array.from(f.subarray(0, 7)), [0, -0, 1, 1.00390625, 1.01171875, -3.5, 65504]);
  t.is(f[8], Number.POSITIVE_INFINITY);
});

test('without a dtype every tensor keeps its dtype and bytes', async (t) => {
  const dst = path.join(dir, 'same.safetensors');
  await convertToSafetensors(src, dst);
  await using out = await WeightFile.open(dst);
  const f = await out.read('f');
  t.is(f.dtype, 'F32');
  t.deepEqual(Array.from(f.data as Float32Array), Array.from(values));
});

test('a corrupt source fails with its code and leaves no output behind', async (t) => {
  const bad = path.join(dir, 'bad.safetensors');
  fs.writeFileSync(bad, fs.readFileSync(src).subarray(0, 40));
  const dst = path.join(dir, 'never.safetensors');
  await t.throwsAsync(convertToSafetensors(bad, dst), { instanceOf: ShowO2Error, code: 'ERR_CORRUPT_FILE' });
  t.false(fs.existsSync(dst));
  t.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('never')), []);
});

test('an unwritable destination is ERR_FILE_READ naming it', async (t) => {
  const dst = path.join(dir, 'no-such-dir', 'out.safetensors');
  const err = await t.throwsAsync(convertToSafetensors(src, dst), { instanceOf: ShowO2Error, code: 'ERR_FILE_READ' });
  t.true(err!.message.includes(dst), err!.message);
});
