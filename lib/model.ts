/**
 * The Show-o2 model: loading a model directory, answering questions about images and videos, and multi-turn chat.
 *
 * @module
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import type { AddonSequenceChunk, AddonShowo2Model, AddonUnderstandingSession } from '../typings/addon.js';
import { callNative, checkOptionKeys, createError, disposedError, invalidParameterError, ShowO2Error } from './errors.js';
import {
  generationOptionKeys,
  resolveGenerationOptions,
  runGeneration,
  type GenerationResult,
  type GenerationTarget,
  type ResolvedGenerationOptions,
  type TextGenerationOptions,
} from './text-generation.js';
import { addon } from './native.js';
import { buildTurn, type PromptLayout } from './prompt.js';
import {
  runVisualGeneration,
  type GenerationContext,
  type ImageGenerationOptions,
  type ImageGenerationResult,
  type VideoGenerationOptions,
  type VideoGenerationResult,
} from './visual-generation.js';
import {
  runInterleavedGeneration,
  type InterleavedEvent,
  type InterleavedGenerationOptions,
  type InterleavedGenerationResult,
} from './interleaved-generation.js';
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
import { checkShowO2Config, findLocalVae, resolveModel, type DownloadProgress } from './hub.js';
import { DEFAULT_VOCAB_SIZE, ShowO2Tokenizer } from './tokenizer.js';
import { WanVae } from './vae.js';
import {
  checkVideoInput,
  understandingImagePixels,
  videoPixels,
  type ImageInput,
  type ResolvedVideoInput,
  type VideoInput,
} from './visual-input.js';
import { isDefined, isNonEmptyString, isOneOf, isPlainObject, isPositiveInteger, isString } from './validate.js';

/** The system prompt of the reference demos. */
export const DEFAULT_SYSTEM_PROMPT = 'You are a helpful assistant.';

/**
 * Where a Show-o2 model's files are. Only `modelPath` is required.
 *
 * @example
 * ```ts
 * const options: ShowO2LoadOptions = { vaePath: '/models/Wan2.1_VAE.pth', threads: 8 };
 * ```
 */
export interface ShowO2LoadOptions {
  /**
   * The Wan2.1 VAE checkpoint. Defaults to the first of `Wan2.1_VAE.pth` (as published), `Wan2.1_VAE.safetensors`
   * and `vae.safetensors` (the same tensor names as safetensors, as the bundled demo model ships its small VAE)
   * found in the model directory, then in its `vae/` folder.
   */
  vaePath?: string;
  /**
   * A `tokenizer.json` (or a directory holding one). Defaults to the model directory's `tokenizer.json` when there is
   * one, else the bundled Qwen2.5 tokenizer (the published Show-o2 repos load Qwen's).
   */
  tokenizerPath?: string;
  /** CPU threads for model work (the CPU device). Defaults to one per available core. */
  threads?: number;
  /**
   * Where the model runs: `'cpu'`, `'cuda'` or `'auto'` (see {@link Device}). `'cuda'` on a machine without a usable
   * GPU rejects with a {@link NoGpuError} (`ERR_NO_GPU`) naming the reason, before anything is downloaded or read.
   * Defaults to the `SHOWO2_DEVICE` environment variable, else `'cpu'`.
   */
  device?: Device;
  /** The dtype of the weight matrices on a CUDA device: `'bf16'` or `'fp16'`. Ignored on the CPU. Defaults to `'bf16'`. */
  weightDtype?: WeightDtype;
  /**
   * What the convolutions (the VAE's, the patch embeddings') multiply in on a CUDA device; see {@link ConvDtype}.
   * Ignored on the CPU. Defaults to `'fp32'` until the bf16 path has been measured on a GPU (bench/RESULTS.md).
   */
  convDtype?: ConvDtype;
  /**
   * On a CUDA device, keep the VAE's activations channels-last (memory `[N, T, H, W, C]`, PyTorch's
   * `channels_last_3d`), the layout its convolution kernels read fastest; the same function either way. Ignored on
   * the CPU. Defaults to `false` until measured.
   */
  channelsLast?: boolean;
  /**
   * What the VAE stores its activations in on a CUDA device; see {@link ActivationDtype}. Ignored on the CPU.
   * Defaults to `'fp32'` until measured on a GPU.
   */
  activationDtype?: ActivationDtype;
  /**
   * Hugging Face cache directory for models loaded by repo id (Python's layout, shared with `huggingface_hub`).
   * Defaults to `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
   */
  cacheDir?: string;
  /** Use only cached files (no network). Defaults to `HF_HUB_OFFLINE=1` in the environment, else false. */
  offline?: boolean;
  /** Hugging Face access token for gated or private repos. Defaults to `$HF_TOKEN`, else the saved login token. */
  token?: string;
  /** Hub endpoint. Defaults to `$HF_ENDPOINT`, else `https://huggingface.co`. */
  endpoint?: string;
  /** Revision (branch, tag or commit) of the model repo. Defaults to `'main'`. */
  revision?: string;
  /** Download progress, per file, while a repo id is resolved. */
  onProgress?: (progress: DownloadProgress) => void;
  /** Aborts downloading (partial files are kept and resumed next time); rejects with `ERR_CANCELLED`. */
  signal?: AbortSignal;
}

