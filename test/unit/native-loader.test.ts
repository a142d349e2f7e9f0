// The loader (lib/native.ts): its failure message, simulated by pointing it at candidate binaries that are missing or
// broken; which build it picks for each device, driver and environment override (fake prebuilds/ trees and a fake
// `require`, so every case runs on any machine); and the version check.
import * as fs from 'node:fs';
import * as path from 'node:path';

import test from 'ava';

import { NativeLoadError, NoGpuError } from 'showo2';
import {
  loadAddonFrom,
  loadVariant,
  packageVersion,
  parseNvidiaDriverVersion,
  planLoad,
  prebuiltBinaries,
  prebuiltVariants,
  type LoadEnvironment,
} from '../../dist/native.js';
import { repoAddonPath, repoRoot, tempDir } from '../helpers.js';

const env: LoadEnvironment = {
  platform: 'linux',
  arch: 'x64',
  nodeVersion: '20.20.2',
  abi: '115',
  napiVersion: '10',
  libc: 'glibc',
  nvidiaDriver: null,
};
const withDriver: LoadEnvironment = { ...env, nvidiaDriver: '550.54.15' };

const solutions = [
  'Possible solutions:',
  '  - Build it from source: npm run build:native --prefix node_modules/showo2 (in the showo2 repository: npm run build:native)',
  '  - Install the build toolchain first: a C++17 compiler, CMake >= 3.20 and Ninja or make',
  '    (Debian/Ubuntu: apt-get install -y g++ cmake ninja-build; macOS: xcode-select --install && brew install cmake).',
  '  - If node_modules was installed on another OS, CPU or Node.js version, reinstall it on this linux-x64 (glibc) machine.',
];

test('no binary anywhere: one ERR_NATIVE_LOAD listing every attempt and the possible solutions', (t) => {
  const dir = tempDir();
  const err = t.throws(
    () =>
      loadAddonFrom(
        [
          { label: 'from-source build', resolve: () => path.join(dir, 'build', 'Release', 'showo2.node') },
          { label: 'prebuilt binary', resolve: () => { throw new Error('none for linux-x64 in /pkg/prebuilds\nsecond line'); } },
        ],
        env,
      ),
    { instanceOf: NativeLoadError, code: 'ERR_NATIVE_LOAD' },
  );
  t.is(
    err!.message,
    [
      'Could not load the showo2 native addon for linux-x64 (glibc), Node.js 20.20.2 (ABI 115, N-API 10).',
      'Tried:',
      `  - from-source build: ${path.join(dir, 'build', 'Release', 'showo2.node')}: not found`,
      '  - prebuilt binary: none for linux-x64 in /pkg/prebuilds',
      ...solutions,
    ].join('\n'),
  );
});

test('a binary that exists but does not load is reported with the loader\'s reason', (t) => {
  const dir = tempDir();
  const broken = path.join(dir, 'showo2.node');
  fs.writeFileSync(broken, 'not an ELF file');
  const err = t.throws(() => loadAddonFrom([{ label: 'prebuilt binary', resolve: () => broken }], env), {
    code: 'ERR_NATIVE_LOAD',
  });
  t.true(err!.message.includes(`  - prebuilt binary: ${broken}: `));
  t.regex(err!.message, /invalid ELF header|not a valid|file too short/i);
});

test('the message adds hints for C++ runtime and CUDA library failures', (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'showo2.node');
  fs.writeFileSync(file, '');
  const fail = (message: string) => () => {
    throw new Error(message);
  };
  const glibc = t.throws(() =>
    loadAddonFrom([{ label: 'x', resolve: () => file }], env, fail("/lib/libstdc++.so.6: version `GLIBCXX_3.4.32' not found")),
  );
  t.true(glibc!.message.includes('  - The binary needs a newer C/C++ runtime than this system has: build from source here.'));
  const cuda = t.throws(() =>
    loadAddonFrom([{ label: 'x', resolve: () => file }], env, fail('libcudart.so.13: cannot open shared object file')),
  );
  t.true(cuda!.message.includes('SHOWO2_CUDA=OFF npm run build:native --prefix node_modules/showo2'));
  t.false(glibc!.message.includes('SHOWO2_CUDA=OFF'));
});

