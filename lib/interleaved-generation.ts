/**
 * Mixed-modality generation (spec §8.4): one answer that interleaves text and images. The model writes text; when it
 * emits `<|vision_start|>` an image is generated in place by the flow-matching ODE, with the whole conversation so far
 * (text and earlier images) as its context; the text then continues with the new image in context.
 *
 * The loop runs here, one native call per step, like {@link ShowO2Model.answer}'s. The conversation lives in a native
 * session whose KV caches (of the LLM and of the flow head) grow with it, so neither a new text token nor a new image
 * recomputes the history (native/core/understanding_session.h, GenerationSequence.cached_prefix).
 *
 * Where this differs from the reference script (`inference_mixed_modality.py`), and why:
 * - Earlier images are seen at TIME(1.0) (clean) everywhere. The reference's text sampler (`mm_generate`) feeds them
 *   TIME(0.0) while its image generation (`t2i_generate`) and training use 1.0 (spec §11.5); we keep one consistent
 *   conversation. `referenceQuirks: true` reproduces the reference (a second session then holds the TIME(1.0) view
 *   for the images, so both stay KV-cached).
 * - The reference re-packs and right-pads the sequence to a multiple of 128 before each image and recomputes every
 *   position for every token; positions after the block never influence it (spec §12), so we do neither.
 * - The reference always runs 4 rounds; `maxImages` bounds the images instead (an exhausted budget bans
 *   `<|vision_start|>` from sampling), and `maxTokens` the sampled tokens.
 *
 * @module
 */
import type { AddonCancelToken, AddonFloatTensor, AddonSequenceChunk, AddonShowo2Model, AddonUnderstandingSession } from '../typings/addon.js';
import { callNative, checkOptionKeys, createError, invalidParameterError, ShowO2Error } from './errors.js';
import { imageToTensor, pixelsToFrames, type RgbImage } from './image.js';
import { addon } from './native.js';
import { buildGenerationSequence } from './prompt.js';
import type { ShowO2Tokenizer } from './tokenizer.js';
import { resolveSamplingOptions, type GenerationProgress, type LatentTensor, type SamplingOptions } from './visual-generation.js';
import { firstNonFinite, isDefined, isFiniteNumber, isOneOf, isPlainObject } from './validate.js';
import { readImageInput } from './visual-input.js';

/** An earlier part of the conversation, given to {@link ShowO2Model.generateInterleaved} as `history`. */
export type InterleavedInput =
  | {
      /** A text part. */
      type: 'text';
      /** The text, tokenized and appended. */
      text: string;
    }
  | {
      /** A text part given as token ids. */
      type: 'text';
      /** Token ids appended as they are (e.g. a text part's `tokens` from an earlier answer). */
      tokens: readonly number[];
    }
  | {
      /** An image part. */
      type: 'image';
      /** An image at exactly the generation size (`width` x `height`): a path, PNG/JPEG/WebP bytes or an RgbImage. */
      image: RgbImage | Uint8Array | string;
    }
  | {
      /** An image part given by its latent. */
      type: 'image';
      /** The latent `[1, 16, 1, h, w]` (e.g. an image part's `latents`), used as is, without the VAE. */
      latents: LatentTensor;
    };

/** Text the model wrote: one part of an interleaved answer. */
export interface InterleavedTextPart {
  /** Always `'text'`. */
  type: 'text';
  /** The text (special tokens left out). */
  text: string;
  /** Its token ids. */
  tokens: number[];
}

/** An image the model drew: one part of an interleaved answer, and what the stream yields for it. */
export interface InterleavedImagePart {
  /** Always `'image'`. */
  type: 'image';
  /** 0 for the answer's first image, then 1, ... */
  index: number;
  /** The decoded image (absent with `output: 'latent'`). */
  image?: RgbImage;
  /** The final latent `[1, 16, 1, h, w]`, as it stays in the conversation. */
  latents: LatentTensor;
  /** The seed of this image's noise (`seed + index`; meaningless with explicit `latents`). */
  seed: number;
}

/** One part of an interleaved answer. */
export type InterleavedPart = InterleavedTextPart | InterleavedImagePart;