/** The resolved model configuration: config.json fields plus derived sizes. */
export interface ShowO2Config {
  /** `_class_name` of config.json (`'Showo2Qwen2_5'`). */
  readonly _class_name: string;
  /** The base LLM (`'Qwen/Qwen2.5-1.5B-Instruct'`); it names the LLM preset and the tokenizer's repo. */
  readonly llm_model_path: string;
  /** LLM width (1536 for the 1.5B, 3584 for the 7B). */
  readonly hidden_size: number;
  /** Vocabulary rows (151669). */
  readonly llm_vocab_size: number;
  /** VAE latent channels (16). */
  readonly image_latent_dim: number;
  /** Latent pixels per token side (2). */
  readonly patch_size: number;
  /** The position table's token grid height (27). */
  readonly image_latent_height: number;
  /** The position table's token grid width (27). */
  readonly image_latent_width: number;
  /** Semantic-layer width (1152). */
  readonly clip_latent_dim: number;
  /** Flow-head blocks (10). */
  readonly num_diffusion_layers: number;
  /** The LLM's context in positions. */
  readonly max_position_embeddings: number;
  /** LLM layers. */
  readonly num_hidden_layers: number;
  /** Whether lm_head shares the embedding table. */
  readonly tie_word_embeddings: boolean;
  /** VAE compression in space (8). */
  readonly vae_spatial_stride: number;
  /** VAE compression in time (4). */
  readonly vae_temporal_stride: number;
  /** The square image side the model was trained at (432): token grid x patch x VAE stride. */
  readonly image_resolution: number;
}

/** Parameters per component of a loaded model, counted from its checkpoints' tensor shapes. */
export interface ShowO2ParameterCounts {
  /** The Qwen2.5 language model (`showo.*`): embedding, layers, final norm, and lm_head when it is not tied. */
  readonly llm: number;
  /** The understanding path: the semantic (SigLIP) layers, their position table and patch embedding. */
  readonly semantic: number;
  /** The flow head's blocks (`diffusion_head_a.*`, `diffusion_head_b.*`). */
  readonly flowHead: number;
  /** The glue: generation patch embedding, fusion, time embedding and the projections between LLM and flow head. */
  readonly projections: number;
  /** Any other tensor of the checkpoint (0 for the published ones). */
  readonly other: number;
  /** The VAE (its own file). */
  readonly vae: number;
  /** All of the above. */
  readonly total: number;
}

/**
 * What a loaded model is and where it came from: for logs, `showo2 info`, and tools built on the SDK.
 *
 * @example
 * ```ts
 * const { parameters, files, device } = model.info;
 * console.log(`${(parameters.total / 1e9).toFixed(2)} B parameters on ${device}, from ${files.weights}`);
 * ```
 */
export interface ShowO2ModelInfo {
  /** What was passed to {@link ShowO2Model.load}: a directory or a Hugging Face repo id. */
  readonly source: string;
  /** The files that were loaded (absolute paths). */
  readonly files: {
    /** The model directory (for a repo id: its snapshot in the Hugging Face cache). */
    readonly modelDir: string;
    /** config.json. */
    readonly config: string;
    /** The checkpoint (a `*.index.json` for sharded ones). */
    readonly weights: string;
    /** The VAE checkpoint. */
    readonly vae: string;
    /** The tokenizer.json, or `null` for the Qwen2.5 tokenizer bundled with showo2. */
    readonly tokenizer: string | null;
  };
  /** Where the model runs. */
  readonly device: 'cpu' | 'cuda';
  /**
   * The dtype of the weight matrices as they are used: `'bf16'`/`'fp16'` on a CUDA device (the `weightDtype`
   * option); `'stored'` on the CPU, which computes in float32 from the checkpoint's own dtype.
   */
  readonly weightDtype: WeightDtype | 'stored';
  /** Parameters per component. */
  readonly parameters: ShowO2ParameterCounts;
  /** The square image side the model was trained at, in pixels (432 for the published models). */
  readonly imageResolution: number;
  /** Visual tokens per image at `imageResolution` (729 for the published models). */
  readonly tokensPerImage: number;
  /** The LLM's context, in tokens (prompt, visual tokens and answer together). */
  readonly contextLength: number;
  /** The tokenizer's vocabulary size. */
  readonly vocabSize: number;
}

/**
 * What to answer: a question, optionally about an image or a video, plus the generation options.
 *
 * @example
 * ```ts
 * const options: AnswerOptions = { image: 'cat.png', question: 'What color is the cat?', maxTokens: 50 };
 * ```
 */
export interface AnswerOptions extends TextGenerationOptions {
  /** The question (the user's text). */
  question: string;
  /** An image the question is about. */
  image?: ImageInput;
  /** A video the question is about (not together with `image`). */
  video?: VideoInput;
  /** The system prompt. Defaults to `'You are a helpful assistant.'` (the demos'). */
  systemPrompt?: string;
  /** The prompt layout: `'demo'` (the released demo scripts) or `'training'`. Defaults to `'demo'`. */
  layout?: PromptLayout;
}

/**
 * One turn of a {@link ChatSession}: like {@link AnswerOptions} without the system prompt and layout, which the
 * chat fixes when it is created.
 */
export type ChatTurnOptions = Omit<AnswerOptions, 'systemPrompt' | 'layout'>;