test('the first candidate that loads wins, after earlier failures', (t) => {
  const dir = tempDir();
  const [a, b, c] = ['a.node', 'b.node', 'c.node'].map((name) => path.join(dir, name)) as [string, string, string];
  for (const f of [a, b, c]) fs.writeFileSync(f, '');
  const loaded: string[] = [];
  const result = loadAddonFrom(
    [a, b, c].map((f) => ({ label: path.basename(f), resolve: () => f })),
    env,
    (f) => {
      loaded.push(f);
      if (f === a) throw new Error('first try fails');
      return { marker: f, version: '1.2.3' };
    },
    '1.2.3',
  );
  t.is(result.file, b);
  t.deepEqual(result.addon as unknown, { marker: b, version: '1.2.3' });
  t.deepEqual(loaded, [a, b]);
});

test('a path that two candidates resolve to is tried once', (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'a.node');
  fs.writeFileSync(file, '');
  let loads = 0;
  const err = t.throws(
    () =>
      loadAddonFrom(
        [
          { label: 'one', resolve: () => file },
          { label: 'two', resolve: () => file },
        ],
        env,
        () => {
          loads++;
          throw new Error('does not load');
        },
      ),
    { code: 'ERR_NATIVE_LOAD' },
  );
  t.is(loads, 1);
  t.true(err!.message.includes(`Tried:\n  - one: ${file}: does not load\nPossible solutions:`));
});

test('prebuiltBinaries picks the files node-gyp-build would accept, ABI-specific first', (t) => {
  const root = tempDir();
  const dir = path.join(root, 'prebuilds', 'linux-x64');
  fs.mkdirSync(dir, { recursive: true });
  for (const name of ['showo2.napi.node', 'node.abi115.node', 'node.abi108.node', 'showo2.napi.musl.node', 'README.md']) {
    fs.writeFileSync(path.join(dir, name), '');
  }
  fs.mkdirSync(path.join(root, 'prebuilds', 'darwin-arm64'));
  fs.writeFileSync(path.join(root, 'prebuilds', 'darwin-arm64', 'showo2.napi.node'), '');
  t.deepEqual(prebuiltBinaries(root, env), [path.join(dir, 'node.abi115.node'), path.join(dir, 'showo2.napi.node')]);
  t.deepEqual(prebuiltBinaries(root, { ...env, libc: 'musl' }), [
    path.join(dir, 'node.abi115.node'),
    path.join(dir, 'showo2.napi.musl.node'),
    path.join(dir, 'showo2.napi.node'),
  ]);
  t.deepEqual(prebuiltBinaries(root, { ...env, arch: 'arm64' }), []);
});

test("a binary built for another version is refused, naming both versions and the fix", (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'showo2.napi.glibc.node');
  fs.writeFileSync(file, '');
  for (const [reported, shown] of [['0.0.9', '0.0.9'], [undefined, 'an unknown version (it reports none)']] as const) {
    const err = t.throws(() => loadAddonFrom([{ label: 'CPU build', resolve: () => file }], env, () => ({ version: reported }), '0.1.0'), {
      instanceOf: NativeLoadError,
    });
    t.true(err!.message.includes(`  - CPU build: ${file}: built for showo2 ${shown}, but this package is showo2 0.1.0`), err!.message);
    t.true(err!.message.includes('The binary belongs to another release of showo2: reinstall the package'), err!.message);
  }
});

/** A package root with package.json (version 0.1.0) and the named files in prebuilds/linux-x64/. */
function fakePackage(files: string[], sourceBuild = false): string {
  const root = tempDir('showo2-fake-package-');
  fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'showo2', version: '0.1.0' }));
  fs.mkdirSync(path.join(root, 'prebuilds', 'linux-x64'), { recursive: true });
  for (const f of files) fs.writeFileSync(path.join(root, 'prebuilds', 'linux-x64', f), '');
  if (sourceBuild) {
    fs.mkdirSync(path.join(root, 'build', 'Release'), { recursive: true });
    fs.writeFileSync(path.join(root, 'build', 'Release', 'showo2.node'), '');
  }
  return root;
}
const CPU = 'showo2.napi.glibc.node';
const CUDA = 'showo2.napi.glibc.cuda.node';

/** A `require` that returns a fake addon whose variant is the file's tag (the source build: `sourceVariant`). */
function fakeRequire(loads: string[], sourceVariant: 'cpu' | 'cuda' = 'cpu', broken: string[] = []) {
  return (file: string) => {
    loads.push(path.basename(file));
    if (broken.includes(path.basename(file))) throw new Error(`${file}: cannot open shared object file`);
    const variant = file.includes('build/Release') ? sourceVariant : file.endsWith('.cuda.node') ? 'cuda' : 'cpu';
    return { version: '0.1.0', variant };
  };
}

