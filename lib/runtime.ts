/**
 * What this installation of showo2 can use: {@link runtimeInfo}.
 *
 * @module
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { callNative, createError } from './errors.js';
import { addon, addonFile, packageRoot } from './native.js';

/** One CUDA device, as {@link CudaInfo.devices} lists it. */
export interface CudaDevice {
  /** The CUDA device ordinal. */
  readonly index: number;
  /** e.g. `NVIDIA H100 80GB HBM3`. */
  readonly name: string;
  /** `major.minor`, e.g. `9.0`. */
  readonly computeCapability: string;
  /** Global memory, in bytes. */
  readonly totalMemoryBytes: number;
  /** Streaming multiprocessors (SMs). */
  readonly multiprocessors: number;
  /** Whether showo2's kernels run on it (compute capability 8.0 or newer). */
  readonly supported: boolean;
}

/** The CUDA side of {@link RuntimeInfo}. */
export interface CudaInfo {
  /** Whether this binary was built with the CUDA backend (see the `SHOWO2_CUDA` build variable). */
  readonly built: boolean;
  /** The CUDA runtime the binary was built with, e.g. `13.0`; null when built without CUDA. */
  readonly runtimeVersion: string | null;
  /** The newest CUDA version the installed driver supports; null when no driver was found. */
  readonly driverVersion: string | null;
  /** Every CUDA device the driver reports, supported or not; empty without a driver. */
  readonly devices: readonly CudaDevice[];
  /** Why no supported GPU can be used (no driver, old driver, no device, too old a device); null when one can. */
  readonly unavailableReason: string | null;
}

/** What {@link runtimeInfo} reports. */
export interface RuntimeInfo {
  /** The showo2 package version. */
  readonly version: string;
  /** The native binary in use. */
  readonly addonPath: string;
  /** `platform-arch`, e.g. `linux-x64`. */
  readonly platform: string;
  /** CPU features found at run time and whether the AVX2 kernels are in use, e.g. `avx2 fma f16c (using avx2 kernels)`. */
  readonly cpuFeatures: string;
  /** Threads the CPU backend uses when not told otherwise (the hardware threads available to this process). */
  readonly defaultThreadCount: number;
  /** What the CUDA backend can use, or why it cannot. */
  readonly cuda: CudaInfo;
}

let packageVersion: string | undefined;

function readPackageVersion(): string {
  packageVersion ??= (JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string })
    .version;
  return packageVersion;
}

/**
 * Reports the package version, the native binary, CPU features, default thread count, and what CUDA can offer.
 * The CUDA query runs on a worker thread (initialising the CUDA runtime can take a moment).
 *
 * @example
 * ```ts
 * import { runtimeInfo } from 'showo2';
 *
 * const info = await runtimeInfo();
 * if (info.cuda.unavailableReason) console.log(`CPU only: ${info.cuda.unavailableReason}`);
 * ```
 */
export async function runtimeInfo(): Promise<RuntimeInfo> {
  const native = await callNative(() => addon().runtimeInfo());
  return {
    version: readPackageVersion(),
    addonPath: addonFile(),
    platform: `${process.platform}-${process.arch}`,
    cpuFeatures: native.cpuFeatures,
    defaultThreadCount: native.defaultThreadCount,
    cuda: native.cuda,
  };
}

/**
 * Where a model runs: `'cpu'`, `'cuda'` (an NVIDIA GPU with compute capability 8.0 or newer; a {@link NoGpuError},
 * `ERR_NO_GPU`, with the reason {@link runtimeInfo} gives when there is none), or `'auto'` (CUDA when this build has
 * it and a supported GPU is present, else the CPU).
 */
export type Device = 'cpu' | 'cuda' | 'auto';

/** The dtype a CUDA model keeps its weight matrices in (norm scales and biases stay float32). */
export type WeightDtype = 'bf16' | 'fp16';

/** The devices {@link Device} allows. */
export const DEVICES: readonly Device[] = ['cpu', 'cuda', 'auto'];
/** The dtypes {@link WeightDtype} allows. */
export const WEIGHT_DTYPES: readonly WeightDtype[] = ['bf16', 'fp16'];

/**
 * The device used when a load call names none: the `SHOWO2_DEVICE` environment variable when it holds one of
 * {@link DEVICES} (how the GPU test cycle runs the whole suite on CUDA), else `'cpu'`. The CPU stays the default until
 * the CUDA backend has passed the GPU suite; pass `device: 'auto'` to use a GPU when there is one.
 */
export function defaultDevice(): Device {
  const fromEnv = process.env.SHOWO2_DEVICE;
  return fromEnv !== undefined && (DEVICES as readonly string[]).includes(fromEnv) ? (fromEnv as Device) : 'cpu';
}

/**
 * The device a load call runs on: `given`, else {@link defaultDevice}. `'cuda'` is checked here, before anything is
 * read or downloaded: without a usable GPU it rejects with ERR_NO_GPU (a NoGpuError) carrying the reason
 * {@link runtimeInfo} reports. ERR_CUDA stays for CUDA failures while running. `'cpu'` and `'auto'` always pass
 * (`'auto'` falls back to the CPU in the addon).
 * @internal
 */
export async function resolveDevice(given: Device | undefined): Promise<Device> {
  const device = given ?? defaultDevice();
  if (device !== 'cuda') return device;
  const { cuda } = await callNative(() => addon().runtimeInfo());
  if (cuda.unavailableReason === null) return device;
  const origin = given === undefined ? ' (from the SHOWO2_DEVICE environment variable)' : '';
  throw createError(
    'ERR_NO_GPU',
    `device 'cuda'${origin} is unavailable: ${cuda.unavailableReason}. Use device 'cpu', or 'auto' to use a GPU only ` +
      "when one is usable (runtimeInfo() or 'showo2 doctor' shows what the GPU setup lacks)",
  );
}
