/**
 * The one place that loads the native addon (after sharp's lib/sharp.mjs), and picks which build of it to load.
 *
 * The package ships up to two builds per platform in prebuilds/<platform>-<arch>/ (tools/prebuild.mjs writes them):
 * the CPU build `showo2.napi.glibc.node` and the CUDA build `showo2.napi.glibc.cuda.node` (CPU and CUDA backends;
 * it loads without a driver and then runs on the CPU). One build is loaded per process, by the first call that needs
 * the addon, and the device that call asks for decides which:
 *
 *  - `'cpu'`: the CPU build (the CUDA build only when there is no CPU build);
 *  - `'auto'` (also every call that names no device, e.g. `runtimeInfo()` or `WeightFile.open`): the CUDA build when
 *    an NVIDIA driver is present, else the CPU build;
 *  - `'cuda'`: the CUDA build when a driver is present; otherwise nothing is loaded and a NoGpuError lists what was
 *    tried and what to do.
 *
 * Later requests use the build already loaded: a CUDA build serves `'cpu'` too, and a `'cuda'` request after the CPU
 * build was loaded is a NoGpuError saying so. Overrides, checked first:
 *  - `SHOWO2_BINARY=/path/to/showo2.node`: that file and nothing else (e.g. a build made elsewhere);
 *  - `SHOWO2_VARIANT=cpu|cuda`: that prebuilt build, whatever the driver (the from-source build is skipped);
 *  - a from-source build, build/Release/showo2.node (`npm run build:native`), is used whenever it exists.
 * When prebuilds/ holds no CPU build for this platform, node-gyp-build's own lookup is tried for one (it also reads
 * SHOWO2_PREBUILD and prebuilds beside the node binary, where bundlers put them).
 *
 * Every binary must report the version of the package it belongs to (compiled in from package.json): one from another
 * release is refused. When nothing loads, a single ShowO2Error `ERR_NATIVE_LOAD` lists every attempt and the likely
 * fixes. The addon is loaded lazily, so `import 'showo2'` itself never fails.
 *
 * @module
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { Addon } from '../typings/addon.js';
import { createError, type NoGpuError } from './errors.js';

/** A build of the addon: CPU backend only, or CPU and CUDA backends. */
export type Variant = 'cpu' | 'cuda';

/** What a call asks the loader for: the device it will run on (see {@link Device} in runtime.ts). */
export type VariantRequest = 'cpu' | 'cuda' | 'auto';

/** A place the addon may be: `resolve()` returns a path to try, or throws to say why there is none. */
export interface AddonCandidate {
  label: string;
  resolve(): string;
}

/** The platform facts the loader decides by and its messages report (injectable so tests can pin them). */
export interface LoadEnvironment {
  platform: string;
  arch: string;
  nodeVersion: string;
  abi: string;
  napiVersion: string;
  libc: 'glibc' | 'musl' | null;
  /** The NVIDIA kernel driver's version (`'present'` where the version is not known), or null when none was found. */
  nvidiaDriver: string | null;
}

/** The package root: dist/native.js lives one level below it. */
export const packageRoot = path.resolve(__dirname, '..');

/** The file whose presence tells that the NVIDIA kernel driver is loaded (Linux). */
export const NVIDIA_DRIVER_FILE = '/proc/driver/nvidia/version';

/** The command that builds the addon from source in an installed package (README, Install). */
export const BUILD_FROM_SOURCE = 'npm run build:native --prefix node_modules/showo2';

/**
 * The NVIDIA driver, found without loading anything: on Linux the kernel module's version from
 * /proc/driver/nvidia/version, on Windows `'present'` when System32 holds nvcuda.dll; null when there is none.
 */
export function findNvidiaDriver(platform: string = process.platform): string | null {
  if (platform === 'linux') {
    let text: string;
    try {
      text = fs.readFileSync(NVIDIA_DRIVER_FILE, 'utf8');
    } catch {
      return null;
    }
    return parseNvidiaDriverVersion(text);
  }
  if (platform === 'win32') {
    const dll = path.join(process.env.SystemRoot ?? 'C:\\Windows', 'System32', 'nvcuda.dll');
    return fs.existsSync(dll) ? 'present' : null;
  }
  return null;
}

