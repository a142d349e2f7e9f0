/**
 * Image and video generation: options, validation, sequence assembly and decoding around the native flow-matching
 * sampler (native/core/generation.h), for {@link ShowO2Model.generateImages} and {@link ShowO2Model.generateVideo}.
 *
 * Sequence assembly happens here (spec §2.3); the ODE loop, CFG and the prefix reuse run natively.
 *
 * @module
 */
import { randomInt } from 'node:crypto';

import type { AddonCancelToken, AddonFloatTensor, AddonGenerationStep, AddonShowo2Model } from '../typings/addon.js';
import { callNative, checkOptionKeys, createError, invalidParameterError, ShowO2Error } from './errors.js';
import { pixelsToFrames, type RgbImage } from './image.js';
import { addon } from './native.js';
import { buildGenerationSequence, defaultMaxTextTokens } from './prompt.js';
import type { ShowO2Tokenizer } from './tokenizer.js';
import { coverImagePixels } from './visual-input.js';
import { firstNonFinite, isDefined, isFiniteNumber, isOneOf, isPlainObject, isPositiveInteger } from './validate.js';

/**
 * What the `onStep` callback receives after each ODE step.
 *
 * @example
 * ```ts
 * const onStep = (p: GenerationProgress) => console.log(`step ${p.step}/${p.totalSteps} at ${p.elapsedMs} ms`);
 * ```
 */
export interface GenerationProgress {
  /** Steps done (1-based). */
  step: number;
  /** Steps in all: `steps - 1` ODE intervals. */
  totalSteps: number;
  /** Model evaluations so far (a CFG pair counts once; Heun makes two per step). */
  modelEvaluations: number;
  /** The flow time reached, in [0, 1] (1 = clean). */
  t: number;
  /** Milliseconds since the generation started. */
  elapsedMs: number;
  /**
   * With `preview: true`: the latent the model currently predicts as the final one (`x + (1 - t) v`), shape
   * `[B, 16, T, h, w]`; decode it with the VAE for a picture of the progress. Costs only a copy per step.
   */
  preview?: {
    /** The latent's values, row-major. */
    data: Float32Array;
    /** `[B, 16, T, h, w]`. */
    shape: readonly number[];
  };
}

/** A latent tensor `[B, 16, T, h, w]` (normalised, as the VAE's encoder produces and its decoder takes). */
export interface LatentTensor {
  /** The values, row-major. */
  data: Float32Array;
  /** `[B, 16, T, h, w]`: batch, latent channels, latent frames, height / 8, width / 8. */
  shape: readonly number[];
}

/** Where a generation's time went, in milliseconds. */
export interface GenerationTimings {
  /** The ODE (every model evaluation). */
  denoiseMs: number;
  /** The VAE decode (0 with `output: 'latent'`). */
  decodeMs: number;
  /** Everything, from the call to the result. */
  totalMs: number;
}

/**
 * Options of {@link ShowO2Model.generateImages}.
 *
 * @example
 * ```ts
 * const options: ImageGenerationOptions = { prompt: 'a red fox in the snow', steps: 50, guidanceScale: 7.5, seed: 1 };
 * ```
 */
export interface ImageGenerationOptions {
  /** The prompt, or several prompts generated as one batch. */
  prompt: string | readonly string[];
  /** Width in pixels, a positive multiple of 16. Defaults to the model's resolution (432 for the released models). */
  width?: number;
  /** Height in pixels, a positive multiple of 16. Defaults to the model's resolution. */
  height?: number;
  /** Time-grid points of the ODE, >= 2 (the reference's `num_inference_steps`: 50 gives 49 steps). Defaults to 50. */
  steps?: number;
  /** Classifier-free guidance scale g >= 0 (`v_u + g (v_c - v_u)`); 0 turns CFG off. Defaults to 5.0 (the configs'). */
  guidanceScale?: number;
  /** Time shift s > 0 of the grid `t / (t + s - s t)`. Defaults to 3.0. */
  shift?: number;
  /** `'euler'` (the reference) or `'heun'` (2nd order, two model evaluations per step). Defaults to `'euler'`. */
  solver?: 'euler' | 'heun';
  /**
   * Seed of the initial noise, a non-negative safe integer: the same seed gives the same image on every run of the
   * same backend. Defaults to a random seed, reported in the result.
   */
  seed?: number;
  /** Explicit initial noise `[B, 16, T, h, w]` instead of the seeded one (as diffusers pipelines' `latents`). */
  latents?: LatentTensor;
  /** `'image'`: decode to pixels; `'latent'`: skip the VAE and return only the final latent. Defaults to `'image'`. */
  output?: 'image' | 'latent';
  /**
   * The longest prompt in tokens. Defaults to the released configs' `max_text_len` (290 at 432x432, else 251).
   */
  maxTextTokens?: number;
  /** Cut a longer prompt to `maxTextTokens` as the reference does, instead of failing. Defaults to false. */
  truncatePrompt?: boolean;
  /** Called after each step (on the event loop, never blocking the model). */
  onStep?: (progress: GenerationProgress) => void;
  /** Include `preview` in each progress report. Defaults to false. */
  preview?: boolean;
  /** Stops the generation within one model evaluation; the promise rejects with `ERR_CANCELLED`. */
  signal?: AbortSignal;
  /** How decoded bytes are rounded: `'round'`, or `'truncate'` as the reference. Defaults to `'round'`. */
  rounding?: 'round' | 'truncate';
}

