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
  runtimeInfo(): Promise<AddonRuntimeInfo>;
  convertToSafetensors(src: string, dst: string, options: { dtype?: string }): Promise<number>;
}