/**
 * The driver version in /proc/driver/nvidia/version's text ("NVRM version: NVIDIA UNIX x86_64 Kernel Module
 * 550.54.15 ..." or "... Open Kernel Module for x86_64  570.86.15 ..."), or `'present'` when it names none.
 */
export function parseNvidiaDriverVersion(text: string): string {
  return /Kernel Module(?: for \S+)?\s+(\d+(?:\.\d+)+)/.exec(text)?.[1] ?? 'present';
}

/** Where {@link findNvidiaDriver} looked, for messages: "no NVIDIA driver found (...)". */
export function noDriverReason(platform: string): string {
  if (platform === 'linux') return `no NVIDIA driver found (${NVIDIA_DRIVER_FILE} does not exist)`;
  if (platform === 'win32') return 'no NVIDIA driver found (System32\\nvcuda.dll does not exist)';
  return `CUDA is not available on ${platform}`;
}

export function currentEnvironment(): LoadEnvironment {
  const libc = process.platform !== 'linux' ? null : fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
  return {
    platform: process.platform,
    arch: process.arch,
    nodeVersion: process.versions.node,
    abi: process.versions.modules,
    napiVersion: process.versions.napi ?? 'unknown',
    libc,
    nvidiaDriver: findNvidiaDriver(),
  };
}

const packageVersions = new Map<string, string>();

/** The `version` of the package at `root` (read once). Every binary must have been built for it. */
export function packageVersion(root: string = packageRoot): string {
  let version = packageVersions.get(root);
  if (version === undefined) {
    version = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
    packageVersions.set(root, version);
  }
  return version;
}

/**
 * The prebuilt binaries in prebuilds/<platform>-<arch>/ that node-gyp-build would accept for this runtime, in its
 * order of preference: ABI-tagged before N-API-tagged, then the most tags (e.g. `node.napi.glibc.node` before
 * `node.napi.node`). File names are dot-separated tags ending in `.node`; tools/prebuild.mjs writes
 * `showo2.napi.glibc.node` and `showo2.napi.glibc.cuda.node` (`.musl` on Alpine, no libc tag off Linux).
 */
