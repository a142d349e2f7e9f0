/**
 * Errors: every failure that showo2 reports is a {@link ShowO2Error} with a stable `code`, and an instance of the
 * family class for its kind of failure ({@link ModelNotFoundError}, {@link InvalidInputError}, {@link NoGpuError}, ...).
 *
 * The codes of the native core (native/core/error.h) pass through unchanged; the Node layer adds its own
 * (`ERR_DISPOSED`, `ERR_NATIVE_LOAD`, `ERR_INVALID_IMAGE`, `ERR_NO_GPU`, `ERR_UNSUPPORTED_MODEL`, and lib/hub.ts's
 * `ERR_MODEL_NOT_FOUND`, `ERR_UNAUTHORIZED`, `ERR_DOWNLOAD`, `ERR_OFFLINE`). Each code belongs to exactly one family
 * (`ERROR_CLASSES` below), and every error is made by `createError`, so the class always matches the code; a test
 * fails if anything else in lib/ constructs a bare ShowO2Error. Branch on the class or the code, never on the
 * message: messages explain, classes and codes are API. docs/TROUBLESHOOTING.md has one section per code.
 *
 * @module
 */

/**
 * Every error code showo2 can report. Codes are added over time but never renamed. Each one belongs to one family
 * class, named in brackets; docs/TROUBLESHOOTING.md (shipped in the package) has a section per code with the usual
 * causes and what to do.
 *
 * - `ERR_INVALID_ARGUMENT` ({@link InvalidInputError}): a value outside the documented domain (the message names the
 *   parameter); while loading a model, also a config.json field or a checkpoint that does not match the config.
 * - `ERR_SHAPE_MISMATCH` ({@link InvalidInputError}): tensor shapes do not fit an operation (or a checkpoint's tensors
 *   do not have the shapes its config implies).
 * - `ERR_INVALID_IMAGE` ({@link InvalidInputError}): bytes that are not a complete PNG, JPEG or WebP, or an image too large
 *   to decode (the message says which).
 * - `ERR_FILE_NOT_FOUND`, `ERR_FILE_READ` ({@link FileAccessError}): a file the caller named is missing, or the OS
 *   failed to read, map or write it.
 * - `ERR_MODEL_NOT_FOUND` ({@link ModelNotFoundError}): no such model directory (or it lacks config.json, a
 *   checkpoint or the VAE), Hugging Face repo, revision or file in the repo (the message names which).
 * - `ERR_CORRUPT_FILE` ({@link InvalidModelFileError}): a header, offset, size or structure that contradicts the file
 *   (truncated, lying, malicious), or a model JSON file that does not parse.
 * - `ERR_UNSAFE_PICKLE` ({@link InvalidModelFileError}): a PyTorch pickle asks for something a state dict never needs
 *   (it is never executed).
 * - `ERR_TENSOR_NOT_FOUND` ({@link InvalidModelFileError}): no tensor of that name in the checkpoint.
 * - `ERR_UNSUPPORTED_MODEL` ({@link UnsupportedModelError}): config.json describes a model that is not Show-o2.
 * - `ERR_UNSUPPORTED_FORMAT` ({@link UnsupportedModelError}): a file showo2 recognises but does not read.
 * - `ERR_UNSUPPORTED_DTYPE` ({@link UnsupportedModelError}): a dtype the operation or format does not handle.
 * - `ERR_OUT_OF_MEMORY` ({@link OutOfMemoryError}): an allocation failed, in host or GPU memory.
 * - `ERR_CANCELLED` ({@link CancelledError}): an `AbortSignal` stopped the operation.
 * - `ERR_DISPOSED` ({@link DisposedError}): the object was used after `dispose()`.
 * - `ERR_NO_GPU` ({@link NoGpuError}): `device: 'cuda'` but no usable GPU (no CUDA in this build, no driver, no
 *   device, or too old a device; the message says which, as `runtimeInfo().cuda.unavailableReason` does).
 * - `ERR_CUDA` ({@link CudaError}): a CUDA runtime or driver failure while running (the message carries the source
 *   location).
 * - `ERR_DOWNLOAD` ({@link DownloadError}): a download failed (network, server error, or a file whose size or hash
 *   does not match what the Hub announced; a mismatching file is deleted).
 * - `ERR_UNAUTHORIZED` ({@link DownloadError}): the Hugging Face Hub refused the request (401/403: a private or gated
 *   repo, or a bad token); set `HF_TOKEN` to a token that can read the repo.
 * - `ERR_OFFLINE` ({@link DownloadError}): offline (`HF_HUB_OFFLINE=1` or `offline: true`) and a needed file is not in
 *   the cache (the message names it).
 * - `ERR_NATIVE_LOAD` ({@link NativeLoadError}): the native addon could not be loaded (the message lists possible
 *   solutions).
 * - `ERR_INTERNAL` ({@link InternalError}): a bug inside showo2; please report it.
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
  | 'ERR_OFFLINE'
  | 'ERR_NO_GPU'
  | 'ERR_UNSUPPORTED_MODEL';

/**
 * The base class of every error showo2 throws: catch it to handle any showo2 failure, and use the family
 * subclasses (or `code`) to tell failures apart. showo2 itself never throws a bare ShowO2Error: each error is an
 * instance of the family class its code belongs to.
 *
 * @example
 * ```ts
 * import { FileAccessError, InvalidModelFileError, ShowO2Error, WeightFile } from 'showo2';
 *
 * try {
 *   await WeightFile.open('model.safetensors');
 * } catch (err) {
 *   if (err instanceof FileAccessError) console.error('download the weights first');
 *   else if (err instanceof InvalidModelFileError) console.error(`the file is damaged (${err.code}): download it again`);
 *   else if (err instanceof ShowO2Error) console.error(`${err.code}: ${err.message}`);
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
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ShowO2Error';
    this.code = code;
  }
}

// ---- The families -------------------------------------------------------------------------------------------------
// One class per kind of failure. Each narrows `code` to the codes of its family; `name` is the class name, so a stack
// trace says which family failed. The constructors take the code so that ERROR_CLASSES can build any of them alike.

/**
 * The model, or a part of it, is not where it was looked for: a missing model directory, a directory without
 * config.json, a checkpoint or the VAE, or a Hugging Face repo, revision or file that does not exist
 * (`ERR_MODEL_NOT_FOUND`).
 */
