/**
 * The Wan2.1 VAE (spec §3.1): {@link WanVae} turns images and videos into the 16-channel latents Show-o2 works on,
 * and latents back into frames. It runs on the CPU backend, on worker threads, so the event loop stays free.
 *
 * @module
 */
import type { AddonFloatTensor, AddonWanVae } from '../typings/addon.js';
import { callNative, checkOptionKeys, createError, describeValue, disposedError, fromNativeError, invalidParameterError, ShowO2Error } from './errors.js';
import { imageToTensor, pixelsToFrames, type RgbImage } from './image.js';
import { addon } from './native.js';
import {
  checkKernelOptions,
  DEVICES,
  kernelOptions,
  resolveDevice,
  WEIGHT_DTYPES,
  type ActivationDtype,
  type ConvDtype,
  type Device,
  type WeightDtype,
} from './runtime.js';
import { firstNonFinite, isDefined, isFiniteNumber, isInteger, isNonEmptyString, isOneOf, isPlainObject, isPositiveInteger } from './validate.js';

/**
 * The VAE's architecture, in the spellings of the reference's `config.json` (`vae_config`). Every field is optional;
 * a field left out keeps the released Wan2.1 VAE's value. The weights must match: a config that does not fit the
 * checkpoint fails in {@link WanVae.load} with an error listing the missing, unexpected or misshapen keys.
 *
 * @example
 * ```ts
 * import { WanVae, type WanVaeConfig } from 'showo2';
 *
 * const config: WanVaeConfig = { dim: 96, z_dim: 16 };
 * const vae = await WanVae.load('Wan2.1_VAE.pth', { config });
 * ```
 */
export interface WanVaeConfig {
  /** Base channel count. Defaults to `96`. */
  dim?: number;
  /** Latent channels. Defaults to `16`. */
  z_dim?: number;
  /** Channel multiplier per stage; the spatial stride is `2 ** (dim_mult.length - 1)`. Defaults to `[1, 2, 4, 4]`. */
  dim_mult?: number[];
  /** Residual blocks per encoder stage (the decoder has one more). Defaults to `2`. */
  num_res_blocks?: number;
  /** Spatial scales (1, 0.5, ...) that get an attention block. Defaults to `[]`. */
  attn_scales?: number[];
  /**
   * Whether each down stage also halves time (the reference's spelling, "temperal"); the temporal stride is 2 per
   * `true`. Defaults to `[false, true, true]`.
   */
  temperal_downsample?: boolean[];
  /** Per-channel mean subtracted from the posterior mean. Defaults to the Wan2.1 values (16 numbers). */
  latents_mean?: number[];
  /** Per-channel standard deviation the latent is divided by. Defaults to the Wan2.1 values (16 numbers). */
  latents_std?: number[];
}

/** Options of {@link WanVae.load}. */
export interface WanVaeLoadOptions {
  /** The architecture; see {@link WanVaeConfig}. Defaults to the released Wan2.1 VAE. */
  config?: WanVaeConfig;
  /**
   * Where the VAE runs: `'cpu'`, `'cuda'` or `'auto'` (see {@link Device}). `'cuda'` without a usable GPU rejects
   * with a {@link NoGpuError} (`ERR_NO_GPU`) naming the reason. Defaults to the `SHOWO2_DEVICE` environment variable, else `'cpu'`.
   */
  device?: Device;
  /** The dtype of the weight tensors on a CUDA device: `'bf16'` or `'fp16'`. Defaults to `'bf16'`. */
  weightDtype?: WeightDtype;
  /**
   * What the convolutions multiply in on a CUDA device; see {@link ConvDtype}. Ignored on the CPU. Defaults to
   * `'fp32'` until the bf16 path has been measured on a GPU (bench/RESULTS.md).
   */
  convDtype?: ConvDtype;
  /**
   * On a CUDA device, keep the VAE's activations channels-last (memory `[N, T, H, W, C]`, PyTorch's
   * `channels_last_3d`; the conv weights rearranged to match once at load): the layout its convolution kernels read
   * fastest. The results are the same function either way. Ignored on the CPU. Defaults to `false` until measured.
   */
  channelsLast?: boolean;
  /**
   * What the VAE stores its activations in on a CUDA device; see {@link ActivationDtype}. Ignored on the CPU.
   * Defaults to `'fp32'` until measured on a GPU.
   */
  activationDtype?: ActivationDtype;
}