/** A piece of text as the stream yields it, as soon as it is decoded (never a broken UTF-8 character). */
export interface InterleavedTextEvent {
  /** Always `'text'`. */
  type: 'text';
  /** The new text. */
  text: string;
}

/** What {@link ShowO2Model.generateInterleavedStream} yields: text as it is decoded, each image when it is done. */
export type InterleavedEvent = InterleavedTextEvent | InterleavedImagePart;

/** Why an interleaved answer ended. */
export type InterleavedFinishReason = 'eos' | 'length' | 'abort';

/**
 * Options of {@link ShowO2Model.generateInterleaved}.
 *
 * @example
 * ```ts
 * const options: InterleavedGenerationOptions = {
 *   prompt: 'Mixed-modality generation. A day at the beach.',
 *   maxImages: 2,
 *   seed: 7,
 * };
 * ```
 */
export interface InterleavedGenerationOptions {
  /** The opening text, right after `<|im_start|>` (no chat template, as the VIST training format, spec §8.4). */
  prompt: string;
  /** Earlier parts of the story, appended after the prompt in order. Defaults to none. */
  history?: readonly InterleavedInput[];
  /** The most images to draw, 0 to 16. Once spent, `<|vision_start|>` can no longer be sampled. Defaults to 4. */
  maxImages?: number;
  /** Begin the answer with an image instead of sampling text first (needs `maxImages` >= 1). Defaults to false. */
  startWithImage?: boolean;
  /** The most tokens to sample (text tokens and each `<|vision_start|>`), 1 to 100000. Defaults to 512. */
  maxTokens?: number;
  /** Text sampling temperature >= 0; 0 is greedy. Defaults to 1 (the reference's multinomial sampling). */
  temperature?: number;
  /** Keep only the `topK` most likely tokens; 0 turns it off. Defaults to 0. */
  topK?: number;
  /** Nucleus sampling mass in (0, 1]. Defaults to 1. */
  topP?: number;
  /** Repetition penalty > 0 (1 = off). Defaults to 1. */
  repetitionPenalty?: number;
  /** Added to the scores of the given token ids before sampling (`-Infinity` bans one). Defaults to none. */
  logitBias?: Readonly<Record<number, number>>;
  /**
   * Seed of the text sampler; image k's noise uses `seed + k`. A non-negative safe integer. Defaults to 0 (a fixed
   * seed: the same options give the same answer).
   */
  seed?: number;
  /** Image width in pixels, a positive multiple of 16. Defaults to the model's resolution. */
  width?: number;
  /** Image height in pixels, a positive multiple of 16. Defaults to the model's resolution. */
  height?: number;
  /** ODE time-grid points per image, >= 2. Defaults to 50. */
  steps?: number;
  /** Classifier-free guidance scale >= 0 (the unconditional branch is the empty prompt). Defaults to 5. */
  guidanceScale?: number;
  /** Time shift of the grid, > 0. Defaults to 3. */
  shift?: number;
  /** `'euler'` (the reference) or `'heun'`. Defaults to `'euler'`. */
  solver?: 'euler' | 'heun';
  /** Explicit starting noise per image (`[1, 16, 1, h, w]` each), for reproducing another implementation. */
  latents?: readonly LatentTensor[];
  /** `'image'`: decode each image; `'latent'`: keep only its latent. Defaults to `'image'`. */
  output?: 'image' | 'latent';
  /** How decoded bytes are rounded. Defaults to `'round'`. */
  rounding?: 'round' | 'truncate';
  /** The reference scripts' behaviour: earlier images seen at TIME(0) while sampling text (spec §11.5). Defaults to false. */
  referenceQuirks?: boolean;
  /** Called with each decoded piece of text. */
  onTextChunk?: (text: string) => void;
  /** Called after each ODE step of each image. */
  onStep?: (progress: GenerationProgress & { imageIndex: number }) => void;
  /** Stops within one token or one ODE step; the answer so far is returned with `finishReason: 'abort'`. */
  signal?: AbortSignal;
}

