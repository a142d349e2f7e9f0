/**
 * The raw surface of the native addon (native/binding/), typed in one place (the design's typings/ folder),
 * after node-llama-cpp's AddonTypes.ts.
 * Nothing else in lib/ names what the addon exports; the public classes wrap these.
 *
 * Keep this file in step with native/binding/addon.cpp and the Addon*.cpp files it registers.
 *
 * @module
 * @internal
 */

/** One tensor's record as `AddonWeightFile.tensors` lists it. */
export interface AddonTensorRecord {
  name: string;
  dtype: string; // safetensors spelling: F32, BF16, F16, F64, I64, I32, I16, I8, U8, BOOL
  shape: number[];
}

/** What `AddonWeightFile.read()` resolves with: the tensor's bytes as stored, copied into a fresh ArrayBuffer. */
export interface AddonTensorBytes {
  dtype: string;
  shape: number[];
  data: ArrayBuffer;
}

/** native/binding/AddonWeightFile.h */
export interface AddonWeightFile {
  readonly path: string;
  readonly format: string;
  readonly tensors: AddonTensorRecord[];
  readonly metadata: Record<string, string>;
  readonly closed: boolean;
  read(name: string): Promise<AddonTensorBytes>;
  close(): void;
}

export interface AddonWeightFileClass {
  open(path: string): Promise<AddonWeightFile>;
}

/** The resolved WanVaeConfig, in its config.json spellings (native/core/wan_vae.h). */
export interface AddonWanVaeConfig {
  dim: number;
  z_dim: number;
  dim_mult: number[];
  num_res_blocks: number;
  attn_scales: number[];
  temperal_downsample: boolean[];
  latents_mean: number[];
  latents_std: number[];
}

/** A float32 tensor as `AddonWanVae` takes and returns it: row-major data and its 5-D shape. */
export interface AddonFloatTensor {
  data: Float32Array;
  shape: number[];
}

/** native/binding/AddonWanVae.h */
export interface AddonWanVae {
  readonly config: AddonWanVaeConfig;
  readonly disposed: boolean;
  /** The backend's device: what 'auto' resolved to. */
  readonly device: 'cpu' | 'cuda';
  /** video [N, 3, 1+4k, H, W] in [-1, 1] -> normalised latent [N, z_dim, 1+k, H/8, W/8]. */
  encode(data: Float32Array, shape: number[], options?: { sample?: boolean; seed?: number }): Promise<AddonFloatTensor>;
  /** latent [N, z_dim, T, h, w] -> pixels [N, 3, 1+4(T-1), 8h, 8w] in [-1, 1]. */
  decode(
    data: Float32Array,
    shape: number[],
    options?: { tiling?: 'auto' | 'on' | 'off'; tileLatent?: number; overlapLatent?: number },
  ): Promise<AddonFloatTensor>;
  dispose(): void;
}

export interface AddonWanVaeClass {
  /** `configJson`: a config.json text; fields it leaves out keep the Wan2.1 defaults. */
  load(
    weightsPath: string,
    configJson?: string,
    options?: {
      device?: 'cpu' | 'cuda' | 'auto';
      weightDtype?: 'bf16' | 'fp16';
      threads?: number;
      convDtype?: 'fp32' | 'bf16';
      channelsLast?: boolean;
      activationDtype?: 'fp32' | 'bf16';
    },
  ): Promise<AddonWanVae>;
}

/** The resolved Show-o2 configuration (native/core/showo2.h), in config.json spellings plus derived sizes. */
export interface AddonShowo2Config {
  _class_name: string;
  llm_model_path: string;
  hidden_size: number;
  llm_vocab_size: number;
  image_latent_dim: number;
  patch_size: number;
  image_latent_height: number;
  image_latent_width: number;
  clip_latent_dim: number;
  num_diffusion_layers: number;
  max_position_embeddings: number;
  num_hidden_layers: number;
  tie_word_embeddings: boolean;
  vae_spatial_stride: number;
  vae_temporal_stride: number;
  image_resolution: number;
}

/** One appended piece of a sequence (native/core/understanding_session.h `SequenceChunk`). Positions are absolute. */
export interface AddonSequenceChunk {
  ids: Int32Array;
  times?: { position: number; t: number }[];
  blocks?: { offset: number; length: number }[];
  /** Frames [F, 3, 1, H, W] in [-1, 1], each encoded alone; tokens frame-major from `position`. */
  images?: { data: Float32Array; shape: number[]; position: number; poolTo?: [number, number] }[];
  /** Images given by their normalised VAE latent [1, z, 1, h, w] (e.g. one just generated in place, spec §8.4). */
  latents?: { data: Float32Array; shape: number[]; position: number }[];
}

export interface AddonSamplingParams {
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  seed?: number;
  /** [id, bias] pairs added to the scores after the repetition penalty; -Infinity bans a token. */
  logitBias?: [number, number][];
}

