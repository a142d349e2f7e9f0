/**
 * Errors: every failure that showo2 reports is a {@link ShowO2Error} with a stable `code`.
 *
 * The codes of the native core (native/core/error.h) pass through unchanged; the Node layer adds its own
 * (`ERR_DISPOSED`, `ERR_NATIVE_LOAD`, `ERR_INVALID_IMAGE`, and lib/hub.ts's `ERR_MODEL_NOT_FOUND`, `ERR_UNAUTHORIZED`,
 * `ERR_DOWNLOAD`, `ERR_OFFLINE`). Branch on `code`, never on the message: messages explain, codes are API.
 *
 * @module
 */

/**
 * Every error code showo2 can report. Codes are added over time but never renamed.
 *
 * - `ERR_INVALID_ARGUMENT`: a value outside the documented domain (the message names the parameter).
 * - `ERR_SHAPE_MISMATCH`: tensor shapes do not fit an operation.
 * - `ERR_UNSUPPORTED_DTYPE`: a dtype the operation or format does not handle.
 * - `ERR_FILE_NOT_FOUND`, `ERR_FILE_READ`: the file is missing, or the OS failed to read, map or write it.
 * - `ERR_CORRUPT_FILE`: a header, offset, size or structure that contradicts the file (truncated, lying, malicious).
 * - `ERR_UNSAFE_PICKLE`: a PyTorch pickle asks for something a state dict never needs (it is never executed).
 * - `ERR_UNSUPPORTED_FORMAT`: a file showo2 recognises but does not read.
 * - `ERR_TENSOR_NOT_FOUND`: no tensor of that name in the checkpoint.
 * - `ERR_OUT_OF_MEMORY`, `ERR_CUDA`, `ERR_CANCELLED`.
 * - `ERR_INTERNAL`: a bug inside showo2; please report it.
 * - `ERR_DISPOSED`: the object was used after `dispose()`.
 * - `ERR_NATIVE_LOAD`: the native addon could not be loaded (the message lists possible solutions).
 * - `ERR_INVALID_IMAGE`: bytes that are not a complete PNG, JPEG or WebP, or an image too large to decode (the message
 *   says which).
 * - `ERR_MODEL_NOT_FOUND`: no such model directory, Hugging Face repo, revision or file in the repo (the message names
 *   which).
 * - `ERR_UNAUTHORIZED`: the Hugging Face Hub refused the request (401/403: a private or gated repo, or a bad
 *   token); set `HF_TOKEN` to a token that can read the repo.
 * - `ERR_DOWNLOAD`: a download failed (network, server error, or a file whose size or hash does not match what the Hub
 *   announced; a mismatching file is deleted).
 * - `ERR_OFFLINE`: offline (`HF_HUB_OFFLINE=1` or `offline: true`) and a needed file is not in the cache (the message
 *   names it).
 */
export type ErrorCode =
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_SHAPE_MISMATCH'
  | 'ERR_UNSUPPORTED_DTYPE'
  | 'ERR_FILE_NOT_FOUND'
  | 'ERR_FILE_READ'
  | 'ERR_CORRUPT_FILE'
  | 'ERR_UNSAFE_PICKLE'
  | 'ERR_UNSUPPORTED_FORMAT'
  | 'ERR_TENSOR_NOT_FOUND'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_CUDA'
  | 'ERR_CANCELLED'
  | 'ERR_INTERNAL'
  | 'ERR_DISPOSED'
  | 'ERR_NATIVE_LOAD'
  | 'ERR_INVALID_IMAGE'
  | 'ERR_MODEL_NOT_FOUND'
  | 'ERR_UNAUTHORIZED'
  | 'ERR_DOWNLOAD'
  | 'ERR_OFFLINE';

const knownCodes: ReadonlySet<string> = new Set<ErrorCode>([
  'ERR_INVALID_ARGUMENT',
  'ERR_SHAPE_MISMATCH',
  'ERR_UNSUPPORTED_DTYPE',
  'ERR_FILE_NOT_FOUND',
  'ERR_FILE_READ',
  'ERR_CORRUPT_FILE',
  'ERR_UNSAFE_PICKLE',
  'ERR_UNSUPPORTED_FORMAT',
  'ERR_TENSOR_NOT_FOUND',
  'ERR_OUT_OF_MEMORY',
  'ERR_CUDA',
  'ERR_CANCELLED',
  'ERR_INTERNAL',
  'ERR_DISPOSED',
  'ERR_NATIVE_LOAD',
  'ERR_INVALID_IMAGE',
  'ERR_MODEL_NOT_FOUND',
  'ERR_UNAUTHORIZED',
  'ERR_DOWNLOAD',
  'ERR_OFFLINE',
]);