/** The result of {@link ShowO2Model.generateInterleaved}. */
export interface InterleavedGenerationResult {
  /** Text and image parts in order (consecutive text is one part; empty text parts are left out). */
  parts: InterleavedPart[];
  /** `'eos'`: the model ended; `'length'`: maxTokens or the context; `'abort'`: the signal. */
  finishReason: InterleavedFinishReason;
  /** What the answer used. */
  usage: {
    /** Positions of the prompt and the history. */
    promptTokens: number;
    /** Tokens sampled (text and `<|vision_start|>`). */
    completionTokens: number;
    /** Images drawn. */
    images: number;
  };
}

/** What the loop needs from its model. @internal */
export interface InterleavedContext {
  native: AddonShowo2Model;
  tokenizer: ShowO2Tokenizer;
  config: { image_resolution: number; patch_size: number; vae_spatial_stride: number; image_latent_dim: number; max_position_embeddings: number };
  run<T>(call: () => Promise<T>): Promise<T>;
}

const KEYS = [
  'prompt', 'history', 'maxImages', 'startWithImage', 'maxTokens', 'temperature', 'topK', 'topP', 'repetitionPenalty',
  'logitBias', 'seed', 'width', 'height', 'steps', 'guidanceScale', 'shift', 'solver', 'latents', 'output', 'rounding',
  'referenceQuirks', 'onTextChunk', 'onStep', 'signal',
];


interface Resolved extends SamplingOptions {
  prompt: string;
  history: readonly InterleavedInput[];
  maxImages: number;
  startWithImage: boolean;
  maxTokens: number;
  sampling: { temperature: number; topK: number; topP: number; repetitionPenalty: number; seed: number; logitBias: [number, number][] };
  latents: readonly LatentTensor[] | undefined;
  referenceQuirks: boolean;
  onTextChunk: ((text: string) => void) | undefined;
  onStep: InterleavedGenerationOptions['onStep'];
  signal: AbortSignal | undefined;
}