/**
 * Options of {@link ShowO2Model.createChat}.
 *
 * @example
 * ```ts
 * const chat = model.createChat({ systemPrompt: 'Answer in one word.' });
 * ```
 */
export interface ChatOptions {
  /** The system prompt. Defaults to `'You are a helpful assistant.'`. */
  systemPrompt?: string;
  /** The prompt layout. Defaults to `'demo'`. */
  layout?: PromptLayout;
}

const ANSWER_KEYS = ['question', 'image', 'video', 'systemPrompt', 'layout', ...generationOptionKeys];
const CHAT_TURN_KEYS = ['question', 'image', 'video', ...generationOptionKeys];

/** `org/name` as the Hub spells repo ids. */
const REPO_ID = /^[\w.-]+\/[\w.-]+$/;

async function pathExists(file: string): Promise<boolean> {
  try {
    await fs.stat(file);
    return true;
  } catch {
    return false;
  }
}

async function fileExists(file: string): Promise<boolean> {
  try {
    return (await fs.stat(file)).isFile();
  } catch {
    return false;
  }
}

/** Finds the checkpoint of a model directory, in order of preference. */
async function findWeights(dir: string): Promise<string> {
  const candidates = ['model.safetensors.index.json', 'model.safetensors', 'pytorch_model.bin.index.json', 'pytorch_model.bin'];
  for (const name of candidates) {
    const file = path.join(dir, name);
    if (await fileExists(file)) return file;
  }
  throw createError(
    'ERR_MODEL_NOT_FOUND',
    `No checkpoint in the model directory ${dir}: expected one of ${candidates.join(', ')}`,
  );
}

async function findVae(dir: string, given: string | undefined): Promise<string> {
  if (isDefined(given)) {
    if (!(await fileExists(given))) throw createError('ERR_FILE_NOT_FOUND', `The VAE checkpoint ${given} (options.vaePath) does not exist`);
    return given;
  }
  return findLocalVae(dir);
}

/** The tokenizer.json a tokenizerPath names (the file itself, or the one in the directory), absolute. */
async function tokenizerJsonPath(target: string): Promise<string> {
  const stat = await fs.stat(target).catch(() => null);
  return path.resolve(stat?.isDirectory() ? path.join(target, 'tokenizer.json') : target);
}

