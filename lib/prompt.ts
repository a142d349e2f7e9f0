/**
 * Sequence assembly for understanding (image and video question answering) and chat turns (spec §2.3, §4, §5.3).
 *
 * A turn becomes one chunk of the model's sequence: token ids for every position (with `<|image_pad|>` placeholders
 * where the TIME token and the visual tokens go; the native side overwrites those embeddings, exactly as the
 * reference does), the TIME(1.0) insert, where the visual tokens start, and the bidirectional block of the omni
 * mask. Positions are absolute, so later turns continue the cached sequence.
 *
 * Two layouts (spec §2.3 lists their three differences):
 * - `'demo'` (the default): the released `inference_mmu.py` / `inference_mmu_vid.py`, an exact port of what the
 *   published numbers were measured with. The bidirectional block starts one position after the TIME token and is
 *   `tokensPerImage + 1` long (it covers the visual tokens and `<|vision_end|>`; for video only the first
 *   `h'·w' + 1` positions, a demo quirk reproduced for parity, §5.3); no `"\n"` after `<|vision_end|>`; no
 *   `<|im_end|>` after the question.
 * - `'training'`: the stage-2 training format: the block is `[TIME, visual...]`, the user text is
 *   `"\n" + question`, and `<|im_end|>` closes the question.
 *
 * @module
 * @internal
 */
import type { ShowO2Tokenizer } from './tokenizer.js';

/** Which understanding prompt layout to build. See the module comment. */
export type PromptLayout = 'demo' | 'training';

/** The visual part of a turn: how many visual tokens follow the TIME token. */
export interface VisualSlot {
  /** Visual tokens placed after the TIME token (an image: h'·w'; a video: frames · pooled h''·w''). */
  tokens: number;
  /**
   * Tokens of one full-resolution image (h'·w'): the demo's block length is this + 1 even for video (spec §5.3).
   */
  tokensPerImage: number;
}

/** One turn as the native session appends it. Positions are absolute sequence positions. */
export interface TurnChunk {
  ids: number[];
  /** The TIME(1.0) token's position, when the turn has a visual part. */
  timePosition?: number;
  /** First visual token's position, when the turn has a visual part. */
  visualPosition?: number;
  blocks: { offset: number; length: number }[];
}

export interface TurnOptions {
  /** Positions already in the session (0 for the first turn). */
  start: number;
  /** Whether an earlier assistant answer must be closed first (every turn after the first). */
  continuation: boolean;
  /** The system prompt of a first turn. */
  systemPrompt: string;
  question: string;
  visual?: VisualSlot;
  layout: PromptLayout;
}

/**
 * Builds the chunk of one user turn, ending with `"\n<|im_start|>assistant\n"` so the next token is the answer's
 * first.
 *
 * First turn (demo layout, spec §2.3):
 * `[<|im_start|>] tok("system\n" + system + "<|im_end|>") tok("\n<|im_start|>user\n") [<|vision_start|>] [TIME]
 * [visual × n] [<|vision_end|>] tok(question) tok("\n<|im_start|>assistant\n")`.
 * A later turn starts with `tok("<|im_end|>")` (closing the previous answer) instead of the system part.
 */
