// Type tests for the public typings (STYLE §6): compiled with `tsc --noEmit -p test/types`, never run.
// Each `@ts-expect-error` line must fail to type-check; if the typings loosen, tsc reports the directive as unused
// and `npm run test:types` fails.
import {
  centerCrop,
  convertToSafetensors,
  decodeImage,
  encodePng,
  imageToTensor,
  letterbox,
  resizeBicubic,
  resizeShorterSide,
  tensorToImage,
  type RgbImage,
  runtimeInfo,
  DownloadError,
  InvalidInputError,
  NoGpuError,
  ShowO2Error,
  toFloat32Array,
  WeightFile,
  type ConvertOptions,
  type ErrorCode,
  type RuntimeInfo,
  type TensorData,
  type TensorInfo,
} from 'showo2';

function invalidInput(): InvalidInputError {
  return new InvalidInputError('ERR_INVALID_ARGUMENT', 'Expected a positive integer for n but received -1 (number)');
}

async function typeChecks(): Promise<void> {
  const weights: WeightFile = await WeightFile.open('model.safetensors');
  const infos: readonly TensorInfo[] = weights.tensors;
  const first: string | undefined = infos[0]?.name;
  const format: 'safetensors' | 'torch' = weights.format;
  const metadata: Readonly<Record<string, string>> = weights.metadata;

  const tensor: TensorData = await weights.read(first ?? '');
  if (tensor.dtype === 'F32') {
    const values: Float32Array = tensor.data; // narrowing by dtype gives the exact typed array
    void values;
  } else if (tensor.dtype === 'BF16') {
    const bits: Uint16Array = tensor.data;
    void bits;
  } else if (tensor.dtype === 'I64') {
    const ints: BigInt64Array = tensor.data;
    void ints;
  }
  const widened: Float32Array = toFloat32Array(tensor);

  // @ts-expect-error the constructor is private: files are opened with WeightFile.open()
  new WeightFile();
  // @ts-expect-error a path is required
  await WeightFile.open();
  // @ts-expect-error tensors are read-only
  weights.tensors = [];
  // @ts-expect-error F32 data is a Float32Array, never a Uint16Array
  const wrong: Uint16Array = (tensor as Extract<TensorData, { dtype: 'F32' }>).data;

  const options: ConvertOptions = { dtype: 'BF16' };
  const written: number = await convertToSafetensors('in.bin', 'out.safetensors', options);
  // @ts-expect-error only float dtypes are conversion targets
  await convertToSafetensors('in.bin', 'out.safetensors', { dtype: 'I64' });

  const info: RuntimeInfo = await runtimeInfo();
  const threads: number = info.defaultThreadCount;

  try {
    await weights.dispose();
  } catch (err) {
    if (err instanceof ShowO2Error) {
      const code: ErrorCode = err.code;
      void code;
    }
    // A family narrows `code` to its own codes.
    if (err instanceof DownloadError) {
      const code: 'ERR_DOWNLOAD' | 'ERR_UNAUTHORIZED' | 'ERR_OFFLINE' = err.code;
      // @ts-expect-error a download failure is never ERR_CUDA
      const cuda: 'ERR_CUDA' = err.code;
      void [code, cuda];
    }
    if (err instanceof NoGpuError) {
      const code: 'ERR_NO_GPU' = err.code;
      void code;
    }
  }
  const bad: ShowO2Error = invalidInput();
  // @ts-expect-error a family's constructor takes only its own codes
  void new InvalidInputError('ERR_DISPOSED', 'x');
  void bad;
  await using scoped = await WeightFile.open('other.safetensors'); // Symbol.asyncDispose is supported
  void [first, format, metadata, widened, wrong, written, threads, scoped];
}
void typeChecks;

function imageTypeChecks(bytes: Buffer): void {
  const image: RgbImage = decodeImage(bytes); // a Buffer is a Uint8Array
  const png: Uint8Array = encodePng(centerCrop(resizeShorterSide(image, 432), 432, 432));
  const framed: RgbImage = letterbox(resizeBicubic(image, 64, 48), 432);
  const x: Float32Array = imageToTensor(framed);
  const back: RgbImage = tensorToImage(x, 432, 432, { rounding: 'truncate' });
  // @ts-expect-error rounding is 'round' or 'truncate'
  tensorToImage(x, 432, 432, { rounding: 'floor' });
  // @ts-expect-error the tensor is a Float32Array
  tensorToImage([0, 0, 0], 1, 1);
  // @ts-expect-error an image needs its size
  imageToTensor({ data: new Uint8Array(3) });
  void [png, back];
}
void imageTypeChecks;

// Interleaved generation: the parts are a discriminated union.
async function interleavedTypes(model: import('showo2').ShowO2Model): Promise<void> {
  const { parts, finishReason, usage } = await model.generateInterleaved({ prompt: 'a story', maxImages: 2, history: [{ type: 'text', tokens: [1, 2] }] });
  for (const part of parts) {
    if (part.type === 'text') {
      const text: string = part.text;
      void text;
    } else {
      const index: number = part.index;
      const shape: readonly number[] = part.latents.shape;
      void index, shape;
    }
  }
  const reason: 'eos' | 'length' | 'abort' = finishReason;
  const images: number = usage.images;
  void reason, images;
  // @ts-expect-error a history part needs its payload
  await model.generateInterleaved({ prompt: 'x', history: [{ type: 'image' }] });
}
void interleavedTypes;
