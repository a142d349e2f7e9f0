/**
 * Text generation: the options every answer and chat turn takes, their validation, and the token loop.
 *
 * The loop runs in JS one token at a time: each step is one asynchronous native call that appends the previous
 * token to the KV cache, runs the model, and samples the next token natively (the sampler never leaves C++). Driving
 * the loop from JS keeps every stop decision exact (stop tokens, stop strings, the token limit and an AbortSignal are
 * all checked before the next token is computed) and keeps the event loop free between tokens.
 *
 * @module
 */
import type { AddonSamplingParams, AddonSequenceChunk, AddonUnderstandingSession } from '../typings/addon.js';
import { callNative, createError, invalidParameterError, ShowO2Error } from './errors.js';
import type { ShowO2Tokenizer } from './tokenizer.js';
import { isDefined, isFiniteNumber, isInteger } from './validate.js';

/**
 * How an answer is sampled and when it stops. Every field is optional.
 *
 * @example
 * ```ts
 * const options: TextGenerationOptions = { maxTokens: 64, temperature: 0.7, topP: 0.9, seed: 1, stop: ['\n\n'] };
 * ```
 */
export interface TextGenerationOptions {
  /** The most tokens to generate, 1 to 1,000,000. Defaults to 300 (the reference demo's `max_new_tokens`). */
  maxTokens?: number;
  /**
   * Sampling temperature, >= 0. 0 picks the most likely token every time (greedy, as the reference demo's
   * `top_k=1`). Defaults to 0.
   */
  temperature?: number;
  /** Keep only the `topK` most likely tokens before sampling; 0 turns it off. Defaults to 0. */
  topK?: number;
  /** Nucleus sampling: keep the smallest set of tokens whose probability reaches `topP`, in (0, 1]. Defaults to 1. */
  topP?: number;
  /**
   * Penalise tokens already in the conversation (transformers' rule: positive logits divided by it, negative ones
   * multiplied), > 0; 1 turns it off. Defaults to 1.
   */
  repetitionPenalty?: number;
  /** Seed of the sampler's random generator, a non-negative safe integer. Defaults to 0. */
  seed?: number;
  /**
   * Strings that end the answer; the answer is cut before the first one. (`<|im_end|>` always ends it.)
   * Defaults to none.
   */
  stop?: readonly string[];
  /** Token ids that end the answer (not included in it), besides `<|im_end|>`. Defaults to none. */
  stopTokens?: readonly number[];
  /** Stops the generation within one token (or one layer, during the prompt); the answer so far is returned. */
  signal?: AbortSignal;
  /** Called with each new piece of text as soon as it is decoded (never a broken UTF-8 character). */
  onTextChunk?: (text: string) => void;
}

/** Why generation ended. */
export type FinishReason = 'eos' | 'stop' | 'length' | 'abort';

/**
 * A finished answer.
 *
 * @example
 * ```ts
 * const { text, finishReason, usage } = await model.answer({ image: 'cat.png', question: 'What is this?' });
 * ```
 */
export interface GenerationResult {
  /** The answer's text (without the stop string or `<|im_end|>`). */
  text: string;
  /** The generated token ids (without the final `<|im_end|>`). */
  tokens: number[];
  /**
   * `'eos'`: the model ended its turn; `'stop'`: a stop string or stop token; `'length'`: maxTokens (or the context
   * is full); `'abort'`: the signal.
   */
  finishReason: FinishReason;
  /** How many positions the answer used. */
  usage: {
    /** Positions the prompt added to the sequence (text, TIME and visual tokens). */
    promptTokens: number;
    /** Tokens generated. */
    completionTokens: number;
  };
}

/** Validated options with defaults applied. @internal */
export interface ResolvedGenerationOptions {
  maxTokens: number;
  sampling: Required<Omit<AddonSamplingParams, 'logitBias'>>;
  stop: string[];
  stopTokens: Set<number>;
  signal: AbortSignal | undefined;
  onTextChunk: ((text: string) => void) | undefined;
}

const GENERATION_KEYS = [
  'maxTokens',
  'temperature',
  'topK',
  'topP',
  'repetitionPenalty',
  'seed',
  'stop',
  'stopTokens',
  'signal',
  'onTextChunk',
] as const;