export class ModelNotFoundError extends ShowO2Error {
  declare readonly code: 'ERR_MODEL_NOT_FOUND';

  /**
   * @param code - `ERR_MODEL_NOT_FOUND`.
   * @param message - what was looked for, and where.
   * @param options - `cause` links the underlying error, if any.
   */
  constructor(code: 'ERR_MODEL_NOT_FOUND', message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'ModelNotFoundError';
  }
}

/**
 * A model file is damaged, unsafe or lacks what was asked of it: a truncated or corrupt checkpoint, index,
 * config.json or tokenizer.json (`ERR_CORRUPT_FILE`), a pickle that asks for code a state dict never needs
 * (`ERR_UNSAFE_PICKLE`), or a tensor name the checkpoint does not have (`ERR_TENSOR_NOT_FOUND`).
 */
export class InvalidModelFileError extends ShowO2Error {
  declare readonly code: 'ERR_CORRUPT_FILE' | 'ERR_UNSAFE_PICKLE' | 'ERR_TENSOR_NOT_FOUND';

  /**
   * @param code - `ERR_CORRUPT_FILE`, `ERR_UNSAFE_PICKLE` or `ERR_TENSOR_NOT_FOUND`.
   * @param message - which file, and what in it is wrong.
   * @param options - `cause` links the underlying error, if any.
   */
  constructor(
    code: 'ERR_CORRUPT_FILE' | 'ERR_UNSAFE_PICKLE' | 'ERR_TENSOR_NOT_FOUND',
    message: string,
    options?: ErrorOptions,
  ) {
    super(code, message, options);
    this.name = 'InvalidModelFileError';
  }
}

/**
 * A model or file that showo2 recognises but cannot run or read: a config.json of another architecture
 * (`ERR_UNSUPPORTED_MODEL`), a checkpoint format it does not read (`ERR_UNSUPPORTED_FORMAT`), or a dtype the operation
 * or format does not handle (`ERR_UNSUPPORTED_DTYPE`).
 */