export function prebuiltBinaries(root: string, env: LoadEnvironment = currentEnvironment()): string[] {
  const dir = path.join(root, 'prebuilds', `${env.platform}-${env.arch}`);
  let files: string[];
  try {
    files = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const accepted: { file: string; abiSpecific: boolean; specificity: number }[] = [];
  for (const file of files) {
    if (!file.endsWith('.node')) continue;
    const tags = file.split('.').slice(0, -1);
    const abiTag = tags.find((t) => /^abi\d+$/.test(t));
    const libcTag = tags.find((t) => t === 'glibc' || t === 'musl');
    if (abiTag !== undefined && abiTag !== `abi${env.abi}`) continue;
    if (abiTag === undefined && !tags.includes('napi')) continue;
    if (libcTag !== undefined && libcTag !== env.libc) continue;
    const specificity = tags.filter((t) => /^(abi\d+|napi|glibc|musl|node)$/.test(t)).length;
    accepted.push({ file: path.join(dir, file), abiSpecific: abiTag !== undefined, specificity });
  }
  accepted.sort(
    (a, b) =>
      Number(b.abiSpecific) - Number(a.abiSpecific) || b.specificity - a.specificity || a.file.localeCompare(b.file),
  );
  return accepted.map((a) => a.file);
}

/** The variant a prebuilt binary's name says it is: the `cuda` tag marks the CUDA build. */
export function variantOfFile(file: string): Variant {
  return path.basename(file).split('.').slice(0, -1).includes('cuda') ? 'cuda' : 'cpu';
}

/** The prebuilt binaries that fit this runtime, by variant, each list in order of preference. */
export function prebuiltVariants(root: string, env: LoadEnvironment = currentEnvironment()): Record<Variant, string[]> {
  const files = prebuiltBinaries(root, env);
  return { cpu: files.filter((f) => variantOfFile(f) === 'cpu'), cuda: files.filter((f) => variantOfFile(f) === 'cuda') };
}

/** Which binaries to try for a request, and what stands in the way of CUDA if anything does. */
export interface LoadPlan {
  /** Tried in order; the first that loads (and has the package's version) wins. */
  candidates: AddonCandidate[];
  /** Why these candidates: `device 'auto'`, `SHOWO2_VARIANT=cpu`, ... (shown by `showo2 doctor`). */
  reason: string;
  /**
   * Why the CUDA build is not among the candidates (no driver, none shipped, the environment chose the CPU build), or
   * null when it is, or when the binary decides (SHOWO2_BINARY, a from-source build).
   */
  cudaBlocked: string | null;
}

const SOURCE_BUILD_LABEL = 'from-source build';

function sourceBuild(root: string): AddonCandidate {
  return { label: SOURCE_BUILD_LABEL, resolve: () => path.join(root, 'build', 'Release', 'showo2.node') };
}

function prebuiltCandidates(variant: Variant, files: string[], root: string, env: LoadEnvironment): AddonCandidate[] {
  const label = variant === 'cuda' ? 'CUDA build' : 'CPU build';
  if (files.length > 0) return files.map((file) => ({ label, resolve: () => file }));
  if (variant === 'cpu') {
    // Nothing in prebuilds/ here: node-gyp-build's own lookup also reads SHOWO2_PREBUILD and prebuilds beside the
    // node binary (how prebuildify packages are found in bundled apps).
    return [
      {
        label: `${label} (node-gyp-build lookup)`,
        resolve: () => {
          const file = (require('node-gyp-build') as { resolve(dir: string): string }).resolve(root);
          if (variantOfFile(file) === 'cuda') throw new Error(`node-gyp-build found only the CUDA build ${file}`);
          return file;
        },
      },
    ];
  }
  const dir = path.join(root, 'prebuilds', `${env.platform}-${env.arch}`);
  return [
    {
      label,
      resolve: () => {
        throw new Error(`none for ${env.platform}-${env.arch}${env.libc ? ` (${env.libc})` : ''} in ${dir}`);
      },
    },
  ];
}

/**
 * The binaries to try for `request`, in order (see the module comment for the rules), given the environment
 * variables `environ` (SHOWO2_BINARY, SHOWO2_VARIANT). Throws ERR_NATIVE_LOAD for a SHOWO2_VARIANT that is neither
 * `cpu` nor `cuda`.
 */
export function planLoad(
  request: VariantRequest,
  root: string = packageRoot,
  env: LoadEnvironment = currentEnvironment(),
  environ: NodeJS.ProcessEnv = process.env,
): LoadPlan {
  const binary = environ.SHOWO2_BINARY;
  if (binary !== undefined && binary !== '') {
    return {
      candidates: [{ label: 'SHOWO2_BINARY', resolve: () => path.resolve(binary) }],
      reason: `SHOWO2_BINARY=${binary}`,
      cudaBlocked: null,
    };
  }
  const prebuilt = prebuiltVariants(root, env);
  const forced = environ.SHOWO2_VARIANT;
  if (forced !== undefined && forced !== '') {
    if (forced !== 'cpu' && forced !== 'cuda') {
      throw createError(
        'ERR_NATIVE_LOAD',
        `The SHOWO2_VARIANT environment variable must be 'cpu' or 'cuda', not '${forced}': unset it to let the ` +
          "device choose the build of the native addon",
      );
    }
    // SHOWO2_VARIANT=cpu and device 'cuda': nothing to try (loadVariant says why).
    const wanted = request === 'cuda' && forced === 'cpu' ? [] : prebuiltCandidates(forced, prebuilt[forced], root, env);
    return {
      candidates: wanted,
      reason: `SHOWO2_VARIANT=${forced}`,
      cudaBlocked: forced === 'cpu' ? 'SHOWO2_VARIANT=cpu selects the CPU build of the native addon' : null,
    };
  }
  // What keeps the prebuilt CUDA build from being useful here.
  let cudaBlocked: string | null = null;
  if (prebuilt.cuda.length === 0) {
    const shipped = prebuilt.cpu.map((f) => path.basename(f)).join(', ');
    cudaBlocked = `this installation has no CUDA build of the native addon for ${env.platform}-${env.arch}` +
      (shipped ? ` (it has ${shipped})` : '');
  } else if (env.nvidiaDriver === null) {
    cudaBlocked = noDriverReason(env.platform);
  }
  const candidates = [sourceBuild(root)];
  if (request === 'cpu') {
    // The CPU build: smaller, and never initialises CUDA. The CUDA build also runs on the CPU, so it is the fallback.
    candidates.push(...prebuiltCandidates('cpu', prebuilt.cpu, root, env));
    if (prebuilt.cuda.length > 0) candidates.push(...prebuiltCandidates('cuda', prebuilt.cuda, root, env));
    return {
      candidates,
      reason: "device 'cpu'",
      cudaBlocked:
        cudaBlocked ??
        "the CPU build of the native addon was loaded for an earlier device 'cpu' request, and a process loads one " +
          "build: ask for 'cuda' or 'auto' before anything else, or set SHOWO2_VARIANT=cuda",
    };
  }
  if (request === 'cuda') {
    if (cudaBlocked === null) candidates.push(...prebuiltCandidates('cuda', prebuilt.cuda, root, env));
    return { candidates, reason: "device 'cuda'", cudaBlocked };
  }
  if (cudaBlocked === null) {
    candidates.push(...prebuiltCandidates('cuda', prebuilt.cuda, root, env));
    candidates.push(...prebuiltCandidates('cpu', prebuilt.cpu, root, env));
  } else {
    candidates.push(...prebuiltCandidates('cpu', prebuilt.cpu, root, env));
    if (prebuilt.cpu.length === 0 && prebuilt.cuda.length > 0) {
      candidates.push(...prebuiltCandidates('cuda', prebuilt.cuda, root, env));
    }
  }
  return {
    candidates,
    reason: `device 'auto', ${env.nvidiaDriver === null ? noDriverReason(env.platform) : `NVIDIA driver ${env.nvidiaDriver}`}`,
    cudaBlocked,
  };
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0]!.trim();
}