/**
 * The one error class showo2 throws.
 *
 * @example
 * ```ts
 * import { WeightFile, ShowO2Error } from 'showo2';
 *
 * try {
 *   await WeightFile.open('model.safetensors');
 * } catch (err) {
 *   if (err instanceof ShowO2Error && err.code === 'ERR_FILE_NOT_FOUND') console.error('download the weights first');
 *   else throw err;
 * }
 * ```
 */
export class ShowO2Error extends Error {
  /** The stable machine-readable code. */
  readonly code: ErrorCode;

  /**
   * @param code - the stable code.
   * @param message - what went wrong, naming the parameter, file or tensor involved.
   * @param options - `cause` links the underlying error, if any.
   */
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ShowO2Error';
    this.code = code;
  }
}

/**
 * Describes a received value for an error message: `-1 (number)`, `"" (string)`, `null`, `an array of length 2`.
 * @internal
 */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  switch (typeof value) {
    case 'string': {
      const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
      return `${JSON.stringify(shown)} (string)`;
    }
    case 'number':
    case 'boolean':
      return `${String(value)} (${typeof value})`;
    case 'bigint':
      return `${String(value)}n (bigint)`;
    case 'symbol':
      return `${String(value)} (symbol)`;
    case 'function':
      return 'a function';
    default: {
      const name = Object.getPrototypeOf(value)?.constructor?.name;
      return name && name !== 'Object' ? `an object (${name})` : 'an object';
    }
  }
}

/**
 * The error for a parameter that fails validation, in one fixed wording (after sharp's `invalidParameterError`):
 * "Expected a positive integer for threads but received -1 (number)".
 *
 * @param name - the parameter or option, as the caller wrote it (`dtype`, `options.dtype`).
 * @param expected - what was expected, phrased to follow "Expected": `a non-empty string`, `one of F32, BF16, F16`.
 * @param actual - the value that arrived.
 *
 * @example
 * ```ts
 * throw invalidParameterError('threads', 'a positive integer', -1);
 * // ShowO2Error ERR_INVALID_ARGUMENT: Expected a positive integer for threads but received -1 (number)
 * ```
 */
export function invalidParameterError(name: string, expected: string, actual: unknown): ShowO2Error {
  return new ShowO2Error('ERR_INVALID_ARGUMENT', `Expected ${expected} for ${name} but received ${describeValue(actual)}`);
}

/** The error for using an object after `dispose()`. @internal */
export function disposedError(what: string, operation: string): ShowO2Error {
  return new ShowO2Error('ERR_DISPOSED', `Cannot ${operation}: the ${what} has been disposed`);
}

/**
 * Rebuilds an error thrown by the addon as a ShowO2Error with the same code, on a stack captured in JS before the
 * native call (`stackHolder`). Native errors are created on the addon's completion callback, whose stack shows
 * nothing of the caller; swapping in the captured stack is sharp's `is.nativeError` trick.
 * @internal
 */
export function fromNativeError(err: unknown, stackHolder: Error): ShowO2Error {
  if (err instanceof ShowO2Error) return err;
  const message = err instanceof Error ? err.message : String(err);
  const rawCode = (err as { code?: unknown } | null)?.code;
  const code: ErrorCode = typeof rawCode === 'string' && knownCodes.has(rawCode) ? (rawCode as ErrorCode) : 'ERR_INTERNAL';
  const error = new ShowO2Error(code, message, { cause: err });
  if (stackHolder.stack) {
    const callerFrames = stackHolder.stack.split('\n').slice(1).join('\n');
    error.stack = `${error.name}: ${message}\n${callerFrames}`;
  }
  return error;
}

/**
 * Runs one asynchronous native call, turning its failure into a ShowO2Error that carries the caller's stack.
 * @internal
 */
export async function callNative<T>(call: () => Promise<T>): Promise<T> {
  const stackHolder = new Error();
  Error.captureStackTrace(stackHolder, callNative);
  try {
    return await call();
  } catch (err) {
    throw fromNativeError(err, stackHolder);
  }
}