/**
 * Options of {@link ShowO2Model.generateVideo}: those of images plus the frame count and an optional first frame.
 *
 * @example
 * ```ts
 * const options: VideoGenerationOptions = { prompt: 'a boat on a lake', frames: 17, image: 'first.png' };
 * ```
 */
export interface VideoGenerationOptions extends ImageGenerationOptions {
  /** Frames, 1 + 4k (the VAE's temporal stride). Defaults to 17. */
  frames?: number;
  /**
   * Image-to-video: the first frame. It is resized to cover the video size, centre-cropped, encoded by the VAE and
   * held fixed as latent frame 0 through the whole ODE (its velocity is zero).
   */
  image?: RgbImage | Uint8Array | string;
}

/**
 * The result of {@link ShowO2Model.generateImages}.
 *
 * @example
 * ```ts
 * const { images, seed } = await model.generateImages({ prompt: 'a lighthouse at dusk' });
 * writeFileSync(`lighthouse-${seed}.png`, encodePng(images[0]!));
 * ```
 */
export interface ImageGenerationResult {
  /** One image per prompt (empty with `output: 'latent'`). */
  images: RgbImage[];
  /** The final latent `[B, 16, 1, h, w]`. */
  latents: LatentTensor;
  /** The seed the noise came from (the given or the drawn one; meaningless with explicit `latents`). */
  seed: number;
  /** Milliseconds spent: the ODE, the VAE decode and in all. */
  timings: GenerationTimings;
}

/** The result of {@link ShowO2Model.generateVideo}. */
export interface VideoGenerationResult {
  /** One list of frames per prompt (empty with `output: 'latent'`). */
  videos: RgbImage[][];
  /** The final latent `[B, 16, T, h, w]`. */
  latents: LatentTensor;
  /** The seed the noise came from (the given or the drawn one; meaningless with explicit `latents`). */
  seed: number;
  /** Milliseconds spent: the ODE, the VAE decode and in all. */
  timings: GenerationTimings;
}

/** What the generation needs from its model. @internal */
export interface GenerationContext {
  native: AddonShowo2Model;
  tokenizer: ShowO2Tokenizer;
  config: { image_resolution: number; patch_size: number; vae_spatial_stride: number; vae_temporal_stride: number; image_latent_dim: number; max_position_embeddings: number };
  /** Runs one native call in the model's queue. */
  run<T>(call: () => Promise<T>): Promise<T>;
}

const IMAGE_KEYS = [
  'prompt',
  'width',
  'height',
  'steps',
  'guidanceScale',
  'shift',
  'solver',
  'seed',
  'latents',
  'output',
  'maxTextTokens',
  'truncatePrompt',
  'onStep',
  'preview',
  'signal',
  'rounding',
];
const VIDEO_KEYS = [...IMAGE_KEYS, 'frames', 'image'];


/** The size, sampler and output options that image, video and interleaved generation share, validated. @internal */
export interface SamplingOptions {
  width: number;
  height: number;
  steps: number;
  guidanceScale: number;
  shift: number;
  solver: 'euler' | 'heun';
  output: 'image' | 'latent';
  rounding: 'round' | 'truncate';
}