/** Checks the generation fields of `options` (other keys are the caller's) and applies defaults. @internal */
export function resolveGenerationOptions(options: Record<string, unknown>, prefix = 'options'): ResolvedGenerationOptions {
  const o = options as Partial<Record<(typeof GENERATION_KEYS)[number], unknown>>;
  const name = (key: string) => `${prefix}.${key}`;
  const maxTokens = o.maxTokens ?? 300;
  if (!isInteger(maxTokens) || maxTokens < 1 || maxTokens > 1_000_000) {
    throw invalidParameterError(name('maxTokens'), 'an integer from 1 to 1000000', o.maxTokens);
  }
  const temperature = o.temperature ?? 0;
  if (!isFiniteNumber(temperature) || temperature < 0) {
    throw invalidParameterError(name('temperature'), 'a finite number >= 0', o.temperature);
  }
  const topK = o.topK ?? 0;
  if (!isInteger(topK) || topK < 0) throw invalidParameterError(name('topK'), 'a non-negative integer', o.topK);
  const topP = o.topP ?? 1;
  if (!isFiniteNumber(topP) || topP <= 0 || topP > 1) throw invalidParameterError(name('topP'), 'a number in (0, 1]', o.topP);
  const repetitionPenalty = o.repetitionPenalty ?? 1;
  if (!isFiniteNumber(repetitionPenalty) || repetitionPenalty <= 0) {
    throw invalidParameterError(name('repetitionPenalty'), 'a finite number > 0', o.repetitionPenalty);
  }
  const seed = o.seed ?? 0;
  if (!Number.isSafeInteger(seed) || (seed as number) < 0) {
    throw invalidParameterError(name('seed'), 'a non-negative safe integer', o.seed);
  }
  let stop: string[] = [];
  if (isDefined(o.stop)) {
    if (!Array.isArray(o.stop) || !o.stop.every((s) => typeof s === 'string' && s.length > 0)) {
      throw invalidParameterError(name('stop'), 'an array of non-empty strings', o.stop);
    }
    stop = [...(o.stop as string[])];
  }
  const stopTokens = new Set<number>();
  if (isDefined(o.stopTokens)) {
    if (!Array.isArray(o.stopTokens) || !o.stopTokens.every((id) => isInteger(id) && id >= 0)) {
      throw invalidParameterError(name('stopTokens'), 'an array of token ids (non-negative integers)', o.stopTokens);
    }
    for (const id of o.stopTokens as number[]) stopTokens.add(id);
  }
  if (isDefined(o.signal) && !(o.signal instanceof AbortSignal)) {
    throw invalidParameterError(name('signal'), 'an AbortSignal', o.signal);
  }
  if (isDefined(o.onTextChunk) && typeof o.onTextChunk !== 'function') {
    throw invalidParameterError(name('onTextChunk'), 'a function', o.onTextChunk);
  }
  return {
    maxTokens,
    sampling: { temperature, topK, topP, repetitionPenalty, seed: seed as number },
    stop,
    stopTokens,
    signal: o.signal as AbortSignal | undefined,
    onTextChunk: o.onTextChunk as ((text: string) => void) | undefined,
  };
}

/** The generation keys, for callers that check their own option objects for unknown keys. @internal */
export const generationOptionKeys: readonly string[] = GENERATION_KEYS;

/**
 * Holds back decoded text that might be the start of a stop string, so a stop string split across tokens is never
 * emitted. `push` returns what is safe to emit; `stopIndex` reports where a stop string begins in the full text.
 */
class StopMatcher {
  #text = '';
  #emitted = 0;
  constructor(private readonly stops: readonly string[]) {}