test('prebuiltVariants tells the builds apart by the cuda tag', (t) => {
  const root = fakePackage([CPU, CUDA, 'showo2.napi.musl.cuda.node']);
  const dir = path.join(root, 'prebuilds', 'linux-x64');
  t.deepEqual(prebuiltVariants(root, env), { cpu: [path.join(dir, CPU)], cuda: [path.join(dir, CUDA)] });
});

test("'auto' loads the CUDA build when a driver is present, else the CPU build, saying why", (t) => {
  const root = fakePackage([CPU, CUDA]);
  let loads: string[] = [];
  const gpu = loadVariant('auto', root, withDriver, {}, fakeRequire(loads));
  t.like(gpu, { variant: 'cuda', source: 'CUDA build', reason: "device 'auto', NVIDIA driver 550.54.15", cudaUnavailable: null });
  t.deepEqual(loads, [CUDA]);

  loads = [];
  const cpu = loadVariant('auto', root, env, {}, fakeRequire(loads));
  t.like(cpu, {
    variant: 'cpu',
    source: 'CPU build',
    cudaUnavailable: 'no NVIDIA driver found (/proc/driver/nvidia/version does not exist)',
  });
  t.deepEqual(loads, [CPU], 'the CUDA build is not even loaded');

  // A CUDA build that does not load: the CPU build, with the reason.
  loads = [];
  const fallback = loadVariant('auto', root, withDriver, {}, fakeRequire(loads, 'cpu', [CUDA]));
  t.is(fallback.variant, 'cpu');
  t.regex(fallback.cudaUnavailable!, /^the CUDA build did not load \(.*showo2\.napi\.glibc\.cuda\.node: .*cannot open shared object file\)$/);
  t.deepEqual(loads, [CUDA, CPU]);

  // Only the CPU build shipped.
  const cpuOnly = loadVariant('auto', fakePackage([CPU]), withDriver, {}, fakeRequire([]));
  t.is(cpuOnly.cudaUnavailable, `this installation has no CUDA build of the native addon for linux-x64 (it has ${CPU})`);
  // Only the CUDA build shipped, no driver: it still loads (and runs on the CPU).
  t.like(loadVariant('auto', fakePackage([CUDA]), env, {}, fakeRequire([])), { variant: 'cuda', source: 'CUDA build' });
});

test("'cpu' loads the CPU build even with a driver; the CUDA build only when there is no CPU build", (t) => {
  const loads: string[] = [];
  t.like(loadVariant('cpu', fakePackage([CPU, CUDA]), withDriver, {}, fakeRequire(loads)), { variant: 'cpu', reason: "device 'cpu'" });
  t.deepEqual(loads, [CPU]);
  t.like(loadVariant('cpu', fakePackage([CUDA]), env, {}, fakeRequire([])), { variant: 'cuda' });
});

test("'cuda' without a driver loads nothing: a NoGpuError listing what was tried and what to do", (t) => {
  const root = fakePackage([CPU, CUDA]);
  const loads: string[] = [];
  const err = t.throws(() => loadVariant('cuda', root, env, {}, fakeRequire(loads)), { instanceOf: NoGpuError, code: 'ERR_NO_GPU' });
  t.deepEqual(loads, []);
  t.is(
    err!.message,
    [
      "device 'cuda' is unavailable: no NVIDIA driver found (/proc/driver/nvidia/version does not exist). Use device 'cpu', " +
        "or 'auto' to use a GPU only when one is usable (runtimeInfo() or 'showo2 doctor' shows what the GPU setup lacks)",
      'Tried:',
      `  - from-source build: ${path.join(root, 'build', 'Release', 'showo2.node')}: not found`,
      `  - CUDA build: ${path.join(root, 'prebuilds', 'linux-x64', CUDA)}: present, not loaded (it needs the NVIDIA driver)`,
      '  - NVIDIA driver: none (/proc/driver/nvidia/version does not exist)',
      'To use the GPU:',
      '  - install the NVIDIA driver (CUDA 13 needs version 580 or newer) and check that nvidia-smi lists the GPU; in a ' +
        'container, pass the GPU through (docker run --gpus all)',
    ].join('\n'),
  );
  // No CUDA build shipped, driver present: says so, and how to build one.
  const noBuild = t.throws(() => loadVariant('cuda', fakePackage([CPU]), withDriver, {}, fakeRequire([]), ' (from the SHOWO2_DEVICE environment variable)'));
  t.true(noBuild instanceof NoGpuError);
  t.true(noBuild!.message.startsWith("device 'cuda' (from the SHOWO2_DEVICE environment variable) is unavailable: this installation has no CUDA build"), noBuild!.message);
  t.true(noBuild!.message.includes('SHOWO2_CUDA=ON npm run build:native --prefix node_modules/showo2'), noBuild!.message);
  // With a driver and the CUDA build: it loads.
  t.like(loadVariant('cuda', root, withDriver, {}, fakeRequire([])), { variant: 'cuda' });
});

