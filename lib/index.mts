// The ES module entry point. It re-exports the CommonJS build (dist/index.js) rather than compiling the sources a
// second time as ESM, so `import` and `require` share one copy of every class: `instanceof ShowO2Error` holds
// whichever way the error was created, and the native addon is loaded once. Node finds the CommonJS named exports
// statically (cjs-module-lexer understands tsc's output).
//
// The names are listed rather than `export *`-ed so the ESM namespace does not pick up tsc's `__esModule` marker.
// Keep this list equal to index.ts's exports: test/unit/module-formats.test.ts fails when they drift apart.
export {
  bf16ToFloat32,
  CancelledError,
  centerCrop,
  convertToSafetensors,
  CudaError,
  decodeImage,
  DEFAULT_JPEG_QUALITY,
  DisposedError,
  DownloadError,
  DTYPES,
  encodeJpeg,
  encodePng,
  f16ToFloat32,
  FileAccessError,
  FLOAT_DTYPES,
  imageToTensor,
  InternalError,
  InvalidInputError,
  InvalidModelFileError,
  invalidParameterError,
  letterbox,
  MAX_IMAGE_PIXELS,
  MAX_IMAGE_SIDE,
  ModelNotFoundError,
  NativeLoadError,
  NoGpuError,
  OutOfMemoryError,
  readImageSize,
  resizeBicubic,
  resizeShorterSide,
  runtimeInfo,
  ShowO2Error,
  tensorToImage,
  toFloat32Array,
  UnsupportedModelError,
  WeightFile,
  writeImage,
} from './index.js';
export type {
  ConvertOptions,
  CudaDevice,
  CudaInfo,
  Device,
  DType,
  ErrorCode,
  FloatDType,
  JpegOptions,
  RgbImage,
  RuntimeInfo,
  TensorData,
  TensorDataOf,
  WeightDtype,
  TensorInfo,
  TensorToImageOptions,
  WeightFormat,
  WriteImageOptions,
} from './index.js';
export { WanVae } from './index.js';
export type {
  DecodedVideo,
  DecodeOptions,
  EncodeOptions,
  Latent,
  VideoTensor,
  WanVaeConfig,
  WanVaeLoadOptions,
} from './index.js';
export { ChatSession, DEFAULT_SYSTEM_PROMPT, ShowO2Model, ShowO2Tokenizer } from './index.js';
export type {
  AnswerOptions,
  ChatOptions,
  ChatTurnOptions,
  DecodeTextOptions,
  FinishReason,
  GenerationResult,
  ImageInput,
  PromptLayout,
  ShowO2Config,
  ShowO2LoadOptions,
  ShowO2ModelInfo,
  ShowO2ParameterCounts,
  ShowO2SpecialTokens,
  TextGenerationOptions,
  TokenizerFromJSONOptions,
  TokenizerLoadOptions,
  TokenStreamDecoder,
  VideoInput,
} from './index.js';
export { DEMO_MODEL, encodeAnimatedPng } from './index.js';
export type {
  AnimatedPngOptions,
  GenerationProgress,
  GenerationTimings,
  ImageGenerationOptions,
  ImageGenerationResult,
  LatentTensor,
  VideoGenerationOptions,
  VideoGenerationResult,
} from './index.js';
export { resolveModel, VAE_FILE, VAE_REPO } from './index.js';
export type { DownloadProgress, ResolvedModel, ResolveOptions } from './index.js';