  /** Adds text; returns [safe text to emit, whether a stop string was found]. */
  push(piece: string): [string, boolean] {
    this.#text += piece;
    let cut = -1;
    for (const s of this.stops) {
      const i = this.#text.indexOf(s, Math.max(0, this.#emitted - s.length + 1));
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.#text = this.#text.slice(0, cut);
      return [this.#take(this.#text.length), true];
    }
    // Keep back the longest suffix that is a proper prefix of some stop string.
    let hold = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, this.#text.length); k > hold; k--) {
        if (this.#text.endsWith(s.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    return [this.#take(this.#text.length - hold), false];
  }

  flush(): string {
    return this.#take(this.#text.length);
  }

  get text(): string {
    return this.#text;
  }

  #take(end: number): string {
    if (end <= this.#emitted) return '';
    const out = this.#text.slice(this.#emitted, end);
    this.#emitted = end;
    return out;
  }
}

/** What {@link runGeneration} needs from the session owner. @internal */
export interface GenerationTarget {
  session: AddonUnderstandingSession;
  tokenizer: ShowO2Tokenizer;
  /** The prompt chunk (already holding everything up to "assistant\n"). */
  prompt: AddonSequenceChunk;
  /** The model's context in positions; generation ends with `'length'` when the sequence fills it. */
  contextLength: number;
  /**
   * Set by the loop: generated tokens that are not in the KV cache yet (the last sampled token is only appended
   * when the next one is computed). A chat prepends them to its next turn.
   */
  uncached?: number[];
}

/**
 * Runs one answer: the prompt, then one token per step until a stop condition. Yields text pieces as they are
 * decoded and returns the result. On abort during the prompt the session is left as it was before the call.
 * @internal
 */
export async function* runGeneration(
  target: GenerationTarget,
  options: ResolvedGenerationOptions,
): AsyncGenerator<string, GenerationResult> {
  const { session, tokenizer, prompt } = target;
  const eos = tokenizer.special.eos;
  const startLength = session.length;
  const decoder = tokenizer.createStreamDecoder({ skipSpecialTokens: true });
  const stops = new StopMatcher(options.stop);
  const tokens: number[] = [];
  const signal = options.signal;
  const onAbort = () => session.cancel();
  signal?.addEventListener('abort', onAbort);
  const result = (finishReason: FinishReason): GenerationResult => ({
    text: stops.text,
    tokens,
    finishReason,
    usage: { promptTokens: prompt.ids.length, completionTokens: tokens.length },
  });

  const emit = (piece: string): string => {
    if (piece.length > 0) options.onTextChunk?.(piece);
    return piece;
  };

  target.uncached = [];
  try {
    if (signal?.aborted) return result('abort');
    session.setSampling(options.sampling);
    let next: number;
    try {
      next = (await callNative(() => session.evaluate(prompt, { sample: true }))).token!;
    } catch (err) {
      if (err instanceof ShowO2Error && err.code === 'ERR_CANCELLED' && signal?.aborted) {
        return result('abort');
      }
      throw err;
    }
    if (session.length !== startLength + prompt.ids.length) {
      throw createError('ERR_INTERNAL', 'the session length does not match the prompt after evaluation');
    }
    for (;;) {
      if (next === eos || options.stopTokens.has(next)) {
        const rest = emit(stops.push(decoder.flush())[0] + stops.flush());
        if (rest) yield rest;
        return result(next === eos ? 'eos' : 'stop');
      }
      tokens.push(next);
      target.uncached = [next];
      const [safe, stopped] = stops.push(decoder.push(next));
      if (safe) yield emit(safe);
      if (stopped) return result('stop');
      if (tokens.length >= options.maxTokens || session.length + 1 > target.contextLength) {
        const rest = emit(stops.push(decoder.flush())[0] + stops.flush());
        if (rest) yield rest;
        return result('length');
      }
      if (signal?.aborted) {
        const rest = emit(stops.push(decoder.flush())[0] + stops.flush());
        if (rest) yield rest;
        return result('abort');
      }
      try {
        const step = await callNative(() => session.evaluate({ ids: Int32Array.of(next) }, { sample: true }));
        next = step.token!;
        target.uncached = [];
      } catch (err) {
        if (err instanceof ShowO2Error && err.code === 'ERR_CANCELLED' && signal?.aborted) {
          const rest = emit(stops.push(decoder.flush())[0] + stops.flush());
          if (rest) yield rest;
          return result('abort');
        }
        throw err;
      }
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