test('SHOWO2_VARIANT picks the prebuilt build whatever the driver; SHOWO2_BINARY picks one file', (t) => {
  const root = fakePackage([CPU, CUDA], true);
  const loads: string[] = [];
  t.like(loadVariant('auto', root, env, { SHOWO2_VARIANT: 'cuda' }, fakeRequire(loads)), { variant: 'cuda', reason: 'SHOWO2_VARIANT=cuda' });
  t.like(loadVariant('auto', root, withDriver, { SHOWO2_VARIANT: 'cpu' }, fakeRequire(loads)), {
    variant: 'cpu',
    cudaUnavailable: 'SHOWO2_VARIANT=cpu selects the CPU build of the native addon',
  });
  t.deepEqual(loads, [CUDA, CPU], 'the from-source build is skipped');
  const cudaWithCpu = t.throws(() => loadVariant('cuda', root, withDriver, { SHOWO2_VARIANT: 'cpu' }, fakeRequire([])), { instanceOf: NoGpuError });
  t.regex(cudaWithCpu!.message, /^device 'cuda' is unavailable: SHOWO2_VARIANT=cpu selects the CPU build/);
  t.throws(() => planLoad('auto', root, env, { SHOWO2_VARIANT: 'gpu' }), {
    instanceOf: NativeLoadError,
    message: "The SHOWO2_VARIANT environment variable must be 'cpu' or 'cuda', not 'gpu': unset it to let the device choose the build of the native addon",
  });

  const binary = path.join(root, 'elsewhere.node');
  fs.writeFileSync(binary, '');
  t.like(loadVariant('cuda', root, withDriver, { SHOWO2_BINARY: binary, SHOWO2_VARIANT: 'cpu' }, () => ({ version: '0.1.0', variant: 'cuda' })), {
    file: binary,
    source: 'SHOWO2_BINARY',
  });
  const missing = t.throws(() => loadVariant('auto', root, env, { SHOWO2_BINARY: path.join(root, 'nope.node') }, fakeRequire([])), {
    instanceOf: NativeLoadError,
  });
  t.true(missing!.message.includes(`  - SHOWO2_BINARY: ${path.join(root, 'nope.node')}: not found`));
});

test('a from-source build goes first, whatever the device; a CPU one says it lacks CUDA', (t) => {
  const root = fakePackage([CPU, CUDA], true);
  const loads: string[] = [];
  const cpu = loadVariant('auto', root, withDriver, {}, fakeRequire(loads, 'cpu'));
  t.like(cpu, { variant: 'cpu', source: 'from-source build', reason: 'a from-source build is present (npm run build:native)' });
  t.deepEqual(loads, ['showo2.node']);
  t.regex(cpu.cudaUnavailable!, /^the from-source build .*build\/Release\/showo2\.node has no CUDA backend/);
  t.like(loadVariant('cpu', root, env, {}, fakeRequire([], 'cuda')), { variant: 'cuda', source: 'from-source build' });
});

test('the driver version is read from the kernel module line', (t) => {
  t.is(parseNvidiaDriverVersion('NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\nGCC version: gcc 12'), '550.54.15');
  t.is(parseNvidiaDriverVersion('NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.15  Release Build'), '570.86.15');
  t.is(parseNvidiaDriverVersion('something else'), 'present');
});

test("this repository's build loads and reports the package version", (t) => {
  const loaded = loadVariant('auto', repoRoot);
  t.is(loaded.file, repoAddonPath);
  t.is(loaded.source, process.env.SHOWO2_BINARY ? 'SHOWO2_BINARY' : 'from-source build');
  t.is(loaded.addon.version, packageVersion(repoRoot));
  t.true(['cpu', 'cuda'].includes(loaded.addon.variant));
  t.is(typeof loaded.addon.WeightFile.open, 'function');
  t.is(typeof loaded.addon.runtimeInfo, 'function');
  t.is(typeof loaded.addon.convertToSafetensors, 'function');
});