interface Resolved extends SamplingOptions {
  prompts: string[];
  frames: number;
  seed: number;
  latents: LatentTensor | undefined;
  maxTextTokens: number | undefined;
  truncatePrompt: boolean;
  onStep: ((p: GenerationProgress) => void) | undefined;
  preview: boolean;
  signal: AbortSignal | undefined;
}

/**
 * Validates the shared options (each error names `options.<key>`) and fills in their defaults: the model's
 * resolution, 50 steps, guidance 5, shift 3, Euler, images, rounding to nearest. @internal
 */
export function resolveSamplingOptions(
  config: { image_resolution: number; patch_size: number; vae_spatial_stride: number },
  o: Partial<Record<keyof SamplingOptions, unknown>>,
): SamplingOptions {
  const unit = config.patch_size * config.vae_spatial_stride;
  const size = (key: 'width' | 'height'): number => {
    const v = o[key] ?? config.image_resolution;
    if (!isPositiveInteger(v) || v % unit !== 0 || v > 16384) {
      throw invalidParameterError(`options.${key}`, `a positive multiple of ${unit} up to 16384`, o[key]);
    }
    return v;
  };
  const steps = o.steps ?? 50;
  if (!Number.isInteger(steps) || (steps as number) < 2 || (steps as number) > 10000) {
    throw invalidParameterError('options.steps', 'an integer from 2 to 10000 (time-grid points; 2 gives one step)', o.steps);
  }
  const guidanceScale = o.guidanceScale ?? 5.0;
  if (!isFiniteNumber(guidanceScale) || guidanceScale < 0) {
    throw invalidParameterError('options.guidanceScale', 'a finite number >= 0', o.guidanceScale);
  }
  const shift = o.shift ?? 3.0;
  if (!isFiniteNumber(shift) || shift <= 0) throw invalidParameterError('options.shift', 'a finite number > 0', o.shift);
  const solver = o.solver ?? 'euler';
  if (!isOneOf(solver, ['euler', 'heun'] as const)) throw invalidParameterError('options.solver', "'euler' or 'heun'", o.solver);
  const output = o.output ?? 'image';
  if (!isOneOf(output, ['image', 'latent'] as const)) throw invalidParameterError('options.output', "'image' or 'latent'", o.output);
  const rounding = o.rounding ?? 'round';
  if (!isOneOf(rounding, ['round', 'truncate'] as const)) {
    throw invalidParameterError('options.rounding', "'round' or 'truncate'", o.rounding);
  }
  return { width: size('width'), height: size('height'), steps: steps as number, guidanceScale, shift, solver, output, rounding };
}