/**
 * A float32 video: `data` is row-major `[N, 3, T, H, W]` with values in [-1, 1] (N videos, RGB planes, T frames).
 * The raw input of {@link WanVae.encode} and the `raw` output of {@link WanVae.decode}.
 *
 * @example
 * ```ts
 * import type { VideoTensor } from 'showo2';
 *
 * const black: VideoTensor = { data: new Float32Array(3 * 64 * 64).fill(-1), shape: [1, 3, 1, 64, 64] };
 * ```
 */
export interface VideoTensor {
  /** `N * 3 * T * H * W` floats, row-major. */
  data: Float32Array;
  /** `[N, 3, T, H, W]`. */
  shape: readonly number[];
}

/**
 * A normalised latent: row-major `[N, z_dim, T', H / 8, W / 8]` float32, `(mu - latents_mean) / latents_std` with
 * `T' = 1 + (T - 1) / 4` (for the default config).
 *
 * @example
 * ```ts
 * const latent: Latent = await vae.encode(image);
 * console.log(latent.shape); // [1, 16, 1, 54, 54] for a 432x432 image
 * ```
 */
export interface Latent {
  /** `N * z_dim * T' * h * w` floats, row-major. */
  data: Float32Array;
  /** `[N, z_dim, T', h, w]`. */
  shape: readonly number[];
}

/** Options of {@link WanVae.encode}. */
export interface EncodeOptions {
  /**
   * Draw the latent from the posterior instead of returning its mean, as the reference's `WanVAE.sample()` does:
   * `z + exp(0.5 * clamp(logvar, -30, 20)) * eps` with `eps ~ N(0, 1)`. Like the reference, the noise is added after
   * normalisation and is not divided by `latents_std`. The noise comes from a documented generator seeded by `seed`
   * (reproducible across platforms, but not torch's RNG). Defaults to `false` (the posterior mean).
   */
  sample?: boolean;
  /** The noise seed when `sample` is true, a non-negative safe integer. Defaults to a random seed. */
  seed?: number;
}

/** Options of {@link WanVae.decode}. */
export interface DecodeOptions {
  /**
   * How `frames` turn floats into bytes (see {@link tensorToImage}): `'round'` to the nearest level, or
   * `'truncate'` as the reference's `astype(uint8)` does (spec §3.1, §11.11), for bit-parity with its images.
   * Defaults to `'round'`.
   */
  rounding?: 'round' | 'truncate';
  /**
   * Spatial tiling, which bounds memory for large frames: `'auto'` tiles only when the untiled decode would need
   * more than about 8 GiB of activations (so Show-o2's native sizes, 432/512 px images and videos and 1024 px
   * images, decode untiled, exactly as the reference); `'on'` always tiles; `'off'` never does. Tiles overlap and
   * are blended with linear ramps; tiling is an approximation of the untiled decode (the decoder's receptive field
   * and its frame-wide attention cross tile borders), so prefer `'off'` when memory allows. Defaults to `'auto'`.
   */
  tiling?: 'auto' | 'on' | 'off';
  /** Tile side in latent pixels (x8 in output pixels), at least 1. Defaults to `32` (256 px). */
  tileLatent?: number;
  /** Minimum overlap of neighbouring tiles in latent pixels, below `tileLatent`. Defaults to `8` (64 px). */
  overlapLatent?: number;
}

/** What {@link WanVae.decode} resolves with. */
export interface DecodedVideo {
  /** One 8-bit image per frame, batch-major: all frames of video 0, then video 1, ... */
  frames: RgbImage[];
  /** The decoded floats, `[N, 3, T, H, W]` in [-1, 1]. */
  raw: VideoTensor;
}