/** One candidate that did not load, and why. */
export interface LoadAttempt {
  label: string;
  detail: string;
}

/** The ERR_NATIVE_LOAD message: every attempt, then what to do about it. */
export function nativeLoadErrorMessage(attempts: LoadAttempt[], env: LoadEnvironment): string {
  const target = `${env.platform}-${env.arch}${env.libc ? ` (${env.libc})` : ''}`;
  const lines = [
    `Could not load the showo2 native addon for ${target}, Node.js ${env.nodeVersion} (ABI ${env.abi}, N-API ${env.napiVersion}).`,
    'Tried:',
    ...attempts.map((a) => `  - ${a.label}: ${a.detail}`),
    'Possible solutions:',
  ];
  const details = attempts.map((a) => a.detail).join('\n');
  if (/built for showo2 /.test(details)) {
    lines.push(
      '  - The binary belongs to another release of showo2: reinstall the package (rm -rf node_modules/showo2 &&',
      '    npm install) so that its files match, or rebuild the binary from this version\'s source (below).',
    );
  }
  lines.push(
    `  - Build it from source: ${BUILD_FROM_SOURCE} (in the showo2 repository: npm run build:native)`,
    '  - Install the build toolchain first: a C++17 compiler, CMake >= 3.20 and Ninja or make',
    '    (Debian/Ubuntu: apt-get install -y g++ cmake ninja-build; macOS: xcode-select --install && brew install cmake).',
    `  - If node_modules was installed on another OS, CPU or Node.js version, reinstall it on this ${target} machine.`,
  );
  if (/GLIBC|GLIBCXX|CXXABI/.test(details)) {
    lines.push('  - The binary needs a newer C/C++ runtime than this system has: build from source here.');
  }
  if (/cuda|libcu/i.test(details)) {
    lines.push(
      '  - A CUDA library failed to load: install the NVIDIA driver, use the CPU build (SHOWO2_VARIANT=cpu), or build',
      `    without CUDA: SHOWO2_CUDA=OFF ${BUILD_FROM_SOURCE}`,
    );
  }
  return lines.join('\n');
}

/**
 * Tries the candidates in order; returns the first binary that loads and reports `expectedVersion`, with the
 * attempts that failed before it (or all of them, and no result).
 */
