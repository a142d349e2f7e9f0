// Type tests for the public typings (STYLE §6): compiled with `tsc --noEmit -p test/types`, never run.
// Each `@ts-expect-error` line must fail to type-check; if the typings loosen, tsc reports the directive as unused
// and `npm run test:types` fails.
import {
  convertToSafetensors,
  runtimeInfo,
  ShowO2Error,
  toFloat32Array,
  WeightFile,
  type ConvertOptions,
  type ErrorCode,
  type RuntimeInfo,
  type TensorData,
  type TensorInfo,
} from 'showo2';

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
  }
  await using scoped = await WeightFile.open('other.safetensors'); // Symbol.asyncDispose is supported
  void [first, format, metadata, widened, wrong, written, threads, scoped];
}
void typeChecks;