function resolveOptions(ctx: GenerationContext, options: unknown, video: boolean): Resolved {
  if (!isPlainObject(options)) throw invalidParameterError('options', 'an object', options);
  checkOptionKeys(options, video ? VIDEO_KEYS : IMAGE_KEYS);
  const o = options as Partial<VideoGenerationOptions>;
  const prompts = typeof o.prompt === 'string' ? [o.prompt] : o.prompt;
  if (!Array.isArray(prompts) || prompts.length === 0 || !prompts.every((p) => typeof p === 'string')) {
    throw invalidParameterError('options.prompt', 'a string or a non-empty array of strings', o.prompt);
  }
  const { width, height, steps, guidanceScale, shift, solver, output, rounding } = resolveSamplingOptions(ctx.config, o);
  const stride = ctx.config.vae_temporal_stride;
  const frames = video ? (o.frames ?? 17) : 1;
  if (!isPositiveInteger(frames) || (frames - 1) % stride !== 0 || frames > 1 + 4 * 1024) {
    throw invalidParameterError('options.frames', `a frame count of the form 1 + ${stride}k (1, ${1 + stride}, ${1 + 2 * stride}, ...)`, o.frames);
  }
  const seed = o.seed ?? randomInt(0, 2 ** 48 - 1);
  if (!Number.isSafeInteger(seed) || seed < 0) throw invalidParameterError('options.seed', 'a non-negative safe integer', o.seed);
  if (isDefined(o.maxTextTokens) && (!Number.isInteger(o.maxTextTokens) || o.maxTextTokens < 0)) {
    throw invalidParameterError('options.maxTextTokens', 'a non-negative integer', o.maxTextTokens);
  }
  if (isDefined(o.truncatePrompt) && typeof o.truncatePrompt !== 'boolean') {
    throw invalidParameterError('options.truncatePrompt', 'a boolean', o.truncatePrompt);
  }
  if (isDefined(o.onStep) && typeof o.onStep !== 'function') throw invalidParameterError('options.onStep', 'a function', o.onStep);
  if (isDefined(o.preview) && typeof o.preview !== 'boolean') throw invalidParameterError('options.preview', 'a boolean', o.preview);
  if (isDefined(o.signal) && !(o.signal instanceof AbortSignal)) throw invalidParameterError('options.signal', 'an AbortSignal', o.signal);
  const latentShape = latentShapeOf(ctx, prompts.length, frames, height, width);
  if (isDefined(o.latents)) {
    const l = o.latents;
    if (!isPlainObject(l) || !(l.data instanceof Float32Array) || !Array.isArray(l.shape)) {
      throw invalidParameterError('options.latents', 'an object { data: Float32Array, shape }', l);
    }
    if (l.shape.length !== 5 || l.shape.some((d, i) => d !== latentShape[i])) {
      throw createError(
        'ERR_SHAPE_MISMATCH',
        `Expected options.latents.shape to be [${latentShape.join(', ')}] (prompts, channels, latent frames, height/8, ` +
          `width/8) but received [${l.shape.join(', ')}]`,
      );
    }
    if (l.data.length !== latentShape.reduce((a, b) => a * b, 1)) {
      throw createError('ERR_SHAPE_MISMATCH', `options.latents.data holds ${l.data.length} floats, not the product of its shape`);
    }
    const bad = firstNonFinite(l.data);
    if (bad >= 0) {
      throw invalidParameterError(`options.latents.data[${bad}]`, 'a finite number (the starting noise must not hold NaN or Infinity)', l.data[bad]);
    }
  }
  return {
    prompts,
    width,
    height,
    frames,
    steps,
    guidanceScale,
    shift,
    solver,
    seed,
    latents: o.latents,
    output,
    maxTextTokens: o.maxTextTokens,
    truncatePrompt: o.truncatePrompt ?? false,
    onStep: o.onStep,
    preview: o.preview ?? false,
    signal: o.signal,
    rounding,
  };
}

function latentShapeOf(ctx: GenerationContext, batch: number, frames: number, height: number, width: number): number[] {
  const s = ctx.config.vae_spatial_stride;
  const latentFrames = 1 + (frames - 1) / ctx.config.vae_temporal_stride;
  return [batch, ctx.config.image_latent_dim, latentFrames, height / s, width / s];
}