export class UnsupportedModelError extends ShowO2Error {
  declare readonly code: 'ERR_UNSUPPORTED_MODEL' | 'ERR_UNSUPPORTED_FORMAT' | 'ERR_UNSUPPORTED_DTYPE';

  /**
   * @param code - `ERR_UNSUPPORTED_MODEL`, `ERR_UNSUPPORTED_FORMAT` or `ERR_UNSUPPORTED_DTYPE`.
   * @param message - what was found, and what showo2 supports.
   * @param options - `cause` links the underlying error, if any.
   */
  constructor(
    code: 'ERR_UNSUPPORTED_MODEL' | 'ERR_UNSUPPORTED_FORMAT' | 'ERR_UNSUPPORTED_DTYPE',
    message: string,
    options?: ErrorOptions,
  ) {
    super(code, message, options);
    this.name = 'UnsupportedModelError';
  }
}

/**
 * A bad argument: a value outside its documented domain (`ERR_INVALID_ARGUMENT`, also for a config.json field or a
 * checkpoint that does not match the config while loading), tensor shapes that do not fit (`ERR_SHAPE_MISMATCH`), or
 * bytes that are not a decodable image (`ERR_INVALID_IMAGE`). The message names the parameter.
 */
export class InvalidInputError extends ShowO2Error {
  declare readonly code: 'ERR_INVALID_ARGUMENT' | 'ERR_SHAPE_MISMATCH' | 'ERR_INVALID_IMAGE';

  /**
   * @param code - `ERR_INVALID_ARGUMENT`, `ERR_SHAPE_MISMATCH` or `ERR_INVALID_IMAGE`.
   * @param message - the parameter, what was expected and what arrived.
   * @param options - `cause` links the underlying error, if any.
   */
  constructor(
    code: 'ERR_INVALID_ARGUMENT' | 'ERR_SHAPE_MISMATCH' | 'ERR_INVALID_IMAGE',
    message: string,
    options?: ErrorOptions,
  ) {
    super(code, message, options);
    this.name = 'InvalidInputError';
  }
}

/**
 * A file the caller named is missing (`ERR_FILE_NOT_FOUND`), or the OS failed to open, map, read or write it
 * (`ERR_FILE_READ`).
 */
export class FileAccessError extends ShowO2Error {
  declare readonly code: 'ERR_FILE_NOT_FOUND' | 'ERR_FILE_READ';

  /**
   * @param code - `ERR_FILE_NOT_FOUND` or `ERR_FILE_READ`.
   * @param message - the file, and what the OS said.
   * @param options - `cause` links the underlying error, if any.
   */
  constructor(code: 'ERR_FILE_NOT_FOUND' | 'ERR_FILE_READ', message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'FileAccessError';
  }
}

/** An allocation failed, in host or GPU memory (`ERR_OUT_OF_MEMORY`). */
export class OutOfMemoryError extends ShowO2Error {
  declare readonly code: 'ERR_OUT_OF_MEMORY';

  /**
   * @param code - `ERR_OUT_OF_MEMORY`.
   * @param message - how much could not be allocated, and where.
   * @param options - `cause` links the underlying error, if any.
   */
  constructor(code: 'ERR_OUT_OF_MEMORY', message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'OutOfMemoryError';
  }
}

/**
 * The operation was stopped through its `AbortSignal` (`ERR_CANCELLED`). Not to be confused with the DOM's
 * `AbortError` (a `DOMException`): showo2 rejects with this class, and `cause` holds the signal's reason when there
 * is one.
 */
export class CancelledError extends ShowO2Error {
  declare readonly code: 'ERR_CANCELLED';

  /**
   * @param code - `ERR_CANCELLED`.
   * @param message - what was stopped.
   * @param options - `cause`: the signal's reason, if any.
   */
  constructor(code: 'ERR_CANCELLED', message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'CancelledError';
  }
}

/** An object was used after its `dispose()` (`ERR_DISPOSED`). */
export class DisposedError extends ShowO2Error {
  declare readonly code: 'ERR_DISPOSED';