export function tryCandidates(
  candidates: AddonCandidate[],
  load: (file: string) => unknown = require,
  expectedVersion: string | null = packageVersion(),
): { loaded: { addon: Addon; file: string; label: string } | null; attempts: LoadAttempt[] } {
  const attempts: LoadAttempt[] = [];
  const tried = new Set<string>();
  for (const candidate of candidates) {
    let file: string;
    try {
      file = candidate.resolve();
    } catch (err) {
      attempts.push({ label: candidate.label, detail: firstLine(err) });
      continue;
    }
    if (tried.has(file)) continue;
    tried.add(file);
    if (!fs.existsSync(file)) {
      attempts.push({ label: candidate.label, detail: `${file}: not found` });
      continue;
    }
    let addon: Addon;
    try {
      addon = load(file) as Addon;
    } catch (err) {
      attempts.push({ label: candidate.label, detail: `${file}: ${firstLine(err)}` });
      continue;
    }
    if (expectedVersion !== null && addon.version !== expectedVersion) {
      const built = typeof addon.version === 'string' ? addon.version : 'an unknown version (it reports none)';
      attempts.push({
        label: candidate.label,
        detail: `${file}: built for showo2 ${built}, but this package is showo2 ${expectedVersion}`,
      });
      continue;
    }
    return { loaded: { addon, file, label: candidate.label }, attempts };
  }
  return { loaded: null, attempts };
}

/**
 * Loads the first candidate that works, or throws ERR_NATIVE_LOAD naming every failure.
 * `load` is `require` in production; tests pass candidates pointing at missing or broken files. A binary built for
 * another version than `expectedVersion` (null: any) is refused.
 */
export function loadAddonFrom(
  candidates: AddonCandidate[],
  env: LoadEnvironment = currentEnvironment(),
  load: (file: string) => unknown = require,
  expectedVersion: string | null = packageVersion(),
): { addon: Addon; file: string } {
  const { loaded, attempts } = tryCandidates(candidates, load, expectedVersion);
  if (loaded === null) throw createError('ERR_NATIVE_LOAD', nativeLoadErrorMessage(attempts, env));
  return { addon: loaded.addon, file: loaded.file };
}

/** What the loader loaded, and why. */
export interface LoadedAddon {
  addon: Addon;
  /** The binary's path. */
  file: string;
  /** The build it is, as the binary itself reports. */
  variant: Variant;
  /** Where it came from: `CPU build`, `CUDA build` (prebuilt), `from-source build` or `SHOWO2_BINARY`. */
  source: string;
  /** What chose it: the first request's device, or the environment variable that overrode it. */
  reason: string;
  /** For a CPU build, why it and not a CUDA build is loaded (the line `device: 'auto'` logs); null for a CUDA build. */
  cudaUnavailable: string | null;
  /** The candidates before it that did not load. */
  attempts: LoadAttempt[];
}

/** A NoGpuError for device 'cuda': the reason, what was tried, and what to do. */
export function noGpuError(origin: string, reason: string, tried: string[], todo: string[]): NoGpuError {
  const lines = [
    `device 'cuda'${origin} is unavailable: ${reason}. Use device 'cpu', or 'auto' to use a GPU only when one is ` +
      "usable (runtimeInfo() or 'showo2 doctor' shows what the GPU setup lacks)",
  ];
  if (tried.length > 0) lines.push('Tried:', ...tried.map((t) => `  - ${t}`));
  if (todo.length > 0) lines.push('To use the GPU:', ...todo.map((t) => `  - ${t}`));
  return createError('ERR_NO_GPU', lines.join('\n'));
}

/** What to do about `cudaBlocked`, for the NoGpuError. */
function cudaTodo(env: LoadEnvironment): string[] {
  if (env.nvidiaDriver === null) {
    return [
      'install the NVIDIA driver (CUDA 13 needs version 580 or newer) and check that nvidia-smi lists the GPU; in a ' +
        'container, pass the GPU through (docker run --gpus all)',
    ];
  }
  return [
    `build the addon with CUDA from source: SHOWO2_CUDA=ON ${BUILD_FROM_SOURCE} (needs the CUDA toolkit), or point ` +
      'SHOWO2_BINARY at a CUDA build',
  ];
}

/**
 * Loads the addon for `request` from `root` (see the module comment), or throws: ERR_NO_GPU when `request` is
 * `'cuda'` and no CUDA build can be loaded here, ERR_NATIVE_LOAD when no binary loads. `origin` is added to the
 * NoGpuError's first line (where the `'cuda'` came from).
 */
