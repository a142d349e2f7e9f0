/**
 * Checkpoint conversion: {@link convertToSafetensors} rewrites any readable checkpoint as one safetensors file,
 * which then opens faster (zero-copy memory mapping instead of unpickling).
 *
 * @module
 */
import * as path from 'node:path';

import { FLOAT_DTYPES, type FloatDType } from './dtype.js';
import { callNative, invalidParameterError } from './errors.js';
import { addon } from './native.js';
import { isDefined, isNonEmptyString, isOneOf, isPlainObject } from './validate.js';

/** Options for {@link convertToSafetensors}. */
export interface ConvertOptions {
  /**
   * Cast every floating-point tensor to this dtype (`'F32'`, `'BF16'` or `'F16'`); integer tensors are kept as
   * they are. Defaults to keeping each tensor's stored dtype.
   */
  dtype?: FloatDType;
}

/**
 * Converts a checkpoint (typically a PyTorch `.bin`/`.pth`, or a sharded checkpoint's `*.index.json`) into a single
 * safetensors file. Tied tensors are written once per name. The output is written to a temporary file and renamed
 * when complete, so a failure never leaves a half-written `dst`. Runs on a worker thread.
 *
 * Resolves with the number of tensors written. Rejects with a {@link ShowO2Error}: `ERR_INVALID_ARGUMENT` for bad
 * arguments (including `dst` naming the same file as `src`), or any error of `WeightFile.open()`.
 *
 * @param src - the checkpoint to read.
 * @param dst - the safetensors file to write (replaced if it exists).
 * @param options - see {@link ConvertOptions}.
 *
 * @example
 * ```ts
 * import { convertToSafetensors } from 'showo2';
 *
 * const count = await convertToSafetensors('pytorch_model.bin', 'model.safetensors', { dtype: 'BF16' });
 * console.log(`wrote ${count} tensors`);
 * ```
 */
export async function convertToSafetensors(src: string, dst: string, options: ConvertOptions = {}): Promise<number> {
  if (!isNonEmptyString(src)) throw invalidParameterError('src', 'a non-empty string', src);
  if (!isNonEmptyString(dst)) throw invalidParameterError('dst', 'a non-empty string', dst);
  if (path.resolve(src) === path.resolve(dst)) throw invalidParameterError('dst', 'a path other than src', dst);
  if (!isPlainObject(options)) throw invalidParameterError('options', 'an object', options);
  const { dtype } = options;
  if (isDefined(dtype) && !isOneOf(dtype, FLOAT_DTYPES)) {
    throw invalidParameterError('options.dtype', `one of ${FLOAT_DTYPES.join(', ')}`, dtype);
  }
  return callNative(() => addon().convertToSafetensors(src, dst, isDefined(dtype) ? { dtype } : {}));
}