  /**
   * @param code - `ERR_DISPOSED`.
   * @param message - what was disposed, and what was attempted.
   * @param options - `cause` links the underlying error, if any.
   */
  constructor(code: 'ERR_DISPOSED', message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'DisposedError';
  }
}

/**
 * `device: 'cuda'` (given, or from `SHOWO2_DEVICE`) but there is no usable GPU: this build has no CUDA backend, or no
 * NVIDIA driver, a driver older than the CUDA the binary was built with, no device, or only devices older than compute
 * capability 8.0 (`ERR_NO_GPU`). The message gives the reason `runtimeInfo().cuda.unavailableReason` reports.
 */
export class NoGpuError extends ShowO2Error {
  declare readonly code: 'ERR_NO_GPU';

  /**
   * @param code - `ERR_NO_GPU`.
   * @param message - why no GPU can be used, and what to do.
   * @param options - `cause` links the underlying error, if any.
   */
  constructor(code: 'ERR_NO_GPU', message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'NoGpuError';
  }
}

/** A CUDA runtime or driver call failed while running on a GPU (`ERR_CUDA`); the message names the call and place. */
export class CudaError extends ShowO2Error {
  declare readonly code: 'ERR_CUDA';

  /**
   * @param code - `ERR_CUDA`.
   * @param message - the failing call, its source location and CUDA's error string.
   * @param options - `cause` links the underlying error, if any.
   */
  constructor(code: 'ERR_CUDA', message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'CudaError';
  }
}

/**
 * Fetching model files from the Hugging Face Hub failed: a network or server error or a size/hash mismatch
 * (`ERR_DOWNLOAD`), access refused (`ERR_UNAUTHORIZED`), or offline with the file not in the cache (`ERR_OFFLINE`).
 */
export class DownloadError extends ShowO2Error {
  declare readonly code: 'ERR_DOWNLOAD' | 'ERR_UNAUTHORIZED' | 'ERR_OFFLINE';

  /**
   * @param code - `ERR_DOWNLOAD`, `ERR_UNAUTHORIZED` or `ERR_OFFLINE`.
   * @param message - the repo and file, and what went wrong.
   * @param options - `cause` links the underlying error, if any.
   */
  constructor(code: 'ERR_DOWNLOAD' | 'ERR_UNAUTHORIZED' | 'ERR_OFFLINE', message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'DownloadError';
  }
}

/** The native addon could not be loaded (`ERR_NATIVE_LOAD`); the message lists every binary tried and the fixes. */
export class NativeLoadError extends ShowO2Error {
  declare readonly code: 'ERR_NATIVE_LOAD';

  /**
   * @param code - `ERR_NATIVE_LOAD`.
   * @param message - every candidate binary, why it failed, and possible solutions.
   * @param options - `cause` links the underlying error, if any.
   */
  constructor(code: 'ERR_NATIVE_LOAD', message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'NativeLoadError';
  }
}

/** A broken invariant inside showo2: a bug, please report it with the message (`ERR_INTERNAL`). */
export class InternalError extends ShowO2Error {
  declare readonly code: 'ERR_INTERNAL';

  /**
   * @param code - `ERR_INTERNAL`.
   * @param message - the invariant that broke.
   * @param options - `cause` links the underlying error, if any.
   */
  constructor(code: 'ERR_INTERNAL', message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'InternalError';
  }
}

/**
 * The family class of every code: the one fixed mapping that {@link createError} and {@link fromNativeError} use,
 * and that docs/TROUBLESHOOTING.md documents (a test keeps them equal). The `satisfies` clause makes a new
 * {@link ErrorCode} without a family a compile error.
 * @internal
 */