/** Serialises native calls of one model: a step waits for the previous one (tokens of two chats interleave fairly). */
class CallQueue {
  #tail: Promise<unknown> = Promise.resolve();
  run<T>(call: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(call, call);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

/**
 * A loaded Show-o2 model. Create one with {@link ShowO2Model.load}; release it with {@link ShowO2Model.dispose}
 * (or `await using`).
 *
 * All model work runs off the event loop; calls from several chats run one step at a time, interleaved.
 *
 * @example
 * ```ts
 * import { ShowO2Model } from 'showo2';
 *
 * await using model = await ShowO2Model.load('/models/show-o2-1.5B', { vaePath: '/models/Wan2.1_VAE.pth' });
 * for await (const text of model.answerStream({ image: 'cat.png', question: 'What is in this image?' })) {
 *   process.stdout.write(text);
 * }
 * ```
 */
export class ShowO2Model implements AsyncDisposable {
  #native: AddonShowo2Model | null;
  readonly #config: ShowO2Config;
  readonly #device: 'cpu' | 'cuda';
  readonly #tokenizer: ShowO2Tokenizer;
  readonly #queue = new CallQueue();
  readonly #chats = new Set<ChatSession>();
  readonly #info: ShowO2ModelInfo;
  #vae: WanVae | null = null;

  private constructor(native: AddonShowo2Model, tokenizer: ShowO2Tokenizer, info: Omit<ShowO2ModelInfo, 'parameters'>) {
    this.#native = native;
    this.#config = Object.freeze({ ...native.config });
    this.#device = native.device;
    this.#tokenizer = tokenizer;
    this.#info = Object.freeze({ ...info, files: Object.freeze({ ...info.files }), parameters: Object.freeze({ ...native.parameterCounts }) });
  }

  /**
   * Loads a model directory laid out like the published repos: `config.json` plus the weights
   * (`model.safetensors`, `pytorch_model.bin`, or a sharded `*.index.json` of either), with the VAE and tokenizer
   * found as {@link ShowO2LoadOptions} describes. Every tensor is checked against the config before anything loads;
   * the weights are memory-mapped.
   *
   * Rejects with a {@link ShowO2Error}: a {@link ModelNotFoundError} (`ERR_MODEL_NOT_FOUND`) for a missing directory,
   * config.json, checkpoint or VAE, or a repo, revision or file the Hub does not have; a {@link DownloadError} or
   * {@link CancelledError} while resolving a repo id; a {@link NoGpuError} (`ERR_NO_GPU`) for `device: 'cuda'` without a
   * usable GPU, before anything is downloaded or read; an {@link UnsupportedModelError} (`ERR_UNSUPPORTED_MODEL`) for a
   * config.json of another architecture; an {@link InvalidInputError} (`ERR_INVALID_ARGUMENT`) for a bad option, a bad
   * config.json field (named) or a checkpoint that does not match it (the message lists every missing, unexpected and
   * misshapen tensor); the `WeightFile.open` errors for unreadable files.
   *
   * @param source - the model directory, or a Hugging Face repo id (`'showlab/show-o2-1.5B'`): the model, the Qwen2.5
   *   tokenizer of its base LLM and `Wan2.1_VAE.pth` are then downloaded into (or found in) the Hugging Face cache.
   * @param options - where the other files are; see {@link ShowO2LoadOptions}.
   *
   * @example
   * ```ts
   * const model = await ShowO2Model.load('./show-o2-1.5B', { vaePath: './Wan2.1_VAE.pth' });
   * ```
   */
  static async load(source: string, options: ShowO2LoadOptions = {}): Promise<ShowO2Model> {
    let modelPath = source;
    if (!isNonEmptyString(modelPath)) throw invalidParameterError('source', 'a model directory or a Hugging Face repo id', modelPath);
    if (!isPlainObject(options)) throw invalidParameterError('options', 'an object', options);
    checkOptionKeys(
      options,
      [
        'vaePath',
        'tokenizerPath',
        'threads',
        'device',
        'weightDtype',
        'convDtype',
        'channelsLast',
        'activationDtype',
        'cacheDir',
        'offline',
        'token',
        'endpoint',
        'revision',
        'onProgress',
        'signal',
      ],
      'options',
    );
    if (isDefined(options.device) && !isOneOf(options.device, DEVICES)) {
      throw invalidParameterError('options.device', "one of 'cpu', 'cuda', 'auto'", options.device);
    }
    if (isDefined(options.weightDtype) && !isOneOf(options.weightDtype, WEIGHT_DTYPES)) {
      throw invalidParameterError('options.weightDtype', "one of 'bf16', 'fp16'", options.weightDtype);
    }
    checkKernelOptions(options, 'options');
    if (isDefined(options.vaePath) && !isNonEmptyString(options.vaePath)) {
      throw invalidParameterError('options.vaePath', 'a file path', options.vaePath);
    }
    if (isDefined(options.tokenizerPath) && !isNonEmptyString(options.tokenizerPath)) {
      throw invalidParameterError('options.tokenizerPath', 'a file or directory path', options.tokenizerPath);
    }
    if (isDefined(options.threads) && !isPositiveInteger(options.threads)) {
      throw invalidParameterError('options.threads', 'a positive integer', options.threads);
    }
    // Before any download: a 6 GB model is no use on a GPU that is not there.
    const device = await resolveDevice(options.device as Device | undefined);
    // A Hub repo id ('showlab/show-o2-1.5B') when no such local path exists: download (or find in the cache) the
    // model, its base LLM's tokenizer and the Wan VAE (lib/hub.ts).
    let vaeOption = options.vaePath;
    let tokenizerPath = options.tokenizerPath;
    if (!(await pathExists(modelPath)) && REPO_ID.test(modelPath)) {
      const {
        vaePath: _v,
        tokenizerPath: _t,
        threads: _n,
        device: _d,
        weightDtype: _w,
        convDtype: _c,
        channelsLast: _l,
        activationDtype: _a,
        ...hub
      } = options;
      const resolved = await resolveModel(modelPath, {
        ...hub,
        ...(isDefined(vaeOption) ? { vaePath: vaeOption } : {}),
        ...(isDefined(tokenizerPath) ? { tokenizerPath } : {}),
      });
      modelPath = resolved.modelDir;
      vaeOption = resolved.vaePath;
      tokenizerPath = resolved.tokenizerPath ?? tokenizerPath;
    }
    let stat;
    try {
      stat = await fs.stat(modelPath);
    } catch {
      throw createError('ERR_MODEL_NOT_FOUND', `The model directory ${modelPath} does not exist`);
    }
    if (!stat.isDirectory()) {
      throw createError('ERR_INVALID_ARGUMENT', `Expected a model directory for modelPath but ${modelPath} is a file`);
    }
    const configPath = path.join(modelPath, 'config.json');
    let configJson: string;
    try {
      configJson = await fs.readFile(configPath, 'utf8');
    } catch {
      throw createError('ERR_MODEL_NOT_FOUND', `${modelPath} is not a Show-o2 model directory: it has no config.json`);
    }
    checkShowO2Config(configJson, configPath);
    const weightsPath = await findWeights(modelPath);
    const vaePath = await findVae(modelPath, vaeOption);
    if (!isDefined(tokenizerPath) && (await fileExists(path.join(modelPath, 'tokenizer.json')))) tokenizerPath = modelPath;

    const native = await callNative(() =>
      addon().Showo2Model.load({
        configJson,
        configSource: configPath,
        weightsPath,
        vaePath,
        ...(isDefined(options.threads) ? { threads: options.threads as number } : {}),
        device,
        weightDtype: (options.weightDtype as WeightDtype | undefined) ?? 'bf16',
        ...kernelOptions(options),
      }),
    );
    try {
      if (!isDefined(tokenizerPath) && native.config.llm_vocab_size < DEFAULT_VOCAB_SIZE) {
        // The bundled tokenizer is Qwen2.5's: a model with a smaller vocabulary (a model of its own, such as the demo
        // model) needs its own tokenizer.json, and the bundled one would only fail on its first id past the table.
        throw createError(
          'ERR_INVALID_ARGUMENT',
          `The model in ${modelPath} has a vocabulary of ${native.config.llm_vocab_size} tokens (llm_vocab_size in ` +
            `config.json) and no tokenizer.json; the bundled Qwen2.5 tokenizer needs ${DEFAULT_VOCAB_SIZE}. Put the ` +
            `model's tokenizer.json in its directory or pass options.tokenizerPath.`,
        );
      }
      const tokenizer = await ShowO2Tokenizer.load({
        ...(isDefined(tokenizerPath) ? { path: tokenizerPath } : {}),
        vocabSize: native.config.llm_vocab_size,
      });
      const tokenizerFile = isDefined(tokenizerPath) ? await tokenizerJsonPath(tokenizerPath) : null;
      const c = native.config;
      const grid = c.image_resolution / (c.patch_size * c.vae_spatial_stride);
      return new ShowO2Model(native, tokenizer, {
        source,
        files: {
          modelDir: path.resolve(modelPath),
          config: path.resolve(configPath),
          weights: path.resolve(weightsPath),
          vae: path.resolve(vaePath),
          tokenizer: tokenizerFile,
        },
        device: native.device,
        weightDtype: native.device === 'cuda' ? ((options.weightDtype as WeightDtype | undefined) ?? 'bf16') : 'stored',
        imageResolution: c.image_resolution,
        tokensPerImage: grid * grid,
        contextLength: c.max_position_embeddings,
        vocabSize: tokenizer.vocabSize,
      });
    } catch (err) {
      native.dispose();
      throw err;
    }
  }

  /**
   * Where the model runs: `'cpu'` or `'cuda'` (what `'auto'` resolved to).
   * @example
   * ```ts
   * const model = await ShowO2Model.load('./show-o2-1.5B', { device: 'auto' });
   * console.log(model.device); // 'cuda' on a GPU machine
   * ```
   */
  get device(): 'cpu' | 'cuda' {
    return this.#device;
  }

  /** The resolved configuration (config.json fields plus derived sizes such as `image_resolution`). */
  get config(): ShowO2Config {
    return this.#config;
  }

  /** The text tokenizer (Qwen2.5 BPE with Show-o2's added tokens). */
  get tokenizer(): ShowO2Tokenizer {
    return this.#tokenizer;
  }

  /** What the model is and where it came from: files, device, parameter counts, sizes. Readable after dispose(). */
  get info(): ShowO2ModelInfo {
    return this.#info;
  }

  /**
   * The model's own VAE, for tools that work with latents: `encode` images or videos to the latents the model
   * generates, `decode` latents to pixels (see {@link WanVae}). It shares the model's weights (no second copy) and its
   * call queue (its calls run in order with the model's). Disposing the model disposes it; disposing it releases only
   * this handle (the next read of `model.vae` gives a new one).
   *
   * @throws ShowO2Error `ERR_DISPOSED` after the model's dispose().
   *
   * @example
   * ```ts
   * const { latents } = await model.generateImages({ prompt: 'a red circle' });
   * const { frames } = await model.vae.decode(latents);
   * ```
   */
  get vae(): WanVae {
    const native = this.#nativeOrThrow('get the VAE');
    if (this.#vae === null || this.#vae.disposed) {
      this.#vae = WanVae.fromModel(native.vae(), (call) => this.#queue.run(call));
    }
    return this.#vae;
  }

  /** Whether {@link ShowO2Model.dispose} has been called. */
  get disposed(): boolean {
    return this.#native === null;
  }

  /**
   * Answers a question, optionally about an image or a video, and resolves with the whole answer. Text pieces also
   * stream to `onTextChunk` as they are decoded.
   *
   * Rejects with a {@link ShowO2Error}: `ERR_INVALID_ARGUMENT` for bad options or a prompt longer than the model's
   * context; `ERR_FILE_NOT_FOUND` / `ERR_INVALID_IMAGE` for an unreadable image; `ERR_DISPOSED` after dispose().
   * An aborted signal resolves with the answer so far and `finishReason: 'abort'`.
   *
   * @example
   * ```ts
   * const { text } = await model.answer({ image: 'cat.png', question: 'What is the cat doing?' });
   * ```
   */
  async answer(options: AnswerOptions): Promise<GenerationResult> {
    const stream = this.answerStream(options);
    for (;;) {
      const step = await stream.next();
      if (step.done) return step.value;
    }
  }

  /**
   * Answers a question as a stream of text pieces; the generator's return value is the {@link GenerationResult}.
   * Stopping the iteration early (`break`) stops the generation.
   *
   * @example
   * ```ts
   * for await (const piece of model.answerStream({ image: 'cat.png', question: 'Describe the image.' })) {
   *   process.stdout.write(piece);
   * }
   * ```
   */
  async *answerStream(options: AnswerOptions): AsyncGenerator<string, GenerationResult> {
    if (!isPlainObject(options)) throw invalidParameterError('options', 'an object', options);
    checkOptionKeys(options, ANSWER_KEYS, 'options');
    const layout = checkLayout(options.layout, 'options.layout');
    const systemPrompt = checkSystemPrompt(options.systemPrompt, 'options.systemPrompt');
    const chat = this.createChat({ systemPrompt, layout });
    try {
      const { systemPrompt: _s, layout: _l, ...turn } = options;
      return yield* chat.askStream(turn);
    } finally {
      chat.dispose();
    }
  }

  /**
   * Starts a multi-turn conversation that keeps its KV cache between turns, so each turn only computes its own
   * tokens.
   *
   * @example
   * ```ts
   * const chat = model.createChat();
   * await chat.ask({ image: 'cat.png', question: 'What animal is this?' });
   * const { text } = await chat.ask({ question: 'What color is it?' });
   * chat.dispose();
   * ```
   */
  createChat(options: ChatOptions = {}): ChatSession {
    const native = this.#nativeOrThrow('create a chat');
    if (!isPlainObject(options)) throw invalidParameterError('options', 'an object', options);
    checkOptionKeys(options, ['systemPrompt', 'layout'], 'options');
    const layout = checkLayout(options.layout, 'options.layout');
    const systemPrompt = checkSystemPrompt(options.systemPrompt, 'options.systemPrompt');
    const chat = new ChatSession(
      {
        session: native.createSession(),
        tokenizer: this.#tokenizer,
        config: this.#config,
        queue: this.#queue,
        onDispose: (c) => this.#chats.delete(c),
      },
      systemPrompt,
      layout,
    );
    this.#chats.add(chat);
    return chat;
  }

  /**
   * Generates images from text with the flow-matching ODE (spec §7, §8.1): one image per prompt, the prompts batched
   * together with their classifier-free-guidance branches. The prompt prefix is computed once and reused at every
   * step (exact, by the structure of the omni mask).
   *
   * Rejects with a {@link ShowO2Error}: `ERR_INVALID_ARGUMENT` for bad options (a size that is not a multiple of 16,
   * fewer than 2 steps, a negative guidance scale, a prompt longer than `maxTextTokens`, a size whose visual tokens
   * and `maxTextTokens` do not fit in the model's context, NaN or Infinity in `latents`), `ERR_SHAPE_MISMATCH` for
   * `latents` of the wrong shape, `ERR_CANCELLED` when `signal` aborts it, `ERR_DISPOSED` after dispose().
   *
   * @example
   * ```ts
   * import { writeFileSync } from 'node:fs';
   * import { encodePng } from 'showo2';
   *
   * const { images, seed } = await model.generateImages({
   *   prompt: 'a watercolor painting of a lighthouse',
   *   steps: 50,
   *   guidanceScale: 7.5,
   *   onStep: (p) => console.log(`${p.step}/${p.totalSteps}`),
   * });
   * writeFileSync(`lighthouse-${seed}.png`, encodePng(images[0]!));
   * ```
   */
  async generateImages(options: ImageGenerationOptions): Promise<ImageGenerationResult> {
    const { frames, ...rest } = await runVisualGeneration(this.#generationContext('generate images'), options, false);
    return { images: frames.map((f) => f[0]!), ...rest };
  }

  /**
   * Generates videos from text, or from text and a first frame (image-to-video): `frames` = 1 + 4k frames (17 by
   * default, at the model's resolution), one video per prompt. With `image`, latent frame 0 is the encoded image and
   * stays fixed (spec §8.5).
   *
   * Rejects like {@link ShowO2Model.generateImages}, and with `ERR_INVALID_ARGUMENT` for a frame count not of the
   * form 1 + 4k. (The released Show-o2 checkpoints were not trained for video; use a video checkpoint.)
   *
   * @example
   * ```ts
   * import { writeFileSync } from 'node:fs';
   * import { encodeAnimatedPng } from 'showo2';
   *
   * const { videos } = await model.generateVideo({ prompt: 'waves rolling onto a beach', frames: 17 });
   * writeFileSync('waves.png', await encodeAnimatedPng(videos[0]!, { fps: 8 }));
   * ```
   */
  async generateVideo(options: VideoGenerationOptions): Promise<VideoGenerationResult> {
    const { frames, ...rest } = await runVisualGeneration(this.#generationContext('generate a video'), options, true);
    return { videos: frames, ...rest };
  }

  /**
   * Writes an answer that interleaves text and images (mixed-modality generation, spec §8.4): the model writes text,
   * draws an image in place when it emits `<|vision_start|>` (with the conversation so far, earlier images included,
   * as context), and goes on writing with the new image in context. Resolves with the ordered parts.
   *
   * The whole conversation stays KV-cached (LLM and flow head), so neither a new token nor a new image recomputes the
   * history. Needs a checkpoint fine-tuned for it (the released ones were not; the bundled demo model was not either).
   * Differences from the reference script are listed in lib/interleaved-generation.ts (`referenceQuirks: true`
   * reproduces it).
   *
   * Rejects with a {@link ShowO2Error}: `ERR_INVALID_ARGUMENT` for bad options (among them `startWithImage` with
   * `maxImages: 0`, or a history image that is not `width` x `height`), `ERR_SHAPE_MISMATCH` for `latents` of the
   * wrong shape, `ERR_FILE_NOT_FOUND` / `ERR_INVALID_IMAGE` for an unreadable history image, `ERR_DISPOSED` after
   * dispose(). An aborted signal resolves with the parts so far and `finishReason: 'abort'`.
   *
   * @example
   * ```ts
   * import { writeFileSync } from 'node:fs';
   * import { encodePng } from 'showo2';
   *
   * const { parts } = await model.generateInterleaved({ prompt: 'A short story about a fox, with pictures.', maxImages: 2 });
   * for (const part of parts) {
   *   if (part.type === 'text') console.log(part.text);
   *   else writeFileSync(`fox-${part.index}.png`, encodePng(part.image!));
   * }
   * ```
   */
  async generateInterleaved(options: InterleavedGenerationOptions): Promise<InterleavedGenerationResult> {
    const stream = this.generateInterleavedStream(options);
    for (;;) {
      const step = await stream.next();
      if (step.done) return step.value;
    }
  }

  /**
   * {@link ShowO2Model.generateInterleaved} as a stream: text pieces as they are decoded and each image when it is
   * done; the generator's return value is the {@link InterleavedGenerationResult}. Stopping the iteration early
   * (`break`) stops the generation.
   *
   * @example
   * ```ts
   * for await (const event of model.generateInterleavedStream({ prompt: 'A recipe with pictures.' })) {
   *   if (event.type === 'text') process.stdout.write(event.text);
   *   else console.log(`\n[image ${event.index}]`);
   * }
   * ```
   */
  async *generateInterleavedStream(options: InterleavedGenerationOptions): AsyncGenerator<InterleavedEvent, InterleavedGenerationResult> {
    const native = this.#nativeOrThrow('generate an interleaved answer');
    return yield* runInterleavedGeneration(
      {
        native,
        tokenizer: this.#tokenizer,
        config: this.#config,
        run: (call) => this.#queue.run(call),
      },
      options,
    );
  }

  #generationContext(operation: string): GenerationContext {
    const native = this.#nativeOrThrow(operation);
    return {
      native,
      tokenizer: this.#tokenizer,
      config: this.#config,
      run: (call) => this.#queue.run(call),
    };
  }

  /**
   * Releases the model and every chat created from it. Idempotent; later calls throw `ERR_DISPOSED`. A call in flight
   * finishes first (or stops at its next token).
   *
   * @example
   * ```ts
   * model.dispose();
   * ```
   */
  dispose(): void {
    for (const chat of [...this.#chats]) chat.dispose();
    this.#vae?.dispose();
    this.#vae = null;
    this.#native?.dispose();
    this.#native = null;
  }

  /** `await using model = await ShowO2Model.load(...)` disposes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  #nativeOrThrow(operation: string): AddonShowo2Model {
    if (!this.#native) throw disposedError('model', operation);
    return this.#native;
  }
}

function checkLayout(value: unknown, name: string): PromptLayout {
  if (!isDefined(value)) return 'demo';
  if (!isOneOf(value, ['demo', 'training'] as const)) throw invalidParameterError(name, "'demo' or 'training'", value);
  return value;
}

function checkSystemPrompt(value: unknown, name: string): string {
  if (!isDefined(value)) return DEFAULT_SYSTEM_PROMPT;
  if (!isString(value)) throw invalidParameterError(name, 'a string', value);
  return value;
}

/** What a chat needs from its model. @internal */
interface ChatContext {
  session: AddonUnderstandingSession;
  tokenizer: ShowO2Tokenizer;
  config: ShowO2Config;
  queue: CallQueue;
  onDispose: (chat: ChatSession) => void;
}

/**
 * A multi-turn conversation with its own KV cache. Create one with {@link ShowO2Model.createChat}.
 * Turns run one at a time (a second `ask` while one is running waits for it).
 *
 * @example
 * ```ts
 * const chat = model.createChat();
 * const first = await chat.ask({ image: 'cat.png', question: 'What animal is this?' });
 * const second = await chat.ask({ question: 'And what is it sitting on?' });
 * ```
 */
export class ChatSession {
  #context: ChatContext | null;
  readonly #systemPrompt: string;
  readonly #layout: PromptLayout;
  /** Generated tokens of the last answer that are not in the cache yet; they open the next turn. */
  #uncached: number[] = [];
  #turns = 0;
  #turnQueue: Promise<unknown> = Promise.resolve();

  /** @internal */
  constructor(context: ChatContext, systemPrompt: string, layout: PromptLayout) {
    this.#context = context;
    this.#systemPrompt = systemPrompt;
    this.#layout = layout;
  }

  /** Positions in the conversation's KV cache. */
  get length(): number {
    return this.#contextOrThrow('read the length').session.length;
  }

  /** Whether {@link ChatSession.dispose} has been called. */
  get disposed(): boolean {
    return this.#context === null;
  }

  /**
   * Asks the next question and resolves with the whole answer (pieces also stream to `onTextChunk`).
   *
   * @example
   * ```ts
   * const { text } = await chat.ask({ question: 'Why?', maxTokens: 100 });
   * ```
   */
  async ask(options: ChatTurnOptions): Promise<GenerationResult> {
    const stream = this.askStream(options);
    for (;;) {
      const step = await stream.next();
      if (step.done) return step.value;
    }
  }

  /**
   * Asks the next question as a stream of text pieces; the return value is the {@link GenerationResult}.
   *
   * @example
   * ```ts
   * for await (const piece of chat.askStream({ question: 'Tell me more.' })) process.stdout.write(piece);
   * ```
   */
  async *askStream(options: ChatTurnOptions): AsyncGenerator<string, GenerationResult> {
    // Validate everything before waiting for the previous turn, so bad input fails at once.
    const context = this.#contextOrThrow('ask');
    if (!isPlainObject(options)) throw invalidParameterError('options', 'an object', options);
    checkOptionKeys(options, CHAT_TURN_KEYS, 'options');
    if (!isString(options.question)) throw invalidParameterError('options.question', 'a string', options.question);
    if (isDefined(options.image) && isDefined(options.video)) {
      throw invalidParameterError('options', 'either image or video, not both', 'both');
    }
    const generation = resolveGenerationOptions(options as Record<string, unknown>);
    const video = isDefined(options.video) ? checkVideoInput(options.video) : undefined;

    let release!: () => void;
    const previous = this.#turnQueue;
    this.#turnQueue = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      return yield* this.#turn(context, options, video, generation);
    } finally {
      release();
    }
  }

  async *#turn(
    context: ChatContext,
    options: ChatTurnOptions,
    video: ResolvedVideoInput | undefined,
    generation: ResolvedGenerationOptions,
  ): AsyncGenerator<string, GenerationResult> {
    const { config, tokenizer, session } = context;
    const resolution = config.image_resolution;
    const perToken = config.patch_size * config.vae_spatial_stride;
    const grid = resolution / perToken;
    const tokensPerImage = grid * grid;

    let visual: { tokens: number; tokensPerImage: number } | undefined;
    let image: NonNullable<AddonSequenceChunk['images']>[number] | undefined;
    if (isDefined(options.image)) {
      const pixels = await understandingImagePixels(options.image, resolution, 'options.image');
      visual = { tokens: tokensPerImage, tokensPerImage };
      image = { data: pixels, shape: [1, 3, 1, resolution, resolution], position: 0 };
    } else if (video) {
      const { data, frames } = await videoPixels(video, resolution);
      // Each frame's token grid is resized bilinearly to half its side, rounded up (27 -> 14, spec §8.3).
      const pooled = Math.ceil(grid / 2);
      visual = { tokens: frames * pooled * pooled, tokensPerImage };
      image = { data, shape: [frames, 3, 1, resolution, resolution], position: 0, poolTo: [pooled, pooled] };
    }

    // Reading the image took a while: the chat (or its model) may have been disposed meanwhile.
    if (this.#context === null || session.disposed) throw disposedError('chat', 'ask');
    // A previous answer's last token(s) that are not cached yet come first.
    const carried = this.#uncached;
    const start = session.length + carried.length;
    const turn = buildTurn(tokenizer, {
      start,
      continuation: this.#turns > 0,
      systemPrompt: this.#systemPrompt,
      question: options.question,
      ...(visual ? { visual } : {}),
      layout: this.#layout,
    });
    const ids = [...carried, ...turn.ids];
    const contextLength = config.max_position_embeddings;
    if (session.length + ids.length >= contextLength) {
      throw createError(
        'ERR_INVALID_ARGUMENT',
        `The prompt needs ${ids.length} positions (${session.length} already in the conversation) but the model's ` +
          `context is ${contextLength} positions; shorten the question, use fewer video frames, or start a new chat`,
      );
    }
    const prompt: AddonSequenceChunk = {
      ids: Int32Array.from(ids),
      times: isDefined(turn.timePosition) ? [{ position: turn.timePosition, t: 1.0 }] : [],
      blocks: turn.blocks,
      images: image ? [{ ...image, position: turn.visualPosition! }] : [],
    };

    // Every native step goes through the model's queue; the session itself is one turn at a time.
    // The model's dispose() can dispose the session while this turn awaits: every read after an await goes through
    // this getter, so it fails with a typed ERR_DISPOSED rather than the raw addon's error.
    const queuedSession: AddonUnderstandingSession = {
      get length() {
        if (session.disposed) throw disposedError('chat', 'ask');
        return session.length;
      },
      get disposed() {
        return session.disposed;
      },
      evaluate: (chunk, opts) => context.queue.run(() => session.evaluate(chunk, opts)),
      setSampling: (params) => session.setSampling(params),
      cancel: () => session.cancel(),
      truncate: (length) => session.truncate(length),
      dispose: () => session.dispose(),
    };
    const target: GenerationTarget = { session: queuedSession, tokenizer, prompt, contextLength };
    let result: GenerationResult;
    try {
      result = yield* runGeneration(target, generation);
    } catch (err) {
      // Disposing the session (the chat's or the model's dispose()) stops an evaluation in flight, which the addon
      // reports as cancelled: say what happened instead.
      if (err instanceof ShowO2Error && err.code === 'ERR_CANCELLED' && session.disposed) {
        throw createError('ERR_DISPOSED', 'Cannot ask: the chat was disposed while it was answering', { cause: err });
      }
      throw err;
    }
    if (queuedSession.length > start - carried.length) {
      // The prompt went in: the turn counts, and its uncached tail opens the next turn.
      this.#turns += 1;
      this.#uncached = target.uncached ?? [];
    }
    return result;
  }

  /**
   * Releases the conversation's cache. Idempotent; later calls throw `ERR_DISPOSED`.
   *
   * @example
   * ```ts
   * chat.dispose();
   * ```
   */
  dispose(): void {
    if (!this.#context) return;
    const context = this.#context;
    this.#context = null;
    context.session.dispose();
    context.onDispose(this);
  }

  #contextOrThrow(operation: string): ChatContext {
    if (!this.#context) throw disposedError('chat', operation);
    return this.#context;
  }
}
