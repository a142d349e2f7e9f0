/**
 * showo2: the Show-o2 multimodal model, running natively in Node.js.
 *
 * Import with either module system; both give the same objects:
 * ```ts
 * import { WeightFile } from 'showo2';          // ESM
 * const { WeightFile } = require('showo2');     // CommonJS
 * ```
 *
 * @packageDocumentation
 */
export { convertToSafetensors, type ConvertOptions } from './convert.js';
export {
  bf16ToFloat32,
  DTYPES,
  f16ToFloat32,
  FLOAT_DTYPES,
  toFloat32Array,
  type DType,
  type FloatDType,
  type TensorData,
  type TensorDataOf,
} from './dtype.js';
export {
  CancelledError,
  CudaError,
  DisposedError,
  DownloadError,
  FileAccessError,
  InternalError,
  InvalidInputError,
  InvalidModelFileError,
  invalidParameterError,
  ModelNotFoundError,
  NativeLoadError,
  NoGpuError,
  OutOfMemoryError,
  ShowO2Error,
  UnsupportedModelError,
  type ErrorCode,
} from './errors.js';
export {
  centerCrop,
  decodeImage,
  DEFAULT_JPEG_QUALITY,
  encodeJpeg,
  encodePng,
  imageToTensor,
  letterbox,
  MAX_IMAGE_PIXELS,
  MAX_IMAGE_SIDE,
  readImageSize,
  resizeBicubic,
  resizeShorterSide,
  tensorToImage,
  writeImage,
  type JpegOptions,
  type RgbImage,
  type TensorToImageOptions,
  type WriteImageOptions,
} from './image.js';
export {
  runtimeInfo,
  type ActivationDtype,
  type ConvDtype,
  type CudaDevice,
  type CudaInfo,
  type Device,
  type RuntimeInfo,
  type WeightDtype,
} from './runtime.js';
export { WeightFile, type TensorInfo, type WeightFormat } from './weights.js';
export {
  WanVae,
  type DecodedVideo,
  type DecodeOptions,
  type EncodeOptions,
  type Latent,
  type VideoTensor,
  type WanVaeConfig,
  type WanVaeLoadOptions,
} from './vae.js';
export {
  ChatSession,
  DEFAULT_SYSTEM_PROMPT,
  ShowO2Model,
  type AnswerOptions,
  type ChatOptions,
  type ChatTurnOptions,
  type ShowO2Config,
  type ShowO2LoadOptions,
  type ShowO2ModelInfo,
  type ShowO2ParameterCounts,
} from './model.js';
export { type ImageInput, type VideoInput } from './visual-input.js';
export type { FinishReason, GenerationResult, TextGenerationOptions } from './text-generation.js';
export type { PromptLayout } from './prompt.js';
export {
  ShowO2Tokenizer,
  type ShowO2SpecialTokens,
  type TokenizerLoadOptions,
  type TokenizerFromJSONOptions,
  type DecodeTextOptions,
  type TokenStreamDecoder,
} from './tokenizer.js';
export {
  type GenerationProgress,
  type ImageGenerationOptions,
  type GenerationTimings,
  type ImageGenerationResult,
  type LatentTensor,
  type VideoGenerationOptions,
  type VideoGenerationResult,
} from './visual-generation.js';
export {
  type InterleavedEvent,
  type InterleavedFinishReason,
  type InterleavedGenerationOptions,
  type InterleavedGenerationResult,
  type InterleavedImagePart,
  type InterleavedInput,
  type InterleavedPart,
  type InterleavedTextEvent,
  type InterleavedTextPart,
} from './interleaved-generation.js';
export { encodeAnimatedPng, type AnimatedPngOptions } from './animation.js';
export { DEMO_MODEL } from './demo-model.js';
export { resolveModel, VAE_FILE, VAE_REPO, type DownloadProgress, type ResolvedModel, type ResolveOptions } from './hub.js';
