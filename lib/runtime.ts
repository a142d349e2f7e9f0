/**
 * What this installation of showo2 can use: {@link runtimeInfo}.
 *
 * @module
 */
import { callNative, invalidParameterError } from './errors.js';
import { addonFor, noGpuError, packageVersion, type LoadedAddon } from './native.js';
import { isDefined, isOneOf } from './validate.js';

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
  /**
   * Which build of the native addon is loaded: `'cpu'` (CPU backend only) or `'cuda'` (CPU and CUDA backends). One
   * build is loaded per process, chosen by the first call that needs it (see the README, Install).
   */
  readonly variant: 'cpu' | 'cuda';
  /**
   * What chose that build: the device of the first call (`device 'auto', NVIDIA driver 550.54.15`), or the
   * environment variable that overrode it (`SHOWO2_VARIANT=cpu`, `SHOWO2_BINARY=...`).
   */
  readonly variantReason: string;
  /** `platform-arch`, e.g. `linux-x64`. */
  readonly platform: string;
  /** CPU features found at run time and whether the AVX2 kernels are in use, e.g. `avx2 fma f16c (using avx2 kernels)`. */
  readonly cpuFeatures: string;
  /** Threads the CPU backend uses when not told otherwise (the hardware threads available to this process). */
  readonly defaultThreadCount: number;
  /** What the CUDA backend can use, or why it cannot. */
  readonly cuda: CudaInfo;
}

/** The CUDA part of runtimeInfo(): the binary's, except that a CPU build gives the loader's reason for being loaded. */
function cudaInfo(loaded: LoadedAddon, native: CudaInfo): CudaInfo {
  return loaded.variant === 'cpu' ? { ...native, unavailableReason: loaded.cudaUnavailable } : native;
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
  const loaded = addonFor('auto');
  const native = await callNative(() => loaded.addon.runtimeInfo());
  return {
    version: packageVersion(),
    addonPath: loaded.file,
    variant: loaded.variant,
    variantReason: loaded.reason,
    platform: `${process.platform}-${process.arch}`,
    cpuFeatures: native.cpuFeatures,
    defaultThreadCount: native.defaultThreadCount,
    cuda: cudaInfo(loaded, native.cuda),
  };
}

/**
 * Where a model runs: `'cpu'`, `'cuda'` (an NVIDIA GPU with compute capability 8.0 or newer; a {@link NoGpuError},
 * `ERR_NO_GPU`, with the reason {@link runtimeInfo} gives when there is none), or `'auto'` (CUDA when this build has
 * it and a supported GPU is present, else the CPU, saying why in one process warning of type `ShowO2Warning`).
 * The first call that loads the native addon picks its build from the device (README, Install: "Which build loads").
 */
export type Device = 'cpu' | 'cuda' | 'auto';

/** The dtype a CUDA model keeps its weight matrices in (norm scales and biases stay float32). */
export type WeightDtype = 'bf16' | 'fp16';

/**
 * What a CUDA device's convolutions (the VAE's, and the patch embeddings') multiply in: `'fp32'` (CUDA cores, within
 * float rounding of the CPU) or `'bf16'` (tensor cores: activations rounded to bf16 as they are read, fp32
 * accumulation; the precision PyTorch's bf16 VAE runs at, and the fast path).
 */
export type ConvDtype = 'fp32' | 'bf16';
/** The dtypes {@link ConvDtype} allows. */
export const CONV_DTYPES: readonly ConvDtype[] = ['fp32', 'bf16'];

/**
 * What a CUDA device's VAE stores its activations in: `'fp32'`, or `'bf16'` (half the memory and memory traffic of
 * every activation, as PyTorch's bf16 VAE; the convolutions then run on tensor cores whatever {@link ConvDtype}
 * says). Inputs and outputs stay float32.
 */
export type ActivationDtype = 'fp32' | 'bf16';
/** The dtypes {@link ActivationDtype} allows. */
export const ACTIVATION_DTYPES: readonly ActivationDtype[] = ['fp32', 'bf16'];