export function loadVariant(
  request: VariantRequest,
  root: string = packageRoot,
  env: LoadEnvironment = currentEnvironment(),
  environ: NodeJS.ProcessEnv = process.env,
  load: (file: string) => unknown = require,
  origin = '',
): LoadedAddon {
  const plan = planLoad(request, root, env, environ);
  const expectedVersion = packageVersion(root);
  const { loaded, attempts } = tryCandidates(plan.candidates, load, expectedVersion);
  if (loaded === null) {
    if (request === 'cuda' && plan.cudaBlocked !== null) {
      const tried = attempts.map((a) => `${a.label}: ${a.detail}`);
      const cuda = prebuiltVariants(root, env).cuda;
      if (cuda.length > 0 && env.nvidiaDriver === null) {
        tried.push(`CUDA build: ${cuda[0]}: present, not loaded (it needs the NVIDIA driver)`);
      }
      tried.push(`NVIDIA driver: ${env.nvidiaDriver ?? noDriverReason(env.platform).replace(/^no NVIDIA driver found /, 'none ')}`);
      const todo = plan.reason === 'SHOWO2_VARIANT=cpu' ? ['unset SHOWO2_VARIANT, or set it to cuda'] : cudaTodo(env);
      throw noGpuError(origin, plan.cudaBlocked, tried, todo);
    }
    throw createError('ERR_NATIVE_LOAD', nativeLoadErrorMessage(attempts, env));
  }
  const variant: Variant = loaded.addon.variant === 'cuda' ? 'cuda' : 'cpu';
  let cudaUnavailable: string | null = null;
  if (variant === 'cpu') {
    const cudaFailed = attempts.filter((a) => a.label === 'CUDA build');
    if (loaded.label === SOURCE_BUILD_LABEL) {
      cudaUnavailable = `the from-source build ${loaded.file} has no CUDA backend (it was built with SHOWO2_CUDA=OFF, or ` +
        'without nvcc): rebuild it with SHOWO2_CUDA=ON and the CUDA toolkit, or delete it to use the prebuilt builds';
    } else if (loaded.label === 'SHOWO2_BINARY') {
      cudaUnavailable = `SHOWO2_BINARY=${environ.SHOWO2_BINARY} is a build without the CUDA backend`;
    } else if (cudaFailed.length > 0) {
      cudaUnavailable = `the CUDA build did not load (${cudaFailed.map((a) => a.detail).join('; ')})`;
    } else {
      cudaUnavailable = plan.cudaBlocked ?? 'the CPU build of the native addon is loaded';
    }
  }
  return {
    addon: loaded.addon,
    file: loaded.file,
    variant,
    source: loaded.label,
    // A from-source build wins whatever the device asked for.
    reason: loaded.label === SOURCE_BUILD_LABEL ? 'a from-source build is present (npm run build:native)' : plan.reason,
    cudaUnavailable,
    attempts,
  };
}

let current: LoadedAddon | undefined;

/**
 * The addon for a call that will run on `request`, loaded by the first call (the build it loads stays for the
 * process). A `'cuda'` request when a CPU build is already loaded is ERR_NO_GPU naming why that build was loaded.
 * Throws ERR_NATIVE_LOAD (again on every call) when no binary loads.
 */
export function addonFor(request: VariantRequest, origin = ''): LoadedAddon {
  current ??= loadVariant(request, packageRoot, currentEnvironment(), process.env, require, origin);
  if (request === 'cuda' && current.variant === 'cpu') {
    throw noGpuError(origin, current.cudaUnavailable!, [`loaded: ${current.file} (${current.source}, chosen by ${current.reason})`], []);
  }
  return current;
}

/** The addon, loaded on first call (a request that names no device: `'auto'`). Throws ERR_NATIVE_LOAD when no binary loads. */
export function addon(): Addon {
  return addonFor('auto').addon;
}

/** The path of the binary that `addon()` loaded. */
export function addonFile(): string {
  return addonFor('auto').file;
}

/** What is loaded, loading it as {@link addon} does. */
export function loadedAddon(): LoadedAddon {
  return addonFor('auto');
}
