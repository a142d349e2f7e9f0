/**
 * `showo2 info` (the runtime in a few lines) and `showo2 doctor` (what this machine offers, and what to do about
 * what it lacks).
 *
 * @module
 * @internal
 */
import * as os from 'node:os';
import * as path from 'node:path';

import { createError, ShowO2Error } from '../errors.js';
import { BUILD_FROM_SOURCE, currentEnvironment, packageRoot, prebuiltVariants } from '../native.js';
import { defaultDevice, runtimeInfo, type CudaInfo, type RuntimeInfo } from '../runtime.js';
import type { ShowO2ModelInfo } from '../model.js';
import { EXIT_FAILURE, printJson, stringValue, type CliIo, type Command } from './common.js';
import { LOAD_OPTIONS, loadModel } from './load-model.js';
import { formatBytes } from './progress.js';

function printCuda(cuda: CudaInfo, io: CliIo, indent: string): void {
  if (!cuda.built) {
    io.out(`${indent}cuda:         not in the loaded build`);
  } else {
    io.out(`${indent}cuda:         runtime ${cuda.runtimeVersion}, driver ${cuda.driverVersion ?? 'none'}`);
    for (const d of cuda.devices) {
      io.out(
        `${indent}  device ${d.index}: ${d.name}, compute ${d.computeCapability}, ${formatBytes(d.totalMemoryBytes)}, ` +
          `${d.multiprocessors} SMs${d.supported ? '' : ' (unsupported)'}`,
      );
    }
  }
  io.out(`${indent}gpu:          ${cuda.unavailableReason ? `unavailable: ${cuda.unavailableReason}` : 'available'}`);
}

function printInfo(info: RuntimeInfo, io: CliIo): void {
  io.out(`showo2 ${info.version} (${info.platform}, Node.js ${process.versions.node})`);
  io.out(`addon:        ${info.addonPath}`);
  io.out(`build:        ${info.variant} (chosen by ${info.variantReason})`);
  io.out(`cpu features: ${info.cpuFeatures}`);
  io.out(`threads:      ${info.defaultThreadCount}`);
  printCuda(info.cuda, io, '');
}

function printModelInfo(m: ShowO2ModelInfo, io: CliIo): void {
  const billions = (n: number) => (n >= 1e8 ? `${(n / 1e9).toFixed(3)} B` : `${(n / 1e6).toFixed(2)} M`);
  const p = m.parameters;
  io.out(`model:        ${m.source}`);
  io.out(`  directory:  ${m.files.modelDir}`);
  io.out(`  weights:    ${m.files.weights}`);
  io.out(`  vae:        ${m.files.vae}`);
  io.out(`  tokenizer:  ${m.files.tokenizer ?? 'bundled Qwen2.5'}`);
  io.out(`  device:     ${m.device} (weights: ${m.weightDtype})`);
  io.out(
    `  parameters: ${billions(p.total)} (LLM ${billions(p.llm)}, semantic ${billions(p.semantic)}, flow head ` +
      `${billions(p.flowHead)}, projections ${billions(p.projections)}, VAE ${billions(p.vae)})`,
  );
  io.out(`  images:     ${m.imageResolution}x${m.imageResolution} px, ${m.tokensPerImage} tokens each`);
  io.out(`  context:    ${m.contextLength} tokens, vocabulary ${m.vocabSize}`);
}

export const info: Command = {
  summary: 'Show the version, native binary, CPU features and CUDA status; with --model, the model too',
  usage: 'info [--model DIR|REPO] [--json]',
  positionals: [],
  options: {
    ...LOAD_OPTIONS,
    model: {
      type: 'string',
      short: 'm',
      value: 'DIR|REPO',
      description:
        'Also load this model (a directory or a Hugging Face repo id) and show its files, parameters and sizes. ' +
        'Defaults to none (the runtime only).',
    },
  },
  async run(ctx, _positionals, values) {
    const runtime = await runtimeInfo();
    let modelInfo: ShowO2ModelInfo | undefined;
    if (stringValue(values, 'model') !== undefined) {
      const model = await loadModel(ctx, values);
      modelInfo = model.info;
      model.dispose();
    }
    if (ctx.json) {
      printJson(ctx.io, modelInfo ? { ...runtime, model: modelInfo } : runtime);
    } else {
      printInfo(runtime, ctx.io);
      if (modelInfo) printModelInfo(modelInfo, ctx.io);
    }
  },
};