const CONFIG_KEYS = [
  'dim',
  'z_dim',
  'dim_mult',
  'num_res_blocks',
  'attn_scales',
  'temperal_downsample',
  'latents_mean',
  'latents_std',
] as const;

function shapeMismatch(name: string, expected: string, actual: unknown): ShowO2Error {
  return createError('ERR_SHAPE_MISMATCH', `Expected ${expected} for ${name} but received ${describeValue(actual)}`);
}

function isArrayOf(value: unknown, item: (x: unknown) => boolean): value is unknown[] {
  return Array.isArray(value) && value.every(item);
}


/** Type checks of each given field; the cross-field checks (lengths vs z_dim, ...) are the core's. */
function checkConfig(config: unknown): WanVaeConfig {
  if (!isPlainObject(config)) throw invalidParameterError('options.config', 'an object', config);
  checkOptionKeys(config, CONFIG_KEYS, 'options.config');
  const c = config as Record<(typeof CONFIG_KEYS)[number], unknown>;
  for (const key of ['dim', 'z_dim', 'num_res_blocks'] as const) {
    if (isDefined(c[key]) && !isPositiveInteger(c[key])) {
      throw invalidParameterError(`options.config.${key}`, 'a positive integer', c[key]);
    }
  }
  if (isDefined(c.dim_mult) && !isArrayOf(c.dim_mult, isPositiveInteger)) {
    throw invalidParameterError('options.config.dim_mult', 'an array of positive integers', c.dim_mult);
  }
  for (const key of ['attn_scales', 'latents_mean', 'latents_std'] as const) {
    if (isDefined(c[key]) && !isArrayOf(c[key], isFiniteNumber)) {
      throw invalidParameterError(`options.config.${key}`, 'an array of finite numbers', c[key]);
    }
  }
  if (isDefined(c.temperal_downsample) && !isArrayOf(c.temperal_downsample, (x) => typeof x === 'boolean')) {
    throw invalidParameterError('options.config.temperal_downsample', 'an array of booleans', c.temperal_downsample);
  }
  return config as WanVaeConfig;
}

/** A 5-D float tensor's structure: Float32Array data, 5 positive integer dimensions, a matching length. */
function checkTensor5(value: unknown, name: string, layout: string): asserts value is VideoTensor {
  if (typeof value !== 'object' || value === null) {
    throw invalidParameterError(name, `an object { data, shape } (${layout})`, value);
  }
  const { data, shape } = value as Partial<VideoTensor>;
  if (!(data instanceof Float32Array)) throw invalidParameterError(`${name}.data`, 'a Float32Array', data);
  if (!Array.isArray(shape) || shape.length !== 5) {
    throw shapeMismatch(`${name}.shape`, `5 dimensions ${layout}`, shape);
  }
  shape.forEach((d, i) => {
    if (!isPositiveInteger(d)) throw invalidParameterError(`${name}.shape[${i}]`, 'a positive integer', d);
  });
  const numel = shape.reduce((a: number, b: number) => a * b, 1);
  if (data.length !== numel) {
    throw shapeMismatch(`${name}.data`, `${numel} floats (the product of shape [${shape.join(', ')}])`, `${data.length} floats`);
  }
  // NaN or Infinity would flow through every layer into the output (black or garbage frames): refuse them here.
  const bad = firstNonFinite(data);
  if (bad >= 0) throw invalidParameterError(`${name}.data[${bad}]`, 'a finite number (the tensor must not hold NaN or Infinity)', data[bad]);
}

/**
 * The Wan2.1 causal video VAE: 8x spatial and 4x temporal compression to 16 latent channels. Create one with
 * {@link WanVae.load}; release it with {@link WanVae.dispose} (or `await using`).
 *
 * All model work runs on a worker thread; calls on one instance run one after another, in call order.
 *
 * @example
 * ```ts
 * import { readFileSync, writeFileSync } from 'node:fs';
 * import { decodeImage, encodePng, WanVae } from 'showo2';
 *
 * await using vae = await WanVae.load('Wan2.1_VAE.pth');
 * const latent = await vae.encode(decodeImage(readFileSync('cat.png'))); // [1, 16, 1, H/8, W/8]
 * const { frames } = await vae.decode(latent);
 * writeFileSync('cat-roundtrip.png', encodePng(frames[0]!));
 * ```
 */
