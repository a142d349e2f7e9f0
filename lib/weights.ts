/**
 * Reading checkpoints: {@link WeightFile} opens safetensors and PyTorch (`.bin`, `.pth`) files, single or sharded,
 * and reads tensors by name. PyTorch pickles go through a restricted reader that never executes code.
 *
 * @module
 */
import type { AddonWeightFile } from '../typings/addon.js';
import { DTYPES, typedArrayFor, type DType, type TensorData } from './dtype.js';
import { callNative, createError, disposedError, invalidParameterError, ShowO2Error } from './errors.js';
import { addon } from './native.js';
import { isNonEmptyString, isOneOf, isString } from './validate.js';

/** The container format of a checkpoint. Sharded checkpoints report the format of their shards. */
export type WeightFormat = 'safetensors' | 'torch';

/** A tensor's name, dtype and shape, as listed by {@link WeightFile.tensors}. */
export interface TensorInfo {
  /** The checkpoint key, e.g. `showo.model.layers.0.self_attn.q_proj.weight`. */
  readonly name: string;
  /** The stored element type. */
  readonly dtype: DType;
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
}

function toDType(raw: string): DType {
  if (!isOneOf(raw, DTYPES)) throw createError('ERR_INTERNAL', `The addon reported an unknown dtype ${raw}`);
  return raw;
}

/**
 * An open checkpoint. Create one with {@link WeightFile.open}; release it with {@link WeightFile.dispose} (or
 * `await using`). Opening validates the whole file up front, so a truncated, corrupt or malicious file fails in
 * `open()` with a typed error naming the file, not later in `read()`.
 *
 * @example
 * ```ts
 * import { WeightFile } from 'showo2';
 *
 * await using weights = await WeightFile.open('pytorch_model.bin');
 * for (const t of weights.tensors) console.log(t.name, t.dtype, t.shape);
 * const embed = await weights.read('showo.model.embed_tokens.weight');
 * ```
 */
export class WeightFile implements AsyncDisposable {
  #native: AddonWeightFile | null;
  readonly #path: string;
  readonly #format: WeightFormat;
  readonly #tensors: readonly TensorInfo[];
  readonly #byName: ReadonlyMap<string, TensorInfo>;
  readonly #metadata: Readonly<Record<string, string>>;

  private constructor(native: AddonWeightFile) {
    this.#native = native;
    this.#path = native.path;
    this.#format = native.format as WeightFormat;
    this.#tensors = Object.freeze(
      native.tensors.map((t) => Object.freeze({ name: t.name, dtype: toDType(t.dtype), shape: Object.freeze(t.shape) })),
    );
    this.#byName = new Map(this.#tensors.map((t) => [t.name, t]));
    this.#metadata = Object.freeze({ ...native.metadata });
  }

  /**
   * Opens a checkpoint: a `.safetensors` file, a PyTorch zip checkpoint (`pytorch_model.bin`, `*.pth`), or the
   * `*.index.json` of a sharded one. The file is memory-mapped and validated on a worker thread.
   *
   * Throws (rejects with) a {@link ShowO2Error}: `ERR_INVALID_ARGUMENT` for a path that is not a non-empty string,
   * `ERR_FILE_NOT_FOUND`, `ERR_FILE_READ`, `ERR_UNSUPPORTED_FORMAT`, `ERR_CORRUPT_FILE` or `ERR_UNSAFE_PICKLE`.
   *
   * @param path - the checkpoint file.
   *
   * @example
   * ```ts
   * const weights = await WeightFile.open('Wan2.1_VAE.pth');
   * console.log(weights.format, weights.tensors.length);
   * weights.dispose();
   * ```
   */
  static async open(path: string): Promise<WeightFile> {
    if (!isNonEmptyString(path)) throw invalidParameterError('path', 'a non-empty string', path);
    const native = await callNative(() => addon().WeightFile.open(path));
    return new WeightFile(native);
  }

  /**
   * The path that was opened (the index file for sharded checkpoints).
   * @example
   * ```ts
   * console.log(weights.path); // 'model.safetensors'
   * ```
   */
  get path(): string {
    this.#check('read path');
    return this.#path;
  }

  /**
   * `'safetensors'` or `'torch'`.
   * @example
   * ```ts
   * if (weights.format === 'torch') console.log('consider `showo2 convert` for faster loads');
   * ```
   */
  get format(): WeightFormat {
    this.#check('read format');
    return this.#format;
  }

  /**
   * Every tensor's name, dtype and shape, sorted by name.
   * @example
   * ```ts
   * const total = weights.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
   * ```
   */
  get tensors(): readonly TensorInfo[] {
    this.#check('list tensors');
    return this.#tensors;
  }

  /**
   * Free-form string metadata (safetensors `__metadata__`; empty for PyTorch checkpoints).
   * @example
   * ```ts
   * console.log(weights.metadata.format); // 'pt'
   * ```
   */
  get metadata(): Readonly<Record<string, string>> {
    this.#check('read metadata');
    return this.#metadata;
  }

  /**
   * Whether {@link WeightFile.dispose} has been called.
   * @example
   * ```ts
   * weights.dispose();
   * weights.disposed; // true
   * ```
   */
  get disposed(): boolean {
    return this.#native === null;
  }

  /**
   * Whether the checkpoint has a tensor with this name.
   * @example
   * ```ts
   * const tied = !weights.has('showo.lm_head.weight');
   * ```
   */
  has(name: string): boolean {
    this.#check('look up a tensor');
    return this.#byName.has(name);
  }

  /**
   * Reads one tensor: its bytes are copied off the main thread into a new typed array that stays valid after
   * dispose. 16-bit float tensors come back as raw bits (Uint16Array); widen them with `toFloat32Array()`.
   *
   * Throws (rejects with) a {@link ShowO2Error}: `ERR_INVALID_ARGUMENT` when `name` is not a string,
   * `ERR_TENSOR_NOT_FOUND` when the checkpoint has no such tensor, `ERR_DISPOSED` after dispose.
   *
   * @param name - the checkpoint key.
   *
   * @example
   * ```ts
   * const q = await weights.read('showo.model.layers.0.self_attn.q_proj.weight');
   * console.log(q.dtype, q.shape, q.data.length); // 'BF16' [1536, 1536] 2359296
   * ```
   */
  async read(name: string): Promise<TensorData> {
    const native = this.#check('read a tensor');
    if (!isString(name)) throw invalidParameterError('name', 'a string', name);
    if (!this.#byName.has(name)) {
      throw createError('ERR_TENSOR_NOT_FOUND', `No tensor named ${JSON.stringify(name)} in ${this.#path}`);
    }
    const raw = await callNative(() => native.read(name));
    const dtype = toDType(raw.dtype);
    return { dtype, shape: Object.freeze(raw.shape), data: typedArrayFor(dtype, raw.data) } as TensorData;
  }

  /**
   * Releases the file mapping. Safe to call more than once; afterwards every method and getter throws
   * `ERR_DISPOSED`. Reads already in flight finish normally.
   *
   * @example
   * ```ts
   * const weights = await WeightFile.open('model.safetensors');
   * try {
   *   await weights.read('showo.model.norm.weight');
   * } finally {
   *   weights.dispose();
   * }
   * ```
   */
  dispose(): void {
    this.#native?.close();
    this.#native = null;
  }

  /**
   * Same as {@link WeightFile.dispose}, for `await using`.
   * @example
   * ```ts
   * await using weights = await WeightFile.open('model.safetensors');
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  #check(operation: string): AddonWeightFile {
    if (this.#native === null) throw disposedError('WeightFile', operation);
    return this.#native;
  }
}