function resolveOptions(ctx: InterleavedContext, options: unknown): Resolved {
  if (!isPlainObject(options)) throw invalidParameterError('options', 'an object', options);
  checkOptionKeys(options, KEYS);
  const o = options as Partial<InterleavedGenerationOptions>;
  if (typeof o.prompt !== 'string') throw invalidParameterError('options.prompt', 'a string', o.prompt);
  const history = o.history ?? [];
  if (!Array.isArray(history)) throw invalidParameterError('options.history', 'an array of { type, text | image }', o.history);
  history.forEach((h: unknown, i) => {
    const name = `options.history[${i}]`;
    if (!isPlainObject(h) || !isOneOf(h.type, ['text', 'image'] as const)) {
      throw invalidParameterError(name, "{ type: 'text', text | tokens } or { type: 'image', image | latents }", h);
    }
    if (h.type === 'text') {
      if (isDefined(h.text) === isDefined(h.tokens)) throw invalidParameterError(name, 'exactly one of text and tokens', h);
      if (isDefined(h.text) && typeof h.text !== 'string') throw invalidParameterError(`${name}.text`, 'a string', h.text);
      if (isDefined(h.tokens)) {
        const ids = h.tokens;
        if (!Array.isArray(ids) || !ids.every((id) => Number.isInteger(id) && id >= 0 && id < ctx.tokenizer.vocabSize)) {
          throw invalidParameterError(`${name}.tokens`, `an array of token ids below ${ctx.tokenizer.vocabSize}`, ids);
        }
      }
    } else if (isDefined(h.image) === isDefined(h.latents)) {
      throw invalidParameterError(name, 'exactly one of image and latents', h);
    }
  });
  const maxImages = o.maxImages ?? 4;
  if (!Number.isInteger(maxImages) || maxImages < 0 || maxImages > 16) {
    throw invalidParameterError('options.maxImages', 'an integer from 0 to 16', o.maxImages);
  }
  const startWithImage = o.startWithImage ?? false;
  if (typeof startWithImage !== 'boolean') throw invalidParameterError('options.startWithImage', 'a boolean', o.startWithImage);
  if (startWithImage && maxImages === 0) {
    throw createError(
      'ERR_INVALID_ARGUMENT',
      'options.startWithImage asks for an image first but options.maxImages is 0: allow at least one image or do not force one',
    );
  }
  const maxTokens = o.maxTokens ?? 512;
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > 100_000) {
    throw invalidParameterError('options.maxTokens', 'an integer from 1 to 100000', o.maxTokens);
  }
  const temperature = o.temperature ?? 1;
  if (!isFiniteNumber(temperature) || temperature < 0) throw invalidParameterError('options.temperature', 'a finite number >= 0', o.temperature);
  const topK = o.topK ?? 0;
  if (!Number.isInteger(topK) || topK < 0) throw invalidParameterError('options.topK', 'a non-negative integer', o.topK);
  const topP = o.topP ?? 1;
  if (!isFiniteNumber(topP) || topP <= 0 || topP > 1) throw invalidParameterError('options.topP', 'a number in (0, 1]', o.topP);
  const repetitionPenalty = o.repetitionPenalty ?? 1;
  if (!isFiniteNumber(repetitionPenalty) || repetitionPenalty <= 0) {
    throw invalidParameterError('options.repetitionPenalty', 'a finite number > 0', o.repetitionPenalty);
  }
  const seed = o.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw invalidParameterError('options.seed', 'a non-negative safe integer', o.seed);
  const logitBias: [number, number][] = [];
  if (isDefined(o.logitBias)) {
    if (!isPlainObject(o.logitBias)) throw invalidParameterError('options.logitBias', 'an object { tokenId: bias }', o.logitBias);
    for (const [key, bias] of Object.entries(o.logitBias)) {
      const id = Number(key);
      if (!Number.isInteger(id) || id < 0 || id >= ctx.tokenizer.vocabSize) {
        throw invalidParameterError(`options.logitBias key ${key}`, `a token id below ${ctx.tokenizer.vocabSize}`, key);
      }
      if (typeof bias !== 'number' || Number.isNaN(bias) || bias === Infinity) {
        throw invalidParameterError(`options.logitBias[${key}]`, 'a finite number or -Infinity', bias);
      }
      logitBias.push([id, bias]);
    }
  }
  const { width, height, steps, guidanceScale, shift, solver, output, rounding } = resolveSamplingOptions(ctx.config, o);
  const referenceQuirks = o.referenceQuirks ?? false;
  if (typeof referenceQuirks !== 'boolean') throw invalidParameterError('options.referenceQuirks', 'a boolean', o.referenceQuirks);
  if (isDefined(o.onTextChunk) && typeof o.onTextChunk !== 'function') throw invalidParameterError('options.onTextChunk', 'a function', o.onTextChunk);
  if (isDefined(o.onStep) && typeof o.onStep !== 'function') throw invalidParameterError('options.onStep', 'a function', o.onStep);
  if (isDefined(o.signal) && !(o.signal instanceof AbortSignal)) throw invalidParameterError('options.signal', 'an AbortSignal', o.signal);
  const latentShape = [1, ctx.config.image_latent_dim, 1, height / ctx.config.vae_spatial_stride, width / ctx.config.vae_spatial_stride];
  const checkLatent = (l: unknown, name: string) => {
    if (!isPlainObject(l) || !(l.data instanceof Float32Array) || !Array.isArray(l.shape)) {
      throw invalidParameterError(name, 'an object { data: Float32Array, shape }', l);
    }
    if (l.shape.length !== 5 || l.shape.some((d, k) => d !== latentShape[k]) || l.data.length !== latentShape.reduce((a, b) => a * b, 1)) {
      throw createError(
        'ERR_SHAPE_MISMATCH',
        `Expected ${name} to be [${latentShape.join(', ')}] (the generation size) with as many floats but received ` +
          `[${(l.shape as number[]).join(', ')}] with ${l.data.length}`,
      );
    }
    const bad = firstNonFinite(l.data);
    if (bad >= 0) throw invalidParameterError(`${name}.data[${bad}]`, 'a finite number', l.data[bad]);
  };
  if (isDefined(o.latents)) {
    if (!Array.isArray(o.latents)) throw invalidParameterError('options.latents', 'an array of { data, shape }, one per image', o.latents);
    o.latents.forEach((l: unknown, i) => checkLatent(l, `options.latents[${i}]`));
  }
  history.forEach((h, i) => {
    if (h.type === 'image' && 'latents' in h) checkLatent(h.latents, `options.history[${i}].latents`);
  });
  return {
    prompt: o.prompt,
    history,
    maxImages,
    startWithImage,
    maxTokens,
    sampling: { temperature, topK, topP, repetitionPenalty, seed, logitBias },
    width,
    height,
    steps,
    guidanceScale,
    shift,
    solver,
    latents: o.latents,
    output,
    rounding,
    referenceQuirks,
    onTextChunk: o.onTextChunk,
    onStep: o.onStep,
    signal: o.signal,
  };
}