export const ERROR_CLASSES = Object.freeze({
  ERR_INVALID_ARGUMENT: InvalidInputError,
  ERR_SHAPE_MISMATCH: InvalidInputError,
  ERR_INVALID_IMAGE: InvalidInputError,
  ERR_FILE_NOT_FOUND: FileAccessError,
  ERR_FILE_READ: FileAccessError,
  ERR_MODEL_NOT_FOUND: ModelNotFoundError,
  ERR_CORRUPT_FILE: InvalidModelFileError,
  ERR_UNSAFE_PICKLE: InvalidModelFileError,
  ERR_TENSOR_NOT_FOUND: InvalidModelFileError,
  ERR_UNSUPPORTED_MODEL: UnsupportedModelError,
  ERR_UNSUPPORTED_FORMAT: UnsupportedModelError,
  ERR_UNSUPPORTED_DTYPE: UnsupportedModelError,
  ERR_OUT_OF_MEMORY: OutOfMemoryError,
  ERR_CANCELLED: CancelledError,
  ERR_DISPOSED: DisposedError,
  ERR_NO_GPU: NoGpuError,
  ERR_CUDA: CudaError,
  ERR_DOWNLOAD: DownloadError,
  ERR_UNAUTHORIZED: DownloadError,
  ERR_OFFLINE: DownloadError,
  ERR_NATIVE_LOAD: NativeLoadError,
  ERR_INTERNAL: InternalError,
} as const satisfies { readonly [C in ErrorCode]: new (code: C, message: string, options?: ErrorOptions) => ShowO2Error });

/** The family class an error with code `C` is an instance of. @internal */
export type ErrorClassOf<C extends ErrorCode> = InstanceType<(typeof ERROR_CLASSES)[C]>;

/** Every code, in the order of {@link ERROR_CLASSES}. @internal */
export const ERROR_CODES: readonly ErrorCode[] = Object.freeze(Object.keys(ERROR_CLASSES) as ErrorCode[]);

/** Whether `value` is one of the {@link ErrorCode}s. @internal */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CLASSES, value);
}

/**
 * Makes the error for `code`, as an instance of its family class: the one way showo2 creates errors.
 *
 * @example
 * ```ts
 * throw createError('ERR_MODEL_NOT_FOUND', `The model directory ${dir} does not exist`); // a ModelNotFoundError
 * ```
 * @internal
 */
export function createError<C extends ErrorCode>(code: C, message: string, options?: ErrorOptions): ErrorClassOf<C> {
  const ErrorClass = ERROR_CLASSES[code] as unknown as new (code: C, message: string, options?: ErrorOptions) => ErrorClassOf<C>;
  return new ErrorClass(code, message, options);
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
 * // InvalidInputError ERR_INVALID_ARGUMENT: Expected a positive integer for threads but received -1 (number)
 * ```
 */
export function invalidParameterError(name: string, expected: string, actual: unknown): InvalidInputError {
  return createError('ERR_INVALID_ARGUMENT', `Expected ${expected} for ${name} but received ${describeValue(actual)}`);
}

/**
 * Throws `ERR_INVALID_ARGUMENT` for a key of an options object that is not one of `allowed`: a misspelt option
 * (`{ qualty: 50 }`) is an error, not a silent default. @internal
 */
export function checkOptionKeys(options: object, allowed: readonly string[], name = 'options'): void {
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) throw invalidParameterError(`a key of ${name}`, `one of ${allowed.join(', ')}`, key);
  }
}

/** The error for using an object after `dispose()`. @internal */
export function disposedError(what: string, operation: string): DisposedError {
  return createError('ERR_DISPOSED', `Cannot ${operation}: the ${what} has been disposed`);
}

/**
 * Rebuilds an error thrown by the addon (which carries only a code and a message) as the family class of its code
 * ({@link ERROR_CLASSES}; an unknown code is `ERR_INTERNAL`), on a stack captured in JS before the
 * native call (`stackHolder`). Native errors are created on the addon's completion callback, whose stack shows
 * nothing of the caller; swapping in the captured stack is sharp's `is.nativeError` trick.
 * @internal
 */
export function fromNativeError(err: unknown, stackHolder: Error): ShowO2Error {
  if (err instanceof ShowO2Error) return err;
  const message = err instanceof Error ? err.message : String(err);
  const rawCode = (err as { code?: unknown } | null)?.code;
  const code: ErrorCode = isErrorCode(rawCode) ? rawCode : 'ERR_INTERNAL';
  const error = createError(code, message, { cause: err });
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