/** Runs one generation (images when `video` is false). @internal */
export async function runVisualGeneration(
  ctx: GenerationContext,
  options: unknown,
  video: boolean,
): Promise<{ frames: RgbImage[][]; latents: LatentTensor; seed: number; timings: ImageGenerationResult['timings'] }> {
  const started = performance.now();
  const r = resolveOptions(ctx, options, video);
  const firstFrameInput = video ? (options as VideoGenerationOptions).image : undefined;
  const latentShape = latentShapeOf(ctx, r.prompts.length, r.frames, r.height, r.width);
  const tokensPerFrame = (latentShape[3]! / ctx.config.patch_size) * (latentShape[4]! / ctx.config.patch_size);
  const visualTokens = latentShape[2]! * tokensPerFrame;
  const maxTextTokens = r.maxTextTokens ?? defaultMaxTextTokens(visualTokens);
  const isVideo = latentShape[2]! > 1;
  // Before anything is built: the sequence (maxTextTokens + visual tokens + 5 positions, spec §2.3) must fit in the
  // model's context. Checked here, not only natively, because a size or frame count far past it would otherwise make
  // arrays of billions of ids (and pixels) before the native side could refuse them.
  const sequenceLength = maxTextTokens + visualTokens + 5;
  const contextLength = ctx.config.max_position_embeddings;
  if (sequenceLength > contextLength) {
    const sizes = `${r.width}x${r.height}${video ? `, ${r.frames} frames` : ''}`;
    throw createError(
      'ERR_INVALID_ARGUMENT',
      `The generation needs ${sequenceLength} positions (${visualTokens} visual tokens for ${sizes}, plus ` +
        `${maxTextTokens + 5} for the prompt: options.maxTextTokens + 5) but the model's context is ${contextLength} ` +
        `positions; use a smaller width/height${video ? ', fewer frames' : ''} or a smaller maxTextTokens`,
    );
  }

  const cond = r.prompts.map((prompt, i) => {
    const textIds = ctx.tokenizer.encode(prompt);
    if (textIds.length > maxTextTokens && !r.truncatePrompt) {
      throw createError(
        'ERR_INVALID_ARGUMENT',
        `The prompt${r.prompts.length > 1 ? ` options.prompt[${i}]` : ''} is ${textIds.length} tokens long but at most ` +
          `${maxTextTokens} fit (options.maxTextTokens); shorten it or pass truncatePrompt: true to cut it as the reference does`,
      );
    }
    const seq = buildGenerationSequence(ctx.tokenizer, textIds, { visualTokens, maxTextTokens, video: isVideo });
    return { ids: Int32Array.from(seq.ids), blockOffset: seq.blockOffset };
  });
  const unconditional = buildGenerationSequence(ctx.tokenizer, [], { visualTokens, maxTextTokens, video: isVideo });

  let firstFrame: AddonFloatTensor | undefined;
  if (isDefined(firstFrameInput)) {
    const pixels = await coverImagePixels(firstFrameInput, r.width, r.height, 'options.image');
    const latent = await ctx.run(() => callNative(() => ctx.native.encodeImages({ data: pixels, shape: [1, 3, 1, r.height, r.width] })));
    // One conditioning frame for every prompt of the batch.
    const data = new Float32Array(latent.data.length * r.prompts.length);
    for (let b = 0; b < r.prompts.length; b++) data.set(latent.data, b * latent.data.length);
    firstFrame = { data, shape: [r.prompts.length, ...latent.shape.slice(1)] };
  }

  const token: AddonCancelToken = new (addon().CancelToken)();
  const onAbort = () => token.cancel();
  if (r.signal?.aborted) throw createError('ERR_CANCELLED', 'The generation was aborted before it started');
  r.signal?.addEventListener('abort', onAbort);
  let callbackError: unknown;
  const onStep = r.onStep
    ? (step: AddonGenerationStep) => {
        if (callbackError !== undefined) return;
        try {
          r.onStep!({ ...step, ...(step.preview ? { preview: { data: step.preview.data, shape: Object.freeze([...step.preview.shape]) } } : {}) });
        } catch (err) {
          callbackError = err; // stop the generation and reject with the callback's own error
          token.cancel();
        }
      }
    : undefined;
  let latents: AddonFloatTensor;
  const denoiseStart = performance.now();
  try {
    latents = await ctx.run(() =>
      callNative(() =>
        ctx.native.generate(
          {
            cond,
            ...(r.guidanceScale > 0 ? { uncond: { ids: Int32Array.from(unconditional.ids), blockOffset: unconditional.blockOffset } } : {}),
            latentShape,
            seed: r.seed,
            steps: r.steps,
            shift: r.shift,
            guidanceScale: r.guidanceScale,
            solver: r.solver,
            preview: r.preview,
            ...(r.latents ? { initialLatents: { data: r.latents.data, shape: [...r.latents.shape] } } : {}),
            ...(firstFrame ? { firstFrame } : {}),
          },
          onStep,
          token,
        ),
      ),
    );
  } catch (err) {
    if (callbackError !== undefined) throw callbackError;
    if (err instanceof ShowO2Error && err.code === 'ERR_CANCELLED') {
      throw createError('ERR_CANCELLED', 'The generation was aborted (options.signal)', { cause: err });
    }
    throw err;
  } finally {
    r.signal?.removeEventListener('abort', onAbort);
  }
  if (callbackError !== undefined) throw callbackError;
  const denoiseMs = performance.now() - denoiseStart;

  let frames: RgbImage[][] = [];
  const decodeStart = performance.now();
  if (r.output === 'image') {
    if (r.signal?.aborted) throw createError('ERR_CANCELLED', 'The generation was aborted (options.signal)');
    const pixels = await ctx.run(() => callNative(() => ctx.native.decodeLatents(latents)));
    frames = pixelsToFrames(pixels.data, pixels.shape, r.rounding);
  }
  const decodeMs = performance.now() - decodeStart;
  return {
    frames,
    latents: { data: latents.data, shape: Object.freeze([...latents.shape]) },
    seed: r.seed,
    timings: { denoiseMs, decodeMs, totalMs: performance.now() - started },
  };
}