/** A chunk under construction: ids plus the image inserts, at absolute positions from `start`. */
class ChunkBuilder {
  ids: number[] = [];
  times: { position: number; t: number }[] = [];
  blocks: { offset: number; length: number }[] = [];
  latents: { data: Float32Array; shape: number[]; position: number }[] = [];
  constructor(readonly start: number) {}

  get end(): number {
    return this.start + this.ids.length;
  }

  text(ids: readonly number[]): void {
    this.ids.push(...ids);
  }

  /** TIME(t), the image's visual tokens and `<|vision_end|>` (the `<|vision_start|>` before it is the caller's). */
  image(latent: AddonFloatTensor, visualTokens: number, t: number, imgPad: number, eoi: number): void {
    const offset = this.end;
    for (let i = 0; i < visualTokens + 1; i++) this.ids.push(imgPad);
    this.ids.push(eoi);
    this.times.push({ position: offset, t });
    this.blocks.push({ offset, length: visualTokens + 1 });
    this.latents.push({ data: latent.data, shape: [...latent.shape], position: offset + 1 });
  }

  build(): AddonSequenceChunk {
    return { ids: Int32Array.from(this.ids), times: this.times, blocks: this.blocks, latents: this.latents };
  }
}

/**
 * Runs one interleaved answer, yielding text pieces and finished images. @internal
 */