export function buildTurn(tokenizer: ShowO2Tokenizer, options: TurnOptions): TurnChunk {
  const { bos, boi, eoi, imgPad } = tokenizer.special;
  const ids: number[] = [];
  if (options.continuation) {
    ids.push(...tokenizer.encode('<|im_end|>'));
  } else {
    ids.push(bos);
    ids.push(...tokenizer.encode(`system\n${options.systemPrompt}<|im_end|>`));
  }
  ids.push(...tokenizer.encode('\n<|im_start|>user\n'));

  const chunk: TurnChunk = { ids, blocks: [] };
  const training = options.layout === 'training';
  if (options.visual) {
    const { tokens, tokensPerImage } = options.visual;
    ids.push(boi);
    const timePosition = options.start + ids.length;
    ids.push(imgPad); // TIME(1.0) goes here
    const visualPosition = options.start + ids.length;
    for (let i = 0; i < tokens; i++) ids.push(imgPad);
    ids.push(eoi);
    chunk.timePosition = timePosition;
    chunk.visualPosition = visualPosition;
    chunk.blocks.push(
      training
        ? { offset: timePosition, length: tokens + 1 } // [TIME, visual...]
        : { offset: timePosition + 1, length: tokensPerImage + 1 }, // demo: visual + <|vision_end|>, TIME causal
    );
  }
  ids.push(...tokenizer.encode(training ? `\n${options.question}` : options.question));
  if (training) ids.push(...tokenizer.encode('<|im_end|>'));
  ids.push(...tokenizer.encode('\n<|im_start|>assistant\n'));
  // The demo's video block keeps the per-image length whatever the number of visual tokens, so with few frames
  // (fewer pooled tokens than one image has) it runs past the end of the prompt. The reference builds the mask by
  // slicing, which stops at the prompt's end: clamp the block to the chunk the same way (generated tokens stay causal).
  const end = options.start + ids.length;
  for (const block of chunk.blocks) block.length = Math.min(block.length, end - block.offset);
  return chunk;
}

/**
 * Frame indices sampled uniformly over a video, as the reference's `load_video(force_sample=True)`:
 * `np.linspace(0, total - 1, count).astype(int)` (so a short video repeats frames).
 */
export function uniformFrameIndices(total: number, count: number): number[] {
  if (count === 1) return [0];
  // numpy computes i * step with step = (stop - start) / (num - 1), then sets the last point to stop exactly.
  const step = (total - 1) / (count - 1);
  const out: number[] = [];
  for (let i = 0; i < count - 1; i++) out.push(Math.trunc(i * step));
  out.push(total - 1);
  return out;
}

/** One branch of a generation (the reference's `prepare_gen_input`, spec §2.3, §8.5). */
export interface GenerationSequence {
  /** The full sequence: `[<|im_start|>] text [boi] [pad] * (visualTokens + 1) [eoi] [<|im_end|>] [PAD] * ...`. */
  ids: number[];
  /** Position of the TIME token (`1 + text length + 1`). */
  blockOffset: number;
  /** Text tokens kept (after truncation). */
  textTokens: number;
}

/**
 * The longest prompt (in tokens) of the released configs, from their `max_seq_len` (spec §3.2): 290 at 432² (1024 -
 * 730 - 4), 251 for the HQ model's 512² and 1024² (1280 - 1025 - 4, 4352 - 4097 - 4). Other sizes use 251.
 */
export function defaultMaxTextTokens(visualTokens: number): number {
  return visualTokens <= 729 ? 290 : 251;
}

/**
 * Builds one generation sequence. `textIds` longer than `maxTextTokens` are cut to it, as the reference does
 * (`tok(prompt)[:max_text_len]`); callers that prefer an error check the length first. The pads after
 * `<|im_end|>` fill the sequence to `maxTextTokens + visualTokens + 5` positions (the reference's `max_seq_len`).
 */
export function buildGenerationSequence(
  tokenizer: ShowO2Tokenizer,
  textIds: readonly number[],
  options: { visualTokens: number; maxTextTokens: number; video: boolean },
): GenerationSequence {
  const { bos, eos, boi, eoi, bov, eov, imgPad, vidPad, pad } = tokenizer.special;
  const text = textIds.slice(0, options.maxTextTokens);
  const ids: number[] = [bos, ...text, options.video ? bov : boi];
  const blockOffset = ids.length;
  const placeholder = options.video ? vidPad : imgPad;
  for (let i = 0; i < options.visualTokens + 1; i++) ids.push(placeholder);
  ids.push(options.video ? eov : eoi, eos);
  for (let i = text.length; i < options.maxTextTokens; i++) ids.push(pad);
  return { ids, blockOffset, textTokens: text.length };
}