export class WanVae implements AsyncDisposable {
  #native: AddonWanVae | null;
  readonly #config: Readonly<Required<WanVaeConfig>>;
  readonly #spatialStride: number;
  readonly #temporalStride: number;
  /** The tail of the call queue: each call starts after the previous one settles. */
  #queue: Promise<unknown> = Promise.resolve();
  /** For a model's VAE ({@link ShowO2Model.vae}): the model's own call queue, so its calls run in order with the model's. */
  readonly #runOnOwner: (<T>(call: () => Promise<T>) => Promise<T>) | undefined;

  private constructor(native: AddonWanVae, runOnOwner?: <T>(call: () => Promise<T>) => Promise<T>) {
    this.#native = native;
    this.#runOnOwner = runOnOwner;
    const c = native.config;
    this.#config = Object.freeze({
      dim: c.dim,
      z_dim: c.z_dim,
      dim_mult: Object.freeze([...c.dim_mult]) as number[],
      num_res_blocks: c.num_res_blocks,
      attn_scales: Object.freeze([...c.attn_scales]) as number[],
      temperal_downsample: Object.freeze([...c.temperal_downsample]) as boolean[],
      latents_mean: Object.freeze([...c.latents_mean]) as number[],
      latents_std: Object.freeze([...c.latents_std]) as number[],
    });
    this.#spatialStride = 2 ** (c.dim_mult.length - 1);
    this.#temporalStride = 2 ** c.temperal_downsample.filter(Boolean).length;
  }

  /**
   * Loads the VAE from a checkpoint: the published `Wan2.1_VAE.pth`, or a safetensors conversion of it. Every key
   * the config needs is checked (presence, shape, float dtype) before anything is loaded, and the model is built
   * on a worker thread. F32, BF16 and F16 weights are used as stored.
   *
   * Throws (rejects with) a {@link ShowO2Error}: `ERR_INVALID_ARGUMENT` for a bad path or config, or a config that
   * does not match the checkpoint (the message lists the missing and unexpected keys); `ERR_SHAPE_MISMATCH` or
   * `ERR_UNSUPPORTED_DTYPE` for wrongly shaped or typed weights; the `WeightFile.open` errors for the file; a
   * {@link NoGpuError} (`ERR_NO_GPU`) for `device: 'cuda'` without a usable GPU.
   *
   * @param path - the checkpoint file.
   * @param options - `config`: the architecture. Defaults to the released Wan2.1 VAE.
   *
   * @example
   * ```ts
   * const vae = await WanVae.load('Wan2.1_VAE.pth');
   * const tiny = await WanVae.load('tiny_vae.pth', { config: JSON.parse(readFileSync('tiny_vae_config.json', 'utf8')) });
   * ```
   */
  static async load(path: string, options?: WanVaeLoadOptions): Promise<WanVae> {
    if (!isNonEmptyString(path)) throw invalidParameterError('path', 'a non-empty string', path);
    if (isDefined(options) && !isPlainObject(options)) throw invalidParameterError('options', 'an object', options);
    if (isDefined(options?.device) && !isOneOf(options?.device, DEVICES)) {
      throw invalidParameterError('options.device', "one of 'cpu', 'cuda', 'auto'", options?.device);
    }
    if (isDefined(options?.weightDtype) && !isOneOf(options?.weightDtype, WEIGHT_DTYPES)) {
      throw invalidParameterError('options.weightDtype', "one of 'bf16', 'fp16'", options?.weightDtype);
    }
    checkKernelOptions(options, 'options');
    const config = isDefined(options?.config) ? checkConfig(options?.config) : undefined;
    const json = config === undefined ? undefined : JSON.stringify(config);
    const device = options?.device as Device | undefined;
    const weightDtype = options?.weightDtype ?? 'bf16';
    // The device check runs inside callNative so that a load error keeps the caller's stack (no await before it).
    const native = await callNative(async () =>
      addon().WanVae.load(path, json, {
        device: await resolveDevice(device),
        weightDtype,
        ...kernelOptions(options),
      }),
    );
    return new WanVae(native);
  }

  /**
   * Wraps a loaded model's own VAE (the addon's `Showo2Model.vae()`), for {@link ShowO2Model.vae}. Its calls run on
   * the model's call queue; disposing the model disposes it.
   * @internal
   */
  static fromModel(native: AddonWanVae, runOnOwner: <T>(call: () => Promise<T>) => Promise<T>): WanVae {
    return new WanVae(native, runOnOwner);
  }

  /**
   * Where the VAE runs: `'cpu'` or `'cuda'` (what `'auto'` resolved to).
   * @example
   * ```ts
   * const vae = await WanVae.load('Wan2.1_VAE.pth', { device: 'auto' });
   * console.log(vae.device);
   * ```
   */
  get device(): 'cpu' | 'cuda' {
    this.#check('read device');
    return (this.#native as AddonWanVae).device;
  }

  /**
   * The architecture in use, every field resolved (the Wan2.1 defaults filled in).
   * @example
   * ```ts
   * console.log(vae.config.z_dim); // 16
   * ```
   */
  get config(): Readonly<Required<WanVaeConfig>> {
    this.#check('read config');
    return this.#config;
  }

  /**
   * Whether {@link WanVae.dispose} has been called.
   * @example
   * ```ts
   * vae.dispose();
   * vae.disposed; // true
   * ```
   */
  get disposed(): boolean {
    return this.#native === null;
  }

  /**
   * Encodes an image, a video or a raw float tensor to the normalised latent (the posterior mean,
   * `(mu - latents_mean) / latents_std`, spec §3.1).
   *
   * - An {@link RgbImage} is one frame: converted with {@link imageToTensor} to [-1, 1], latent `[1, 16, 1, H/8, W/8]`.
   * - An `RgbImage[]` is one video: `1 + 4k` frames of one size, latent `[1, 16, 1 + k, H/8, W/8]`.
   * - A {@link VideoTensor} `[N, 3, 1 + 4k, H, W]` is used as given (values in [-1, 1]); do not modify its data
   *   until the promise settles.
   *
   * Width and height must be multiples of 8 (the spatial stride).
   *
   * Throws (rejects with) a {@link ShowO2Error}: `ERR_INVALID_ARGUMENT` for a malformed input, a tensor holding NaN or
   * Infinity, a frame count that is not `1 + 4k`, frames of different sizes or a size that is not a multiple of 8; `ERR_SHAPE_MISMATCH` for a tensor
   * that is not 5-D, has other than 3 channels or whose data length does not match its shape; `ERR_DISPOSED`
   * after dispose.
   *
   * @param input - the pixels.
   * @param options - see {@link EncodeOptions}. Defaults to `{}` (the posterior mean).
   *
   * @example
   * ```ts
   * const imageLatent = await vae.encode(decodeImage(readFileSync('cat.png')));
   * const videoLatent = await vae.encode(frames); // 17 frames -> [1, 16, 5, H/8, W/8]
   * const raw = await vae.encode({ data, shape: [1, 3, 1, 64, 64] });
   * ```
   */
  async encode(input: RgbImage | RgbImage[] | VideoTensor, options?: EncodeOptions): Promise<Latent> {
    const native = this.#check('encode');
    const video = this.#toVideo(input);
    if (isDefined(options) && !isPlainObject(options)) throw invalidParameterError('options', 'an object', options);
    const sample = options?.sample ?? false;
    if (typeof sample !== 'boolean') throw invalidParameterError('options.sample', 'a boolean', sample);
    const seed: unknown = options?.seed;
    if (isDefined(seed) && !(isInteger(seed) && seed >= 0 && seed <= Number.MAX_SAFE_INTEGER)) {
      throw invalidParameterError('options.seed', 'a non-negative safe integer', seed);
    }
    const nativeOptions = sample ? { sample, seed: (seed as number | undefined) ?? Math.floor(Math.random() * 2 ** 32) } : {};
    const out = await this.#enqueue(() => native.encode(video.data, [...video.shape], nativeOptions));
    return { data: out.data, shape: Object.freeze(out.shape) };
  }

  /**
   * Decodes a latent `[N, z_dim, T, h, w]` to `1 + 4 (T - 1)` frames of `8h` x `8w` per video, one latent frame at
   * a time as the reference does. `raw` holds the floats (clamped to [-1, 1]); `frames` the 8-bit images made by
   * {@link tensorToImage}, rounded to the nearest level by default. The reference truncates instead
   * (`astype(uint8)`, spec §3.1 and §11.11); pass `{ rounding: 'truncate' }` for bit-parity with its images.
   *
   * Throws (rejects with) a {@link ShowO2Error}: `ERR_INVALID_ARGUMENT` for a malformed latent or option, or a latent
   * holding NaN or Infinity (the message names the first such element),
   * `ERR_SHAPE_MISMATCH` for a latent that is not 5-D, has other than `z_dim` channels or whose data length does not
   * match its shape; `ERR_DISPOSED` after dispose.
   *
   * @param latent - a normalised latent, as {@link WanVae.encode} returns.
   * @param options - see {@link DecodeOptions}. Defaults to `{ rounding: 'round', tiling: 'auto' }`.
   *
   * @example
   * ```ts
   * const { frames, raw } = await vae.decode(latent);
   * writeFileSync('frame0.png', encodePng(frames[0]!));
   * console.log(raw.shape); // [1, 3, 1, 432, 432]
   * ```
   */
  async decode(latent: Latent, options?: DecodeOptions): Promise<DecodedVideo> {
    const native = this.#check('decode');
    checkTensor5(latent, 'latent', '[N, z_dim, T, h, w]');
    const zDim = this.#config.z_dim;
    if (latent.shape[1] !== zDim) throw shapeMismatch('latent.shape[1]', `${zDim} channels (z_dim)`, latent.shape[1]);
    if (isDefined(options) && !isPlainObject(options)) throw invalidParameterError('options', 'an object', options);
    const rounding = options?.rounding ?? 'round';
    if (!isOneOf(rounding, ['round', 'truncate'] as const)) {
      throw invalidParameterError('options.rounding', "one of 'round', 'truncate'", rounding);
    }
    const opts: DecodeOptions = options ?? {};
    const tiling = opts.tiling ?? 'auto';
    if (!isOneOf(tiling, ['auto', 'on', 'off'] as const)) {
      throw invalidParameterError('options.tiling', "one of 'auto', 'on', 'off'", tiling);
    }
    const tileLatent = opts.tileLatent ?? 32;
    if (!Number.isSafeInteger(tileLatent) || tileLatent < 1) {
      throw invalidParameterError('options.tileLatent', 'a positive integer', tileLatent);
    }
    const overlapLatent = opts.overlapLatent ?? 8;
    if (!Number.isSafeInteger(overlapLatent) || overlapLatent < 0 || overlapLatent >= tileLatent) {
      throw invalidParameterError('options.overlapLatent', `an integer in [0, ${tileLatent - 1}]`, overlapLatent);
    }
    const tilingOptions = { tiling, tileLatent, overlapLatent };
    const out = await this.#enqueue(() => native.decode(latent.data, [...latent.shape], tilingOptions));
    const frames = pixelsToFrames(out.data, out.shape, rounding).flat();
    return { frames, raw: { data: out.data, shape: Object.freeze(out.shape) } };
  }

  /**
   * Releases the model. Safe to call more than once; afterwards every method and getter throws `ERR_DISPOSED`.
   * Calls made before `dispose()` (running or queued) finish normally, and the model's memory is released when the
   * last of them settles.
   *
   * @example
   * ```ts
   * const vae = await WanVae.load('Wan2.1_VAE.pth');
   * try {
   *   await vae.encode(image);
   * } finally {
   *   vae.dispose();
   * }
   * ```
   */
  dispose(): void {
    const native = this.#native;
    if (native === null) return;
    this.#native = null;
    // Calls made before dispose() still run (each holds `native`); the model is freed once the last one settles.
    void this.#queue.then(() => native.dispose());
  }

  /**
   * Same as {@link WanVae.dispose}, for `await using`.
   * @example
   * ```ts
   * await using vae = await WanVae.load('Wan2.1_VAE.pth');
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  #check(operation: string): AddonWanVae {
    if (this.#native === null) throw disposedError('WanVae', operation);
    return this.#native;
  }

  /**
   * Runs `call` after every earlier call on this instance has settled (the native model runs one call at a time;
   * queueing here keeps waiting calls off the libuv pool). Failures keep the caller's stack, as callNative does.
   */
  #enqueue(call: () => Promise<AddonFloatTensor>): Promise<AddonFloatTensor> {
    const stackHolder = new Error();
    Error.captureStackTrace(stackHolder, this.#enqueue);
    const owner = this.#runOnOwner;
    const queued = owner ? () => owner(call) : call;
    const run = this.#queue.then(queued).catch((err: unknown) => {
      throw fromNativeError(err, stackHolder);
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Validates the encode input and lays it out as `[N, 3, T, H, W]` floats. */
  #toVideo(input: unknown): VideoTensor {
    const s = this.#spatialStride;
    const checkSize = (name: string, width: number, height: number): void => {
      if (width % s !== 0) throw invalidParameterError(`${name}.width`, `a multiple of ${s}`, width);
      if (height % s !== 0) throw invalidParameterError(`${name}.height`, `a multiple of ${s}`, height);
    };
    if (Array.isArray(input)) {
      const frames = input as unknown[];
      this.#checkFrameCount(frames.length, 'input.length', 'an RgbImage[] video');
      const tensors = frames.map((frame) => imageToTensor(frame as RgbImage));
      const { width, height } = frames[0] as RgbImage;
      frames.forEach((frame, i) => {
        const f = frame as RgbImage;
        if (f.width !== width || f.height !== height) {
          throw invalidParameterError(`input[${i}]`, `a ${width}x${height} image (the size of input[0])`, `${f.width}x${f.height}`);
        }
      });
      checkSize('input[0]', width, height);
      const t = frames.length;
      const plane = width * height;
      const data = new Float32Array(3 * t * plane);
      tensors.forEach((x, f) => {
        for (let c = 0; c < 3; c++) data.set(x.subarray(c * plane, (c + 1) * plane), (c * t + f) * plane);
      });
      return { data, shape: [1, 3, t, height, width] };
    }
    if (typeof input === 'object' && input !== null && 'shape' in input) {
      checkTensor5(input, 'input', '[N, 3, T, H, W]');
      const [, c, t, h, w] = input.shape as [number, number, number, number, number];
      if (c !== 3) throw shapeMismatch('input.shape[1]', '3 channels (RGB)', c);
      this.#checkFrameCount(t, 'input.shape[2]', 'a frame count');
      if (w % s !== 0) throw invalidParameterError('input.shape[4] (width)', `a multiple of ${s}`, w);
      if (h % s !== 0) throw invalidParameterError('input.shape[3] (height)', `a multiple of ${s}`, h);
      return input;
    }
    if (typeof input !== 'object' || input === null) {
      throw invalidParameterError('input', 'an RgbImage, an RgbImage[] or a VideoTensor { data, shape }', input);
    }
    const data = imageToTensor(input as RgbImage); // validates the image itself
    const { width, height } = input as RgbImage;
    checkSize('input', width, height);
    return { data, shape: [1, 3, 1, height, width] };
  }

  #checkFrameCount(count: number, name: string, what: string): void {
    const ts = this.#temporalStride;
    if (count < 1 || (count - 1) % ts !== 0) {
      throw invalidParameterError(name, `${what} of 1 + ${ts}k frames (1, ${1 + ts}, ${1 + 2 * ts}, ...)`, count);
    }
  }
}