export async function* runInterleavedGeneration(
  ctx: InterleavedContext,
  options: unknown,
): AsyncGenerator<InterleavedEvent, InterleavedGenerationResult> {
  const r = resolveOptions(ctx, options);
  const tok = ctx.tokenizer;
  const { bos, eos, boi, eoi, imgPad } = tok.special;
  const s = ctx.config.vae_spatial_stride;
  const latentShape = [1, ctx.config.image_latent_dim, 1, r.height / s, r.width / s];
  const visualTokens = (r.height / s / ctx.config.patch_size) * (r.width / s / ctx.config.patch_size);
  const imagePositions = visualTokens + 2; // TIME + visual tokens + <|vision_end|> (after a sampled <|vision_start|>)
  const contextLength = ctx.config.max_position_embeddings;
  const historyTime = r.referenceQuirks ? 0 : 1;
  const uncond = buildGenerationSequence(tok, [], { visualTokens, maxTextTokens: 0, video: false });

  // Prompt and history, encoded before any session exists (bad input fails without model work).
  const historyLatents: (AddonFloatTensor | null)[] = [];
  for (const [i, h] of r.history.entries()) {
    if (h.type === 'text') {
      historyLatents.push(null);
      continue;
    }
    if ('latents' in h) {
      historyLatents.push({ data: h.latents.data, shape: [...h.latents.shape] });
      continue;
    }
    const name = `options.history[${i}].image`;
    const rgb = await readImageInput(h.image, name);
    if (rgb.width !== r.width || rgb.height !== r.height) {
      throw createError(
        'ERR_INVALID_ARGUMENT',
        `Expected ${name} to be ${r.width}x${r.height} pixels (the generation size, options.width x options.height) but ` +
          `it is ${rgb.width}x${rgb.height}; resize or crop it first (resizeShorterSide and centerCrop do both)`,
      );
    }
    const pixels = imageToTensor(rgb);
    historyLatents.push(await ctx.run(() => callNative(() => ctx.native.encodeImages({ data: pixels, shape: [1, 3, 1, r.height, r.width] }))));
  }

  let textSession: AddonUnderstandingSession | null = null;
  let imageSession: AddonUnderstandingSession | null = null;
  let imagePending: ChunkBuilder | null = null; // referenceQuirks: what imageSession has not seen yet

  const parts: InterleavedPart[] = [];
  let textIds: number[] = [];
  let decoder = tok.createStreamDecoder({ skipSpecialTokens: true });
  let textSoFar = '';
  let completionTokens = 0;
  let images = 0;
  let promptTokens = 0;
  const signal = r.signal;
  const token: AddonCancelToken = new (addon().CancelToken)();
  const onAbort = () => {
    token.cancel();
    textSession?.cancel();
    if (imageSession !== textSession) imageSession?.cancel();
  };
  signal?.addEventListener('abort', onAbort);

  const emitText = (piece: string): InterleavedTextEvent | null => {
    if (piece.length === 0) return null;
    textSoFar += piece;
    r.onTextChunk?.(piece);
    return { type: 'text', text: piece };
  };
  const closeText = (): InterleavedTextEvent | null => {
    const rest = emitText(decoder.flush());
    if (textIds.length > 0 || textSoFar.length > 0) parts.push({ type: 'text', text: textSoFar, tokens: textIds });
    textIds = [];
    textSoFar = '';
    decoder = tok.createStreamDecoder({ skipSpecialTokens: true });
    return rest;
  };
  const result = (finishReason: InterleavedFinishReason): InterleavedGenerationResult => ({
    parts,
    finishReason,
    usage: { promptTokens, completionTokens, images },
  });
  const aborted = (err: unknown) => err instanceof ShowO2Error && err.code === 'ERR_CANCELLED' && signal?.aborted === true;
  const evaluate = (session: AddonUnderstandingSession, chunk: AddonSequenceChunk, sample: boolean) =>
    ctx.run(() =>
      callNative(() => session.evaluate(chunk, sample ? { sample: true, ...(images >= r.maxImages ? { ban: Int32Array.of(boi) } : {}) } : {})),
    );

  /** Generates image `images` in place after the `<|vision_start|>` at the end of the conversation. */
  const drawImage = async (): Promise<AddonFloatTensor> => {
    if (imagePending !== null && imagePending.ids.length > 0) {
      await evaluate(imageSession!, imagePending.build(), false);
      imagePending = new ChunkBuilder(imageSession!.length);
    }
    const index = images;
    const explicit = r.latents?.[index];
    let callbackError: unknown;
    const onStep = r.onStep
      ? (step: { step: number; totalSteps: number; modelEvaluations: number; t: number; elapsedMs: number }) => {
          if (callbackError !== undefined) return;
          try {
            r.onStep!({ ...step, imageIndex: index });
          } catch (err) {
            callbackError = err; // stop the generation and reject with the callback's own error
            token.cancel();
          }
        }
      : undefined;
    const block: number[] = [];
    for (let i = 0; i < visualTokens + 1; i++) block.push(imgPad);
    block.push(eoi);
    let latent: AddonFloatTensor;
    try {
      latent = await ctx.run(() =>
        callNative(() =>
          ctx.native.generate(
            {
              session: imageSession!,
              cond: [{ ids: Int32Array.from(block), blockOffset: 0 }],
              ...(r.guidanceScale > 0 ? { uncond: { ids: Int32Array.from(uncond.ids), blockOffset: uncond.blockOffset } } : {}),
              latentShape,
              seed: r.sampling.seed + index,
              steps: r.steps,
              shift: r.shift,
              guidanceScale: r.guidanceScale,
              solver: r.solver,
              ...(explicit ? { initialLatents: { data: explicit.data, shape: [...explicit.shape] } } : {}),
            },
            onStep,
            token,
          ),
        ),
      );
    } catch (err) {
      if (callbackError !== undefined) throw callbackError;
      throw err;
    }
    if (callbackError !== undefined) throw callbackError;
    return latent;
  };

  /** Appends one sampled token to the conversation and samples the next. */
  const step = async (id: number): Promise<number> => {
    const next = (await evaluate(textSession!, { ids: Int32Array.of(id) }, true)).token!;
    imagePending?.text([id]);
    return next;
  };

  try {
    if (signal?.aborted) return result('abort');
    textSession = ctx.native.createSession({ flowHeadContext: !r.referenceQuirks });
    // referenceQuirks: the text session sees earlier images at TIME(0); image generation needs them at TIME(1.0), so
    // a second session holds that view and catches up with the text (in one chunk) before each image.
    imageSession = r.referenceQuirks ? ctx.native.createSession({ flowHeadContext: true }) : textSession;
    textSession.setSampling(r.sampling);
    const prompt = new ChunkBuilder(0);
    const promptImage = r.referenceQuirks ? new ChunkBuilder(0) : null;
    prompt.text([bos, ...tok.encode(r.prompt)]);
    promptImage?.text([bos, ...tok.encode(r.prompt)]);
    for (const [i, h] of r.history.entries()) {
      if (h.type === 'text') {
        const ids = 'tokens' in h ? [...h.tokens] : tok.encode(h.text);
        prompt.text(ids);
        promptImage?.text(ids);
      } else {
        prompt.text([boi]);
        prompt.image(historyLatents[i]!, visualTokens, historyTime, imgPad, eoi);
        promptImage?.text([boi]);
        promptImage?.image(historyLatents[i]!, visualTokens, 1, imgPad, eoi);
      }
    }
    if (r.startWithImage) {
      prompt.text([boi]);
      promptImage?.text([boi]);
    }
    promptTokens = prompt.ids.length;
    if (promptTokens + (r.startWithImage ? imagePositions : 1) > contextLength) {
      throw createError(
        'ERR_INVALID_ARGUMENT',
        `The prompt and history take ${promptTokens} positions, leaving no room in the model's context of ${contextLength}`,
      );
    }
    imagePending = promptImage;

    let next: number;
    try {
      const first = await evaluate(textSession, prompt.build(), !r.startWithImage);
      next = r.startWithImage ? boi : first.token!;
    } catch (err) {
      if (aborted(err)) return result('abort');
      throw err;
    }
    let forced = r.startWithImage; // a <|vision_start|> already in the conversation, not sampled

    for (;;) {
      if (next === eos) {
        const rest = closeText();
        if (rest) yield rest;
        return result('eos');
      }
      if (!forced) completionTokens++;
      const atLimit = completionTokens >= r.maxTokens;
      if (next === boi) {
        // A <|vision_start|> as the last allowed token, or with no room left for the image: the answer ends here.
        if (atLimit || textSession.length + 1 + imagePositions + 1 > contextLength) {
          const rest = closeText();
          if (rest) yield rest;
          return result('length');
        }
        const rest = closeText();
        if (rest) yield rest;
        let latent: AddonFloatTensor;
        try {
          if (!forced) {
            await evaluate(textSession, { ids: Int32Array.of(boi) }, false);
            imagePending?.text([boi]);
          }
          latent = await drawImage();
        } catch (err) {
          if (aborted(err)) return result('abort');
          throw err;
        }
        forced = false;
        const index = images++;
        let image: RgbImage | undefined;
        if (r.output === 'image') {
          const pixels = await ctx.run(() => callNative(() => ctx.native.decodeLatents(latent)));
          image = pixelsToFrames(pixels.data, pixels.shape, r.rounding)[0]![0]!;
        }
        const part: InterleavedImagePart = {
          type: 'image',
          index,
          ...(image ? { image } : {}),
          latents: { data: latent.data, shape: Object.freeze([...latent.shape]) },
          seed: r.sampling.seed + index,
        };
        parts.push(part);
        yield part;
        // The new image joins the conversation (TIME, its visual tokens, <|vision_end|>), then the next token.
        const chunk = new ChunkBuilder(textSession.length);
        chunk.image(latent, visualTokens, historyTime, imgPad, eoi);
        imagePending?.image(latent, visualTokens, 1, imgPad, eoi);
        try {
          if (signal?.aborted) return result('abort');
          next = (await evaluate(textSession, chunk.build(), true)).token!;
        } catch (err) {
          if (aborted(err)) return result('abort');
          throw err;
        }
        continue;
      }
      textIds.push(next);
      const piece = emitText(decoder.push(next));
      if (piece) yield piece;
      if (atLimit || textSession.length + 1 > contextLength || signal?.aborted) {
        const rest = closeText();
        if (rest) yield rest;
        return result(signal?.aborted ? 'abort' : 'length');
      }
      try {
        next = await step(next);
      } catch (err) {
        if (aborted(err)) {
          const rest = closeText();
          if (rest) yield rest;
          return result('abort');
        }
        throw err;
      }
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    textSession?.dispose();
    if (imageSession !== textSession) imageSession?.dispose();
  }
}
