// Widening 16-bit floats to float32 must be exact: compare with values whose bit patterns are known.
import test from 'ava';

import { bf16ToFloat32, f16ToFloat32, ShowO2Error, toFloat32Array, type TensorData } from 'showo2';

test('bf16ToFloat32 is the top half of the f32 bit pattern', (t) => {
  const bits = new Uint16Array([0x0000, 0x8000, 0x3f80, 0xc000, 0x4049, 0x7f80, 0xff80, 0x0001]);
  const out = bf16ToFloat32(bits);
  t.deepEqual(Array.from(out.subarray(0, 4)), [0, -0, 1, -2]);
  t.true(Object.is(out[1], -0));
  t.is(out[4], 3.140625);
  t.is(out[5], Number.POSITIVE_INFINITY);
  t.is(out[6], Number.NEGATIVE_INFINITY);
  t.is(out[7], 2 ** -133); // the smallest bf16 subnormal
  t.true(Number.isNaN(bf16ToFloat32(new Uint16Array([0x7fc0]))[0]));
});

test('f16ToFloat32 decodes normals, subnormals, zeros, infinities and NaN', (t) => {
  const bits = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0400, 0x0001, 0x03ff, 0x8000, 0x7c00, 0xfc00, 0x3555]);
  const out = f16ToFloat32(bits);
  t.is(out[0], 1);
  t.is(out[1], -2);
  t.is(out[2], 65504); // largest half
  t.is(out[3], 2 ** -14); // smallest normal
  t.is(out[4], 2 ** -24); // smallest subnormal
  t.is(out[5], 1023 * 2 ** -24);
  t.true(Object.is(out[6], -0));
  t.is(out[7], Number.POSITIVE_INFINITY);
  t.is(out[8], Number.NEGATIVE_INFINITY);
  t.is(out[9], Math.fround(0.333251953125));
  t.true(Number.isNaN(f16ToFloat32(new Uint16Array([0x7e00]))[0]));
});

test('toFloat32Array returns F32 data itself and converts everything else', (t) => {
  const f32: TensorData = { dtype: 'F32', shape: [2], data: new Float32Array([1.5, -2]) };
  t.is(toFloat32Array(f32), f32.data);
  t.deepEqual(Array.from(toFloat32Array({ dtype: 'BF16', shape: [1], data: new Uint16Array([0x3fc0]) })), [1.5]);
  t.deepEqual(Array.from(toFloat32Array({ dtype: 'F16', shape: [1], data: new Uint16Array([0x3e00]) })), [1.5]);
  t.deepEqual(Array.from(toFloat32Array({ dtype: 'I64', shape: [2], data: new BigInt64Array([3n, -4n]) })), [3, -4]);
  t.deepEqual(Array.from(toFloat32Array({ dtype: 'I8', shape: [2], data: new Int8Array([-128, 127]) })), [-128, 127]);
  t.deepEqual(Array.from(toFloat32Array({ dtype: 'BOOL', shape: [2], data: new Uint8Array([0, 1]) })), [0, 1]);
});

// Found while writing docs/RELIABILITY.md: null was a TypeError, and raw bytes (a Uint8Array), an unknown dtype or
// data of another type were silently read as the wrong values.
test('bad arguments are ERR_INVALID_ARGUMENT naming the argument', (t) => {
  const cases: [() => unknown, string][] = [
    [() => bf16ToFloat32(null as never), 'Expected a Uint16Array of raw 16-bit float bits for bits but received null'],
    [() => bf16ToFloat32(new Uint8Array(4) as never), 'Expected a Uint16Array of raw 16-bit float bits for bits but received an object (Uint8Array)'],
    [() => f16ToFloat32([0x3c00] as never), 'Expected a Uint16Array of raw 16-bit float bits for bits but received an array of length 1'],
    [() => toFloat32Array(null as never), 'Expected a tensor ({ dtype, shape, data }) for tensor but received null'],
    [() => toFloat32Array({ dtype: 'Q4', shape: [2], data: new Uint8Array(2) } as never),
      'Expected one of F32, BF16, F16, F64, I64, I32, I16, I8, U8, BOOL for tensor.dtype but received "Q4" (string)'],
    [() => toFloat32Array({ dtype: 'BF16', shape: [2], data: new Uint8Array(4) } as never),
      'Expected a Uint16Array (the array BF16 data comes in) for tensor.data but received an object (Uint8Array)'],
    [() => toFloat32Array({ dtype: 'F32', shape: [1], data: new Float64Array(1) } as never),
      'Expected a Float32Array (the array F32 data comes in) for tensor.data but received an object (Float64Array)'],
  ];
  for (const [call, message] of cases) t.throws(call, { instanceOf: ShowO2Error, code: 'ERR_INVALID_ARGUMENT', message });
  // A Buffer is a Uint8Array: U8 data read into one still converts.
  t.deepEqual(Array.from(toFloat32Array({ dtype: 'U8', shape: [2], data: Buffer.from([7, 9]) })), [7, 9]);
});