/** native/binding/AddonUnderstandingSession.h */
export interface AddonUnderstandingSession {
  readonly length: number;
  readonly disposed: boolean;
  evaluate(
    chunk: AddonSequenceChunk,
    options?: { sample?: boolean; returnLogits?: boolean; ban?: Int32Array },
  ): Promise<{ token?: number; logits?: Float32Array }>;
  setSampling(params: AddonSamplingParams): void;
  cancel(): void;
  truncate(length: number): void;
  dispose(): void;
}

/** One branch's token sequence for generation (native/core/generation.h `GenerationSequence`). */
export interface AddonGenerationSequence {
  ids: Int32Array;
  /** Position of the TIME token; the visual block follows it. */
  blockOffset: number;
}

/** native/core/generation.h `GenerationRequest`. */
export interface AddonGenerationRequest {
  cond: AddonGenerationSequence[];
  uncond?: AddonGenerationSequence;
  latentShape: number[];
  seed: number;
  steps: number;
  shift?: number;
  guidanceScale?: number;
  solver?: 'euler' | 'heun';
  reusePrefix?: boolean;
  preview?: boolean;
  initialLatents?: AddonFloatTensor;
  firstFrame?: AddonFloatTensor;
  /**
   * Mixed modality (spec §8.4): the one cond row continues this session (created with flowHeadContext); its `ids` and
   * `blockOffset` are then relative to the session's end (the block placeholders and the suffix only). Batch 1.
   */
  session?: AddonUnderstandingSession;
}

/** What the native generation reports after each ODE step. */
export interface AddonGenerationStep {
  step: number;
  totalSteps: number;
  modelEvaluations: number;
  t: number;
  elapsedMs: number;
  preview?: AddonFloatTensor;
}

/** native/binding/AddonCancelToken.h */
export interface AddonCancelToken {
  readonly cancelled: boolean;
  cancel(): void;
}

/** native/binding/AddonShowo2Model.h */
export interface AddonShowo2Model {
  readonly config: AddonShowo2Config;
  readonly disposed: boolean;
  /** The backend's device: what 'auto' resolved to. */
  readonly device: 'cpu' | 'cuda';
  /** flowHeadContext: keep what the flow head needs to draw images inside the conversation (spec §8.4). */
  createSession(options?: { flowHeadContext?: boolean }): AddonUnderstandingSession;
  generate(
    request: AddonGenerationRequest,
    onStep?: (step: AddonGenerationStep) => void,
    cancelToken?: AddonCancelToken,
  ): Promise<AddonFloatTensor>;
  encodeImages(pixels: AddonFloatTensor): Promise<AddonFloatTensor>;
  decodeLatents(latents: AddonFloatTensor, options?: { tiling?: 'auto' | 'on' | 'off' }): Promise<AddonFloatTensor>;
  /** Parameters per component, from the checkpoints' shapes (a tied lm_head counted once). */
  readonly parameterCounts: AddonParameterCounts;
  /** A WanVae over this model's own VAE (shares its weights and its mutex; keeps the model alive until disposed). */
  vae(): AddonWanVae;
  dispose(): void;
}

/** native/core/showo2.h Showo2ParameterCounts. */
export interface AddonParameterCounts {
  llm: number;
  semantic: number;
  flowHead: number;
  projections: number;
  other: number;
  vae: number;
  total: number;
}

export interface AddonShowo2ModelClass {
  load(options: {
    configJson: string;
    configSource: string;
    weightsPath: string;
    vaePath: string;
    threads?: number;
    /** native/binding/AddonBackend.h */
    device?: 'cpu' | 'cuda' | 'auto';
    weightDtype?: 'bf16' | 'fp16';
    convDtype?: 'fp32' | 'bf16';
    channelsLast?: boolean;
    activationDtype?: 'fp32' | 'bf16';
  }): Promise<AddonShowo2Model>;
}

/** native/binding/AddonRuntime.cpp */
export interface AddonCudaDevice {
  index: number;
  name: string;
  computeCapability: string;
  totalMemoryBytes: number;
  multiprocessors: number;
  supported: boolean;
}

export interface AddonCudaInfo {
  built: boolean;
  runtimeVersion: string | null;
  driverVersion: string | null;
  devices: AddonCudaDevice[];
  unavailableReason: string | null;
}

export interface AddonRuntimeInfo {
  cpuFeatures: string;
  defaultThreadCount: number;
  cuda: AddonCudaInfo;
}

/** Everything `require('showo2.node')` returns. */
export interface Addon {
  WeightFile: AddonWeightFileClass;
  WanVae: AddonWanVaeClass;
  Showo2Model: AddonShowo2ModelClass;
  CancelToken: new () => AddonCancelToken;
  runtimeInfo(): Promise<AddonRuntimeInfo>;
  convertToSafetensors(src: string, dst: string, options: { dtype?: string }): Promise<number>;
  /** The package version the binary was built for (CMake's SHOWO2_VERSION, from package.json). */
  version: string;
  /** `'cuda'` when the CUDA backend is compiled in, else `'cpu'`. */
  variant: 'cpu' | 'cuda';
  /**
   * V8's count of external memory for this isolate, in bytes: what loaded models and VAEs report (their weights) and
   * give back on dispose() or in their finalizer. `process.memoryUsage().external` counts only ArrayBuffers.
   */
  externalMemory(): number;
}
