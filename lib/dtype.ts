/**
 * Element types, and the typed arrays that carry tensor data in JS.
 *
 * JS has no bf16 or f16 typed array that every Node version supports, so 16-bit float tensors arrive as their raw
 * bits in a Uint16Array; {@link toFloat32Array} widens any tensor to Float32Array when you need the values.
 *
 * @module
 */
import { invalidParameterError } from './errors.js';

/** Element types, spelled as in safetensors headers. */
export type DType = 'F32' | 'BF16' | 'F16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** The floating-point dtypes showo2 computes with and can convert checkpoints to. */
export type FloatDType = 'F32' | 'BF16' | 'F16';

/** Every {@link DType}, in a fixed order. */
export const DTYPES: readonly DType[] = ['F32', 'BF16', 'F16', 'F64', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'];

/** Every {@link FloatDType}. */
export const FLOAT_DTYPES: readonly FloatDType[] = ['F32', 'BF16', 'F16'];

/** One tensor's values with its dtype and shape; `data` is row-major (C order). See {@link TensorData}. */
export interface TensorDataOf<D extends DType, A> {
  /** The stored element type. */
  readonly dtype: D;
  /** Dimensions, outermost first; `[]` for a scalar. */
  readonly shape: readonly number[];
  /** The elements, row-major. 16-bit floats are raw bits: see {@link toFloat32Array}. */
  readonly data: A;
}

/**
 * A tensor read from a checkpoint. The typed array depends on the dtype (check `dtype` to narrow):
 * F32 → Float32Array, F64 → Float64Array, BF16 and F16 → Uint16Array (raw bits), I64 → BigInt64Array,
 * I32 → Int32Array, I16 → Int16Array, I8 → Int8Array, U8 and BOOL → Uint8Array.
 */
export type TensorData =
  | TensorDataOf<'F32', Float32Array>
  | TensorDataOf<'BF16' | 'F16', Uint16Array>
  | TensorDataOf<'F64', Float64Array>
  | TensorDataOf<'I64', BigInt64Array>
  | TensorDataOf<'I32', Int32Array>
  | TensorDataOf<'I16', Int16Array>
  | TensorDataOf<'I8', Int8Array>
  | TensorDataOf<'U8' | 'BOOL', Uint8Array>;

/**
 * Views raw tensor bytes as the typed array for `dtype`, without copying.
 * @internal
 */
export function typedArrayFor(dtype: DType, buffer: ArrayBuffer): TensorData['data'] {
  switch (dtype) {
    case 'F32': return new Float32Array(buffer);
    case 'BF16':
    case 'F16': return new Uint16Array(buffer);
    case 'F64': return new Float64Array(buffer);
    case 'I64': return new BigInt64Array(buffer);
    case 'I32': return new Int32Array(buffer);
    case 'I16': return new Int16Array(buffer);
    case 'I8': return new Int8Array(buffer);
    case 'U8':
    case 'BOOL': return new Uint8Array(buffer);
  }
}

/**
 * Widens bfloat16 bits to float32 values (exact: bf16 is the top half of an f32).
 *
 * @param bits - the raw bits, one element per value.
 * @throws ShowO2Error `ERR_INVALID_ARGUMENT` when `bits` is not a Uint16Array (raw bytes in a Uint8Array or Buffer
 * would be read one byte per value: view them as `new Uint16Array(buffer, offset, length)` first).
 *
 * @example
 * ```ts
 * bf16ToFloat32(new Uint16Array([0x3f80, 0xc000])); // Float32Array [1, -2]
 * ```
 */
export function bf16ToFloat32(bits: Uint16Array): Float32Array {
  checkBits(bits);
  const wide = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) wide[i] = bits[i]! << 16;
  return new Float32Array(wide.buffer);
}

function checkBits(bits: unknown): void {
  if (!(bits instanceof Uint16Array)) throw invalidParameterError('bits', 'a Uint16Array of raw 16-bit float bits', bits);
}

function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/**
 * Widens IEEE half-precision bits to float32 values (exact, including subnormals, infinities and NaN).
 *
 * @param bits - the raw bits, one element per value.
 * @throws ShowO2Error `ERR_INVALID_ARGUMENT` when `bits` is not a Uint16Array.
 *
 * @example
 * ```ts
 * f16ToFloat32(new Uint16Array([0x3c00, 0x7c00])); // Float32Array [1, Infinity]
 * ```
 */
export function f16ToFloat32(bits: Uint16Array): Float32Array {
  checkBits(bits);
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfToNumber(bits[i]!);
  return out;
}

/**
 * A tensor's values as a Float32Array, whatever its dtype: F32 data is returned as is (not copied); BF16 and F16
 * are widened exactly; other types are converted with `Number()` (I64 beyond 2^24 and F64 lose precision).
 *
 * @param tensor - a tensor as `WeightFile.read` returns it: `dtype` one of {@link DTYPES} and `data` the typed
 * array of that dtype (see {@link TensorData}).
 * @throws ShowO2Error `ERR_INVALID_ARGUMENT` naming `tensor`, `tensor.dtype` or `tensor.data` when the tensor is not an
 * object, the dtype is unknown, or the data is not the typed array that dtype comes in.
 *
 * @example
 * ```ts
 * const weights = await WeightFile.open('model.safetensors');
 * const norm = await weights.read('showo.model.norm.weight'); // BF16: norm.data is a Uint16Array of raw bits
 * const values = toFloat32Array(norm);                        // Float32Array of the actual values
 * ```
 */
export function toFloat32Array(tensor: TensorData): Float32Array {
  checkTensorData(tensor);
  switch (tensor.dtype) {
    case 'F32': return tensor.data;
    case 'BF16': return bf16ToFloat32(tensor.data);
    case 'F16': return f16ToFloat32(tensor.data);
    case 'I64': return Float32Array.from(tensor.data, (v) => Number(v));
    default: return Float32Array.from(tensor.data as ArrayLike<number>);
  }
}

/** The typed array each dtype's data comes in (as {@link typedArrayFor} makes it). */
const ARRAY_OF_DTYPE: Readonly<Record<DType, new (length: number) => ArrayBufferView>> = {
  F32: Float32Array,
  BF16: Uint16Array,
  F16: Uint16Array,
  F64: Float64Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

function checkTensorData(tensor: unknown): asserts tensor is TensorData {
  if (typeof tensor !== 'object' || tensor === null) throw invalidParameterError('tensor', 'a tensor ({ dtype, shape, data })', tensor);
  const { dtype, data } = tensor as { dtype?: unknown; data?: unknown };
  if (!(DTYPES as readonly unknown[]).includes(dtype)) throw invalidParameterError('tensor.dtype', `one of ${DTYPES.join(', ')}`, dtype);
  const expected = ARRAY_OF_DTYPE[dtype as DType];
  if (!(data instanceof expected)) throw invalidParameterError('tensor.data', `a ${expected.name} (the array ${String(dtype)} data comes in)`, data);
}