/** Where the loaded binary came from, in the terms of the loader's candidate list (lib/native.ts). */
function binarySource(file: string): string {
  const relative = path.relative(packageRoot, file);
  if (relative === path.join('build', 'Release', 'showo2.node')) return 'from-source build';
  if (relative.startsWith(`prebuilds${path.sep}`)) return 'prebuilt binary shipped in the package';
  return 'SHOWO2_BINARY';
}

/** Everything `doctor` reports (its `--json` output). */
export interface DoctorReport {
  node: { version: string; platform: string; arch: string; libc: string | null; abi: string; napi: string; supported: boolean };
  addon: {
    loaded: boolean;
    path: string | null;
    source: string | null;
    /** The build loaded: `cpu` or `cuda`; null when none loaded. */
    variant: 'cpu' | 'cuda' | null;
    /** What chose it (the device asked for, or SHOWO2_VARIANT / SHOWO2_BINARY). */
    reason: string | null;
    error: { code: string; name: string; message: string } | null;
  };
  /** The prebuilt binaries this installation ships for this platform, by build (null: none), and the NVIDIA driver found. */
  builds: { cpu: string | null; cuda: string | null; nvidiaDriver: string | null };
  cpu: { model: string; logicalCores: number; features: string | null; defaultThreads: number | null; memoryBytes: number };
  cuda: CudaInfo | null;
  device: { default: string; fromEnvironment: string | null };
  suggestions: string[];
}

export async function doctorReport(): Promise<DoctorReport> {
  const env = currentEnvironment();
  const nodeMajor = Number(env.nodeVersion.split('.')[0]);
  const report: DoctorReport = {
    node: {
      version: env.nodeVersion,
      platform: env.platform,
      arch: env.arch,
      libc: env.libc,
      abi: env.abi,
      napi: env.napiVersion,
      supported: nodeMajor >= 20,
    },
    addon: { loaded: false, path: null, source: null, variant: null, reason: null, error: null },
    builds: {
      cpu: prebuiltVariants(packageRoot, env).cpu[0] ?? null,
      cuda: prebuiltVariants(packageRoot, env).cuda[0] ?? null,
      nvidiaDriver: env.nvidiaDriver,
    },
    cpu: {
      model: os.cpus()[0]?.model.trim() ?? 'unknown',
      logicalCores: os.availableParallelism(),
      features: null,
      defaultThreads: null,
      memoryBytes: os.totalmem(),
    },
    cuda: null,
    device: { default: defaultDevice(), fromEnvironment: process.env.SHOWO2_DEVICE ?? null },
    suggestions: [],
  };
  const suggest = (s: string) => report.suggestions.push(s);
  if (!report.node.supported) suggest(`Node.js ${env.nodeVersion} is older than showo2 supports: install Node.js 20 or newer.`);
  try {
    const runtime = await runtimeInfo();
    report.addon = {
      loaded: true,
      path: runtime.addonPath,
      source: binarySource(runtime.addonPath),
      variant: runtime.variant,
      reason: runtime.variantReason,
      error: null,
    };
    report.cpu.features = runtime.cpuFeatures;
    report.cpu.defaultThreads = runtime.defaultThreadCount;
    report.cuda = runtime.cuda;
  } catch (err) {
    const error = err instanceof ShowO2Error ? err : createError('ERR_INTERNAL', String(err));
    report.addon.error = { code: error.code, name: error.name, message: error.message };
    suggest(`The native addon does not load: build it from source with "${BUILD_FROM_SOURCE}" (see the error above).`);
    return report;
  }
  if (env.arch === 'x64' && !/using avx2/.test(report.cpu.features ?? '')) {
    suggest('This CPU lacks AVX2/FMA, so the portable CPU kernels run: expect generation to be several times slower.');
  }
  const cuda = report.cuda!;
  const usable = cuda.devices.find((d) => d.supported);
  if (!cuda.built) {
    const { cuda: cudaBuild, nvidiaDriver } = report.builds;
    if (nvidiaDriver !== null && cudaBuild !== null) {
      suggest(`The CPU build is loaded although an NVIDIA driver is installed: ${cuda.unavailableReason}.`);
    } else if (nvidiaDriver !== null) {
      suggest(
        `An NVIDIA driver is installed but this installation has no CUDA build for ${env.platform}-${env.arch}: build one ` +
          `with "SHOWO2_CUDA=ON ${BUILD_FROM_SOURCE}" (needs the CUDA toolkit).`,
      );
    } else if (cudaBuild !== null) {
      suggest(
        `Models run on the CPU: ${cuda.unavailableReason}. For a GPU, install the NVIDIA driver: the CUDA build is ` +
          "installed, and device 'auto' or 'cuda' loads it.",
      );
    } else {
      suggest(`Models run on the CPU. For a GPU, install the NVIDIA driver and build with "SHOWO2_CUDA=ON ${BUILD_FROM_SOURCE}".`);
    }
  } else if (cuda.unavailableReason) {
    suggest(`The GPU cannot be used: ${cuda.unavailableReason}. Models run on the CPU; "--device cuda" fails until that is fixed.`);
  } else if (usable && report.device.default === 'cpu') {
    suggest(`${usable.name} is ready: pass "--device cuda" (or auto), or set SHOWO2_DEVICE=auto, to run on it; the default is the CPU.`);
  }
  if (report.device.fromEnvironment !== null && report.device.default !== report.device.fromEnvironment) {
    suggest(`SHOWO2_DEVICE="${report.device.fromEnvironment}" is not one of cpu, cuda, auto and is ignored.`);
  }
  if (report.suggestions.length === 0) suggest('Nothing to fix: showo2 can use everything this machine offers.');
  return report;
}