/** The kernel choices of a load call ({@link ConvDtype}, `channelsLast`, {@link ActivationDtype}), as the addon reads them. */
export interface KernelOptions {
  convDtype?: ConvDtype;
  channelsLast?: boolean;
  activationDtype?: ActivationDtype;
}

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

let warnedCpuFallback = false;

/**
 * The one line `device: 'auto'` logs when it runs on the CPU, once per process: a `process.emitWarning` of type
 * `ShowO2Warning` and code `SHOWO2_CPU_FALLBACK` (`process.on('warning')` receives it; `node --no-warnings` or
 * NODE_NO_WARNINGS=1 silences it).
 */
function warnCpuFallback(reason: string): void {
  if (warnedCpuFallback) return;
  warnedCpuFallback = true;
  process.emitWarning(`device 'auto' runs on the CPU: ${reason}`, { type: 'ShowO2Warning', code: 'SHOWO2_CPU_FALLBACK' });
}

/**
 * The device a load call runs on: `given`, else {@link defaultDevice}. Loads the build of the native addon the device
 * needs, if none is loaded yet (lib/native.ts). `'cuda'` is checked here, before anything is read or downloaded:
 * without a usable GPU it rejects with ERR_NO_GPU (a NoGpuError) carrying the reason {@link runtimeInfo} reports,
 * what was tried and what to do. ERR_CUDA stays for CUDA failures while running. `'cpu'` always passes; `'auto'`
 * passes and, when it will run on the CPU, logs why once per process (the addon falls back to the CPU).
 * @internal
 */
export async function resolveDevice(given: Device | undefined): Promise<Device> {
  const device = given ?? defaultDevice();
  const origin = given === undefined ? ' (from the SHOWO2_DEVICE environment variable)' : '';
  const loaded = addonFor(device, origin);
  if (device === 'cpu') return device;
  if (loaded.variant === 'cpu') {
    warnCpuFallback(loaded.cudaUnavailable!);
    return device;
  }
  if (device === 'auto' && warnedCpuFallback) return device;
  const { cuda } = await callNative(() => loaded.addon.runtimeInfo());
  if (cuda.unavailableReason === null) return device;
  if (device === 'auto') {
    warnCpuFallback(cuda.unavailableReason);
    return device;
  }
  throw noGpuError(origin, cuda.unavailableReason, [`loaded: ${loaded.file} (${loaded.source}, CUDA runtime ${cuda.runtimeVersion})`], []);
}

/**
 * Checks a load call's `convDtype`, `channelsLast` and `activationDtype` (ERR_INVALID_ARGUMENT naming the field, as
 * `${where}.convDtype`).
 * @internal
 */
export function checkKernelOptions(options: KernelOptions | undefined, where: string): void {
  if (isDefined(options?.convDtype) && !isOneOf(options?.convDtype, CONV_DTYPES)) {
    throw invalidParameterError(`${where}.convDtype`, "one of 'fp32', 'bf16'", options?.convDtype);
  }
  if (isDefined(options?.channelsLast) && typeof options?.channelsLast !== 'boolean') {
    throw invalidParameterError(`${where}.channelsLast`, 'a boolean', options?.channelsLast);
  }
  if (isDefined(options?.activationDtype) && !isOneOf(options?.activationDtype, ACTIVATION_DTYPES)) {
    throw invalidParameterError(`${where}.activationDtype`, "one of 'fp32', 'bf16'", options?.activationDtype);
  }
}

/**
 * The kernel choices the addon reads (only those given: the addon's defaults are the documented ones).
 * @internal
 */
export function kernelOptions(options: KernelOptions | undefined): KernelOptions {
  return {
    ...(isDefined(options?.convDtype) ? { convDtype: options?.convDtype } : {}),
    ...(isDefined(options?.channelsLast) ? { channelsLast: options?.channelsLast } : {}),
    ...(isDefined(options?.activationDtype) ? { activationDtype: options?.activationDtype } : {}),
  };
}