function printDoctor(r: DoctorReport, io: CliIo): void {
  io.out('Node.js');
  io.out(`  version:      ${r.node.version} (ABI ${r.node.abi}, N-API ${r.node.napi})${r.node.supported ? '' : ' - too old'}`);
  io.out(`  platform:     ${r.node.platform}-${r.node.arch}${r.node.libc ? ` (${r.node.libc})` : ''}`);
  io.out('Native binary');
  const installed = (['cpu', 'cuda'] as const).filter((v) => r.builds[v] !== null);
  io.out(`  installed:    ${installed.length > 0 ? `prebuilt ${installed.join(' and ')} build${installed.length > 1 ? 's' : ''}` : 'no prebuilt binary for this platform'}`);
  if (r.addon.loaded) {
    io.out(`  loaded:       ${r.addon.path}`);
    io.out(`  from:         ${r.addon.source}`);
    io.out(`  build:        ${r.addon.variant} (chosen by ${r.addon.reason})`);
  } else {
    io.out(`  not loaded:   ${r.addon.error!.code}`);
    for (const line of r.addon.error!.message.split('\n')) io.out(`    ${line}`);
  }
  io.out('CPU');
  io.out(`  model:        ${r.cpu.model}`);
  io.out(`  cores:        ${r.cpu.logicalCores} logical`);
  if (r.cpu.features !== null) io.out(`  features:     ${r.cpu.features}`);
  if (r.cpu.defaultThreads !== null) io.out(`  threads:      ${r.cpu.defaultThreads} by default (--threads N changes it)`);
  io.out(`  memory:       ${formatBytes(r.cpu.memoryBytes)}`);
  io.out('CUDA');
  io.out(`  driver:       ${r.builds.nvidiaDriver !== null ? `NVIDIA ${r.builds.nvidiaDriver}` : 'none found'}`);
  if (r.cuda) printCuda(r.cuda, io, '  ');
  else io.out('  unknown (the native binary did not load)');
  io.out(`  default:      --device ${r.device.default}${r.device.fromEnvironment !== null ? ` (SHOWO2_DEVICE=${r.device.fromEnvironment})` : ''}`);
  io.out('Suggestions');
  for (const s of r.suggestions) io.out(`  - ${s}`);
}

export const doctor: Command = {
  summary: 'Check what this machine offers: Node.js, the native binary, CPU features, CUDA, and what to fix',
  usage: 'doctor [--json]',
  positionals: [],
  options: {},
  details: 'Exits 1 when the native binary does not load (nothing can run), else 0.',
  async run(ctx) {
    const report = await doctorReport();
    if (ctx.json) printJson(ctx.io, report);
    else printDoctor(report, ctx.io);
    return report.addon.loaded ? undefined : EXIT_FAILURE;
  },
};
