// The package as a user gets it: `npm pack` of the built package, installed from the tarball into a fresh project,
// then used from CommonJS, ESM, TypeScript (nodenext and bundler resolution) and through its `showo2` bin. Also checks
// what the tarball ships, and logs the size of each package (no binary, the CPU build, the CUDA build, both).
//
// The install must compile nothing: the tarball carries the addon as prebuilt binaries (the layout tools/prebuild.mjs
// writes, prebuilds/<platform>-<arch>/showo2.napi.glibc[.cuda].node), the package has no install script, and the
// install runs with a PATH on which every compiler and build tool fails. The binaries are those `npm run prebuild`
// left in prebuilds/, plus this repository's build/Release/showo2.node under the name of the build it reports when
// prebuilds/ lacks that build (CI: the zig-built CPU build and the CUDA build). Then, in the installed projects:
//  - with both builds, on a machine without an NVIDIA driver: `device: 'auto'` loads the CPU build and logs one line
//    saying why, `'cuda'` is a NoGpuError listing what was tried, and SHOWO2_VARIANT=cuda runs the CUDA build on the
//    CPU; on a machine with a driver, `'auto'` picks the CUDA build;
//  - with the CPU build only: `showo2 doctor` and a tiny generate + ask through the API;
//  - a binary from another version of the package is refused (NativeLoadError naming both versions);
//  - the linux-arm64 CPU build (prebuilds/linux-arm64/, cross-compiled with zig) ships in the same package, and an
//    arm64 Node.js under QEMU (SHOWO2_TEST_ARM64_NODE, made by tools/arm64-emulation.sh; CI sets it) loads it from
//    the installed package and runs the quick start, with the same pixels as the x64 build's portable kernels.
// Dependencies come from the npm cache the repository's own install filled (--prefer-offline). Everything lives in
// one temporary directory, removed when the test process exits.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as zlib from 'node:zlib';

import test from 'ava';

import { decodeImage } from 'showo2';

import { repoRoot, runCommand, runNode, tempDir, type RunResult } from '../helpers.js';

const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  main: string;
  types: string;
  exports: unknown;
  bin: Record<string, string>;
};

/** What `npm pack --json` reports about one tarball. */
interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: { path: string; size: number }[];
}

/** Files that must not ship, each with what it is. */
const forbidden: [RegExp, string][] = [
  [/^build-test\//, 'compiled tests'],
  [/^build(-[^/]+)?\//, 'a CMake or cmake-js build directory'],
  [/^test\//, 'tests'],
  [/(^|\/)fixtures?\//, 'test fixtures'],
  [/^bench\//, 'benchmarks'],
  // The one tool that ships: cmake/cublas_headers.cmake runs it when a from-source CUDA build finds no cuBLASLt headers.
  [/^tools\/(?!fetch_cublas_headers\.sh$)/, 'development tools'],
  [/(^|\/)\.devcarry(\/|$)/, 'device-run scratch files'],
  [/^\.ci\//, 'CI scripts'],
  [/^docs\/(?!TROUBLESHOOTING\.md$|RELIABILITY\.md$)/, 'generated API docs (docs/TROUBLESHOOTING.md and RELIABILITY.md ship)'],
  [/(^|\/)node_modules\//, 'installed dependencies'],
  [/^(?!prebuilds\/[^/]+\/[^/]+\.node$).*\.node$/, 'a native binary outside prebuilds/<platform>-<arch>/'],
  [/\.(tgz|tsbuildinfo|log|py|pyc)$/, 'a tarball, build info, log or Python file'],
  [/(^|\/)__pycache__\//, 'Python bytecode'],
];

/** Every file package.json points at (main, types, exports targets, bin), without the leading "./". */
function entryFiles(): string[] {
  const targets: string[] = [pkg.main, pkg.types, ...Object.values(pkg.bin)];
  const walk = (value: unknown): void => {
    if (typeof value === 'string') targets.push(value);
    else if (value && typeof value === 'object') Object.values(value).forEach(walk);
  };
  walk(pkg.exports);
  return [...new Set(targets.map((t) => path.posix.normalize(t)))].sort();
}

/** Files the tarball needs beyond the entry points. */
const required = [
  'README.md',
  'docs/TROUBLESHOOTING.md', // the CLI's error output points into it
  'typings/addon.d.ts', // dist/native.d.ts imports the addon's types from it
  // A from-source build in the installed package (no prebuilt binary fits, or --build-from-source) needs these.
  'CMakeLists.txt',
  'cmake/cublas_headers.cmake',
  'tools/fetch_cublas_headers.sh',
  'native/binding/addon.cpp',
];

type Variant = 'cpu' | 'cuda';
const libcTag = process.platform !== 'linux' ? '' : fs.existsSync('/etc/alpine-release') ? '.musl' : '.glibc';
/** Where tools/prebuild.mjs puts each build, the names lib/native.ts looks for. */
const prebuildPaths: Record<Variant, string> = {
  cpu: path.posix.join('prebuilds', `${process.platform}-${process.arch}`, `showo2.napi${libcTag}.node`),
  cuda: path.posix.join('prebuilds', `${process.platform}-${process.arch}`, `showo2.napi${libcTag}.cuda.node`),
};
/**
 * Builds for another architecture that ship too (package path -> file in this repository): the linux-arm64 CPU build
 * when `tools/prebuild.mjs --zig ZIG --arch arm64` made one. Only an arm64 Node.js can load it (the last test).
 */
const arm64Prebuild = 'prebuilds/linux-arm64/showo2.napi.glibc.node';
const foreignBuilds: Record<string, string> = {};
if (`${process.platform}-${process.arch}` === 'linux-x64' && fs.existsSync(path.join(repoRoot, arm64Prebuild))) {
  foreignBuilds[arm64Prebuild] = path.join(repoRoot, arm64Prebuild);
}
/** A command that runs a linux-arm64 Node.js (tools/arm64-emulation.sh prints one). */
const arm64Node = process.env.SHOWO2_TEST_ARM64_NODE || undefined;

/** Whether this machine has an NVIDIA driver (what lib/native.ts checks). */
const hasDriver = process.platform === 'linux' && fs.existsSync('/proc/driver/nvidia/version');

/** Programs that would mean the install is compiling something: each fails loudly. */
const buildTools = ['cmake', 'ninja', 'make', 'cc', 'gcc', 'g++', 'c++', 'clang', 'clang++', 'nvcc'];

const work = fs.realpathSync(tempDir('showo2-package-'));
const project = path.join(work, 'consumer');
const installed = path.join(project, 'node_modules', pkg.name);
/** A second project, with the package holding the CPU build only (when `project` has both builds). */
const cpuProject = path.join(work, 'consumer-cpu');
const noToolchain = path.join(work, 'no-toolchain');

/**
 * This process's environment minus what `npm test` adds for the repository: npm_package_* and npm_lifecycle_*, the
 * prefixes (a nested npm would work on the repository instead of the consumer project), the repository's
 * node_modules/.bin on PATH, and flags such as --build-from-source. The PATH starts with the failing build tools.
 */
function consumerEnv(): NodeJS.ProcessEnv {
  const dropped = new Set([
    'npm_config_prefix',
    'npm_config_local_prefix',
    'npm_config_global_prefix',
    'npm_config_global',
    'npm_config_build_from_source',
    'npm_config_ignore_scripts',
    'npm_config_dry_run',
    'npm_config_omit',
    'npm_config_include',
  ]);
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    const lower = key.toLowerCase();
    if (lower.startsWith('npm_') && (!lower.startsWith('npm_config_') || dropped.has(lower))) continue;
    if (key === 'INIT_CWD') continue;
    env[key] = value;
  }
  const pathEntries = (process.env.PATH ?? '').split(path.delimiter).filter((p) => p && !p.startsWith(repoRoot));
  env.PATH = [noToolchain, ...pathEntries].join(path.delimiter);
  return env;
}
const env = consumerEnv();

function check(r: RunResult, what: string): RunResult {
  if (r.code !== 0) throw new Error(`${what} exited with ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Runs node in the consumer project; fails with its output unless it exits 0. */
async function nodeInProject(args: string[], what: string): Promise<string> {
  return check(await runNode(args, { cwd: project, env }), what).stdout;
}

/** Runs the installed bin through node_modules/.bin, as npm scripts and npx do. */
async function showo2(args: string[]): Promise<string> {
  return (await showo2Run(args)).stdout;
}

/** Runs the installed bin in `cwd` with `extraEnv`; fails unless it exits 0. */
async function showo2Run(args: string[], cwd = project, extraEnv: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  const bin = path.join(cwd, 'node_modules', '.bin', 'showo2');
  return check(await runCommand(bin, args, { cwd, env: { ...env, ...extraEnv } }), `showo2 ${args.join(' ')}`);
}

async function npmPack(cwd: string, destination: string): Promise<PackResult> {
  // Lifecycle scripts off: dist/ is already built (npm test builds it first), and `prepare` would rebuild it.
  const r = check(
    await runCommand('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', destination], { cwd, env }),
    `npm pack in ${cwd}`,
  );
  return (JSON.parse(r.stdout) as PackResult[])[0]!;
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;

/**
 * The builds to ship: prebuilds/<platform>-<arch>/ of this repository (`npm run prebuild`), plus build/Release's
 * addon as the build it reports when prebuilds/ has none of that kind (CI prebuilds the CPU build with zig and has
 * the CUDA build in build/Release from `npm run build:native`, so both are tested).
 */
async function availableBuilds(): Promise<Partial<Record<Variant, string>>> {
  const builds: Partial<Record<Variant, string>> = {};
  for (const variant of ['cpu', 'cuda'] as const) {
    const file = path.join(repoRoot, prebuildPaths[variant]);
    if (fs.existsSync(file)) builds[variant] = file;
  }
  const file = path.join(repoRoot, 'build', 'Release', 'showo2.node');
  if (fs.existsSync(file)) {
    const r = check(await runNode(['-p', `require(${JSON.stringify(file)}).variant`], { env }), 'loading build/Release');
    const variant = r.stdout.trim() as Variant;
    builds[variant] ??= file;
  }
  return builds;
}

/**
 * Repacks the published tarball's contents with exactly the given builds as prebuilt binaries (and `extra`: package
 * path -> file, builds for other architectures).
 */
async function packWith(name: string, builds: Partial<Record<Variant, string>>, extra: Record<string, string> = {}): Promise<PackResult> {
  const stage = path.join(work, `stage-${name}`);
  fs.mkdirSync(stage);
  check(await runCommand('tar', ['-xzf', path.join(work, published.filename), '-C', stage], { env }), 'tar -x');
  // What `npm run prebuild` left in this repository's prebuilds/ was packed too.
  fs.rmSync(path.join(stage, 'package', 'prebuilds'), { recursive: true, force: true });
  for (const [variant, file] of Object.entries(builds) as [Variant, string][]) {
    const target = path.join(stage, 'package', prebuildPaths[variant]);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(file, target);
  }
  for (const [target, file] of Object.entries(extra)) {
    fs.mkdirSync(path.dirname(path.join(stage, 'package', target)), { recursive: true });
    fs.copyFileSync(file, path.join(stage, 'package', target));
  }
  const destination = path.join(work, `pack-${name}`);
  fs.mkdirSync(destination);
  const packed = await npmPack(path.join(stage, 'package'), destination);
  packed.filename = path.join(destination, packed.filename);
  return packed;
}

/** Installs a tarball into a fresh project; returns the install's output and how long it took. */
async function install(dir: string, tarball: string): Promise<{ log: string; seconds: number }> {
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'showo2-consumer', version: '1.0.0', private: true }, null, 2));
  const started = performance.now();
  const r = check(
    await runCommand('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', tarball], { cwd: dir, env }),
    `npm install of ${path.basename(tarball)}`,
  );
  return { log: r.stdout + r.stderr, seconds: (performance.now() - started) / 1000 };
}

let published: PackResult;
let builds: Partial<Record<Variant, string>>;
let withPrebuild: PackResult;
/** Sizes of the package with each build alone and with both, for the log. */
const sizes: { what: string; packed: PackResult }[] = [];
let installLog: string;
let installSeconds: number;
/** Whether cpuProject was installed (a CPU build exists and the main package has the CUDA build too). */
let cpuProjectInstalled = false;

/** The tiny random-weight Show-o2 and VAE of the test fixtures, unpacked. */
const modelDir = path.join(work, 'tiny-model');
const vaePath = path.join(repoRoot, 'test', 'fixtures', 'vae', 'tiny_vae.pth');
const photo = path.join(repoRoot, 'test', 'fixtures', 'images', 'photo.png');

test.before(async () => {
  fs.mkdirSync(noToolchain);
  for (const tool of buildTools) {
    const message = `${tool} ran during the install of the showo2 tarball: it must not compile anything`;
    fs.writeFileSync(path.join(noToolchain, tool), `#!/bin/sh\necho "${message}" >&2\nexit 1\n`, { mode: 0o755 });
  }

  // 1. The tarball `npm publish` would upload.
  published = await npmPack(repoRoot, work);

  // 2. The same tarball plus every build there is as prebuilt binaries, repacked from its own contents; the sizes of
  //    each build alone too.
  builds = await availableBuilds();
  withPrebuild = await packWith('all', builds, foreignBuilds);
  const variants = Object.keys(builds) as Variant[];
  if (variants.length > 1) {
    for (const variant of variants) sizes.push({ what: `the ${variant} build only`, packed: await packWith(variant, { [variant]: builds[variant] }) });
  }
  const foreign = Object.keys(foreignBuilds).map((file) => ` (and ${file.split('/')[1]}'s CPU build)`).join('');
  sizes.push({ what: `the ${variants.join(' and ')} build${variants.length > 1 ? 's' : ''}${foreign}`, packed: withPrebuild });

  // 3. Fresh projects that install them.
  ({ log: installLog, seconds: installSeconds } = await install(project, withPrebuild.filename));
  if (builds.cpu !== undefined && builds.cuda !== undefined) {
    await install(cpuProject, sizes.find((s) => s.what === 'the cpu build only')!.packed.filename);
    cpuProjectInstalled = true;
  }

  fs.mkdirSync(modelDir);
  const fixture = path.join(repoRoot, 'test', 'fixtures', 'showo2', 'tiny-model');
  fs.copyFileSync(path.join(fixture, 'config.json'), path.join(modelDir, 'config.json'));
  fs.writeFileSync(path.join(modelDir, 'pytorch_model.bin'), zlib.gunzipSync(fs.readFileSync(path.join(fixture, 'pytorch_model.bin.gz'))));
});

test('the tarball ships the package, and nothing else from the repository', (t) => {
  const files = published.files.map((f) => f.path);
  for (const file of [...entryFiles(), ...required]) t.true(files.includes(file), `${file} is not in the tarball`);
  const unwanted = (list: string[]) =>
    list.flatMap((file) => forbidden.filter(([re]) => re.test(file)).map(([, what]) => `${file} (${what})`));
  t.deepEqual(unwanted(files), []);
  t.deepEqual(unwanted(withPrebuild.files.map((f) => f.path)), []);
  const withoutPrebuilds = files.filter((f) => !f.startsWith('prebuilds/'));
  t.deepEqual(
    withPrebuild.files.map((f) => f.path).filter((f) => !withoutPrebuilds.includes(f)).sort(),
    [...(Object.keys(builds) as Variant[]).map((v) => prebuildPaths[v]), ...Object.keys(foreignBuilds)].sort(),
    'repacking added exactly the prebuilt addons',
  );
  t.log(
    `${published.filename}: ${published.entryCount} files, ${mib(published.size)} packed, ` +
      `${mib(published.unpackedSize)} unpacked`,
  );
  for (const { what, packed } of sizes) {
    t.log(`with ${what} for ${process.platform}-${process.arch}: ${mib(packed.size)} packed, ${mib(packed.unpackedSize)} unpacked`);
    // The budget of one npm package (issue "ship"): beyond it, the CUDA build goes into an optional package.
    t.true(packed.unpackedSize < 100e6, `the package with ${what} is ${mib(packed.unpackedSize)} unpacked, over 100 MB`);
  }
});

test('the source maps point at sources that ship', (t) => {
  const maps = published.files.map((f) => f.path).filter((f) => f.endsWith('.map'));
  t.true(maps.length > 0);
  const missing: string[] = [];
  for (const map of maps) {
    const { sources } = JSON.parse(fs.readFileSync(path.join(installed, map), 'utf8')) as { sources: string[] };
    for (const source of sources) {
      const file = path.join(installed, path.dirname(map), source);
      if (!fs.existsSync(file)) missing.push(`${map} -> ${source}`);
    }
  }
  t.deepEqual(missing, []);
});

test('npm install of the tarball uses the prebuilt addon and compiles nothing', (t) => {
  t.log(`npm install took ${installSeconds.toFixed(1)} s`);
  t.false(fs.existsSync(path.join(installed, 'build')), 'the install created a build/ directory');
  // npm prints "> showo2@<version> <script>" before each script it runs (--foreground-scripts).
  t.notRegex(installLog, /^> \S+ build:native$|^> cmake-js /m, installLog);
  for (const variant of Object.keys(builds) as Variant[]) t.true(fs.existsSync(path.join(installed, prebuildPaths[variant])));
  // No lifecycle script at all: `npm install` never compiles or downloads anything.
  const scripts = (JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }).scripts ?? {};
  t.deepEqual(Object.keys(scripts).filter((name) => /^(pre|post)?install$/.test(name)), []);
});

test('require("showo2") and import("showo2") resolve to the installed package and give the same names', async (t) => {
  const cjs = await nodeInProject(
    ['-e', 'const m = require("showo2"); console.log(JSON.stringify({ file: require.resolve("showo2"), names: Object.keys(m).sort() }))'],
    'require("showo2")',
  );
  const esm = await nodeInProject(
    ['--input-type=module', '-e',
      'const m = await import("showo2"); console.log(JSON.stringify({ file: import.meta.resolve("showo2"), names: Object.keys(m).sort() }))'],
    'import("showo2")',
  );
  const repo = check(
    await runNode(['-e', 'console.log(JSON.stringify(Object.keys(require("showo2")).sort()))'], { cwd: repoRoot, env }),
    'require("showo2") in the repository',
  );
  const fromRequire = JSON.parse(cjs) as { file: string; names: string[] };
  const fromImport = JSON.parse(esm) as { file: string; names: string[] };
  t.is(fromRequire.file, path.join(installed, 'dist', 'index.js'));
  t.is(fromImport.file, pathToFileURL(path.join(installed, 'dist', 'index.mjs')).href);
  t.deepEqual(fromImport.names, fromRequire.names);
  t.deepEqual(fromRequire.names, JSON.parse(repo.stdout) as string[], 'the installed package exports what dist/ does');
});

/**
 * Type-checks files in the consumer project with the repository's TypeScript and @types/node (the only things not
 * installed there). Returns the exit code, the errors, and which declaration file each one's `import 'showo2'` resolved
 * to.
 */
async function typeCheck(name: string, compilerOptions: object, files: Record<string, string>) {
  for (const [file, source] of Object.entries(files)) fs.writeFileSync(path.join(project, file), source);
  const config = `tsconfig.${name}.json`;
  fs.writeFileSync(
    path.join(project, config),
    JSON.stringify({
      compilerOptions: {
        target: 'es2022',
        strict: true,
        noEmit: true,
        types: ['node'],
        typeRoots: [path.join(repoRoot, 'node_modules', '@types')],
        ...compilerOptions,
      },
      files: Object.keys(files),
    }),
  );
  const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = await runNode([tsc, '-p', config, '--traceResolution'], { cwd: project, env });
  let errors = r.stdout.split('\n').filter((line) => /error TS\d+/.test(line)).join('\n');
  if (r.code !== 0 && errors === '') errors = r.stdout.slice(-4000) + r.stderr;
  const resolved: Record<string, string> = {};
  const re = new RegExp(
    "======== Resolving module 'showo2' from '([^']+)'\\. ========[\\s\\S]*?" +
      "======== Module name 'showo2' was (?:successfully resolved to '([^']+)'|not resolved)",
    'g',
  );
  for (const m of r.stdout.matchAll(re)) {
    resolved[path.basename(m[1]!)] = m[2] ? path.relative(installed, m[2]) : 'not resolved';
  }
  return { code: r.code, errors, resolved };
}

const esmSource = `
import { ShowO2Error, ShowO2Model, WeightFile, runtimeInfo, type RuntimeInfo, type TensorData } from 'showo2';

const info: RuntimeInfo = await runtimeInfo();
const threads: number = info.defaultThreadCount;
export async function firstTensor(file: string): Promise<TensorData> {
  await using weights = await WeightFile.open(file);
  return weights.read(weights.tensors[0]!.name);
}
export function isShowO2Error(err: unknown): string | undefined {
  return err instanceof ShowO2Error ? err.code : undefined;
}
// @ts-expect-error: the options are checked, so a misspelt one is an error (not an any)
export const bad = ShowO2Model.load('dir', { devise: 'cpu' });
console.log(threads);
`;

test('TypeScript with module nodenext type-checks an ES module and a CommonJS file that use the package', async (t) => {
  // lib without DOM or esnext.disposable: a Node.js project needs neither (@types/node declares Symbol.asyncDispose).
  // skipLibCheck off: the package's declaration files must compile under the consumer's settings.
  const options = { module: 'nodenext', moduleResolution: 'nodenext', lib: ['es2022'], skipLibCheck: false };
  const r = await typeCheck('nodenext', options, {
    'esm.mts': esmSource,
    'cjs.cts': `
import showo2 = require('showo2');
import { WeightFile, type TensorInfo } from 'showo2';

export async function names(file: string): Promise<string[]> {
  const weights: WeightFile = await showo2.WeightFile.open(file);
  try {
    return weights.tensors.map((tensor: TensorInfo) => tensor.name);
  } finally {
    weights.dispose();
  }
}
// @ts-expect-error: WeightFile.open takes a path, not a number
void WeightFile.open(42);
`,
  });
  t.is(r.code, 0, r.errors);
  t.deepEqual(r.resolved, { 'esm.mts': 'dist/index.d.mts', 'cjs.cts': 'dist/index.d.ts' });
});

test('TypeScript with moduleResolution bundler type-checks a module that uses the package', async (t) => {
  // The default lib (with DOM) and skipLibCheck, as bundled apps usually have; the nodenext test checks the .d.ts files.
  const options = { module: 'esnext', moduleResolution: 'bundler', skipLibCheck: true };
  const r = await typeCheck('bundler', options, { 'bundler.ts': esmSource });
  t.is(r.code, 0, r.errors);
  t.deepEqual(r.resolved, { 'bundler.ts': 'dist/index.d.mts' });
});

test('the installed showo2 bin runs', async (t) => {
  t.regex(await showo2(['--help']), /^Usage: showo2 <command>/);
  const npx = check(await runCommand('npx', ['--no-install', 'showo2', '--version'], { cwd: project, env }), 'npx showo2');
  t.is(npx.stdout.trim(), pkg.version);
});

/** The build `device: 'auto'` loads on this machine from the main package. */
function autoBuild(): Variant {
  return builds.cuda !== undefined && (hasDriver || builds.cpu === undefined) ? 'cuda' : 'cpu';
}

test('the native addon loads from the installed package, from the bin and from both module systems', async (t) => {
  const addon = path.join(installed, prebuildPaths[autoBuild()]);
  const report = JSON.parse(await showo2(['doctor', '--json'])) as { addon: Record<string, unknown> };
  t.like(report.addon, { loaded: true, path: addon, source: 'prebuilt binary shipped in the package', variant: autoBuild(), error: null });
  const cjs = await nodeInProject(
    ['-e', 'require("showo2").runtimeInfo().then((info) => console.log(info.addonPath))'],
    'runtimeInfo() from require',
  );
  const esm = await nodeInProject(
    ['--input-type=module', '-e', 'import { runtimeInfo } from "showo2"; console.log((await runtimeInfo()).addonPath)'],
    'runtimeInfo() from import',
  );
  t.is(cjs.trim(), addon);
  t.is(esm.trim(), addon);
});

const FAST = ['--width', '64', '--height', '64', '--steps', '3'];
/**
 * The one line `device: 'auto'` logs when it runs on the CPU: a process warning, which the CLI prints as
 * "warning: ..." and Node.js as "(node:PID) [SHOWO2_CPU_FALLBACK] ShowO2Warning: ...".
 */
const fallbackLines = (stderr: string) => stderr.split('\n').filter((line) => line.includes("device 'auto' runs on the CPU"));

test("showo2 generate and ask with device 'auto': the CPU without a driver (one line says why), the GPU with one", async (t) => {
  const cwd = path.join(project, 'out');
  fs.mkdirSync(cwd, { recursive: true });
  // No --model: the quick start's two commands, on the demo model the package bundles.
  const out = path.join(cwd, 'out.png');
  const gen = await showo2Run(['generate', 'a red circle on a blue background', '-o', out, '--seed', '0', '--device', 'auto', '-q']);
  t.true(fs.statSync(out).size > 0);
  const ask = await showo2Run(['ask', out, 'What colour is the background?', '--device', 'auto', '-q']);
  t.is(ask.stdout, 'blue\n');
  for (const r of [gen, ask]) {
    if (autoBuild() === 'cuda' && hasDriver) {
      t.deepEqual(fallbackLines(r.stderr), [], r.stderr);
    } else {
      const why = builds.cuda === undefined ? 'this installation has no CUDA build' : 'no NVIDIA driver found';
      const lines = fallbackLines(r.stderr);
      t.is(lines.length, 1, r.stderr);
      t.regex(lines[0]!, new RegExp(`^warning: device 'auto' runs on the CPU: ${why}`));
      t.log(lines[0]);
      t.notRegex(r.stderr, /--trace-warnings/, 'the CLI prints the warning as one line');
    }
  }
});

/** Loads the tiny model in the project's Node.js with `device` and prints what happened as JSON. */
async function loadInProject(device: string, cwd = project, extraEnv: NodeJS.ProcessEnv = {}): Promise<Record<string, unknown> & { stderr: string }> {
  const script = `
const { ShowO2Model, runtimeInfo } = require('showo2');
(async () => {
  try {
    const model = await ShowO2Model.load(process.argv[1], { vaePath: process.argv[2], device: process.argv[3] });
    const answer = await model.answer({ image: process.argv[4], question: 'What is it?', maxTokens: 3 });
    const { images } = await model.generateImages({ prompt: 'a cat', width: 64, height: 64, steps: 2, seed: 1 });
    const info = await runtimeInfo();
    console.log(JSON.stringify({ device: model.device, variant: info.variant, reason: info.variantReason, file: info.addonPath,
      answer: answer.text, images: images.length }));
    model.dispose();
  } catch (err) {
    console.log(JSON.stringify({ error: { name: err.name, code: err.code, message: err.message } }));
  }
})();`;
  const r = check(await runNode(['-e', script, modelDir, vaePath, device, photo], { cwd, env: { ...env, ...extraEnv } }), `load ${device}`);
  return { ...(JSON.parse(r.stdout) as Record<string, unknown>), stderr: r.stderr };
}

test("device 'cuda' without a driver is a NoGpuError listing what was tried and what to do", async (t) => {
  if (hasDriver) {
    t.log('an NVIDIA driver is present: the no-driver case cannot be produced here');
    t.pass();
    return;
  }
  const r = await loadInProject('cuda');
  const error = r.error as { name: string; code: string; message: string };
  t.like(error, { name: 'NoGpuError', code: 'ERR_NO_GPU' });
  t.regex(error.message, /^device 'cuda' is unavailable: /);
  t.true(error.message.includes('\nTried:\n'), error.message);
  t.true(error.message.includes('  - NVIDIA driver: none (/proc/driver/nvidia/version does not exist)'), error.message);
  t.true(error.message.includes('\nTo use the GPU:\n'), error.message);
  if (builds.cuda !== undefined) {
    t.true(error.message.includes(`  - CUDA build: ${path.join(installed, prebuildPaths.cuda)}: present, not loaded`), error.message);
  } else {
    t.regex(error.message, /this installation has no CUDA build/);
  }
});

test('on a machine with an NVIDIA driver, the CUDA build is what device auto picks', async (t) => {
  if (!hasDriver || builds.cuda === undefined) {
    t.log(hasDriver ? 'no CUDA build to ship (npm run prebuild makes one)' : 'no NVIDIA driver here (/proc/driver/nvidia/version): runs on a GPU machine');
    t.pass();
    return;
  }
  const r = await loadInProject('auto');
  t.like(r, { device: 'cuda', variant: 'cuda', file: path.join(installed, prebuildPaths.cuda), images: 1 });
  t.regex(r.reason as string, /^device 'auto', NVIDIA driver /);
  t.deepEqual(fallbackLines(r.stderr), []);
});

test('SHOWO2_VARIANT=cuda on a machine without a GPU: the CUDA build loads and runs on the CPU', async (t) => {
  if (builds.cuda === undefined || hasDriver) {
    t.log(builds.cuda === undefined ? 'no CUDA build to ship (npm run prebuild makes one)' : 'a driver is present: covered above');
    t.pass();
    return;
  }
  const r = await loadInProject('auto', project, { SHOWO2_VARIANT: 'cuda' });
  t.like(r, { device: 'cpu', variant: 'cuda', reason: 'SHOWO2_VARIANT=cuda', file: path.join(installed, prebuildPaths.cuda), images: 1 });
  const lines = fallbackLines(r.stderr);
  t.is(lines.length, 1, r.stderr);
  t.regex(lines[0]!, /^\(node:\d+\) \[SHOWO2_CPU_FALLBACK\] ShowO2Warning: device 'auto' runs on the CPU: no NVIDIA driver found/);
  const doctor = (await showo2Run(['doctor'], project, { SHOWO2_VARIANT: 'cuda' })).stdout;
  t.regex(doctor, /build: {8}cuda \(chosen by SHOWO2_VARIANT=cuda\)/);
  t.regex(doctor, /gpu: {10}unavailable: no NVIDIA driver found/);
});

test('with the CPU build only: showo2 doctor explains it, and a tiny generate and ask run', async (t) => {
  const cwd = cpuProjectInstalled ? cpuProject : builds.cpu !== undefined ? project : undefined;
  if (cwd === undefined) {
    t.log('no CPU build to ship (npm run prebuild makes one)');
    t.pass();
    return;
  }
  const cpuFile = path.join(cwd, 'node_modules', pkg.name, prebuildPaths.cpu);
  const report = JSON.parse((await showo2Run(['doctor', '--json'], cwd)).stdout) as {
    addon: Record<string, unknown>;
    builds: Record<string, unknown>;
    suggestions: string[];
  };
  t.like(report.addon, { loaded: true, path: cpuFile, variant: 'cpu' });
  t.is(report.builds.cpu, cpuFile);
  const doctor = (await showo2Run(['doctor'], cwd)).stdout;
  t.regex(doctor, /installed: {4}prebuilt cpu build/);
  t.log(doctor.split('\n').filter((l) => /installed|build:|gpu:|driver:/.test(l)).join('\n'));
  const r = await loadInProject('cpu', cwd);
  t.like(r, { device: 'cpu', variant: 'cpu', file: cpuFile, images: 1, reason: "device 'cpu'" });
  t.true((r.answer as string).length > 0);
  t.deepEqual(fallbackLines(r.stderr), [], "device 'cpu' logs nothing");
});

test('a binary built for another version of showo2 is refused with NativeLoadError naming both versions', async (t) => {
  // The installed package with another version in its package.json: its binaries were built for pkg.version.
  const copy = path.join(project, 'node_modules', 'showo2-other-version');
  fs.cpSync(installed, copy, { recursive: true });
  const copiedPkg = JSON.parse(fs.readFileSync(path.join(copy, 'package.json'), 'utf8')) as { version: string };
  copiedPkg.version = '99.0.0';
  fs.writeFileSync(path.join(copy, 'package.json'), JSON.stringify(copiedPkg));
  const r = check(
    await runNode(
      ['-e', 'require(process.argv[1]).runtimeInfo().then(() => console.log("loaded"), (e) => console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })))', copy],
      { cwd: project, env },
    ),
    'runtimeInfo() of the copy',
  );
  const error = JSON.parse(r.stdout) as { name: string; code: string; message: string };
  t.like(error, { name: 'NativeLoadError', code: 'ERR_NATIVE_LOAD' });
  t.regex(error.message, new RegExp(`built for showo2 ${pkg.version.replace(/\./g, '\\.')}, but this package is showo2 99\\.0\\.0`));
  t.true(error.message.includes('The binary belongs to another release of showo2'), error.message);
});

test('the linux-arm64 CPU build ships, loads in an arm64 Node.js (emulated) and draws the same pixels as x64', async (t) => {
  if (foreignBuilds[arm64Prebuild] === undefined) {
    if (arm64Node !== undefined || process.env.CI) {
      t.fail(`no ${arm64Prebuild} to test: node tools/prebuild.mjs --variant cpu --zig ZIG --arch arm64 builds it`);
    } else {
      t.log(`no ${arm64Prebuild} (node tools/prebuild.mjs --variant cpu --zig ZIG --arch arm64 builds it)`);
      t.pass();
    }
    return;
  }
  const file = path.join(installed, arm64Prebuild);
  t.true(fs.existsSync(file), 'the installed package has the arm64 build');
  if (arm64Node === undefined) {
    // CI always sets it (.ci/run): an arm64 build that no test loads must not pass there.
    if (process.env.CI) {
      t.fail('SHOWO2_TEST_ARM64_NODE is not set: tools/arm64-emulation.sh DIR prints an arm64 node to set it to');
    } else {
      t.log('SHOWO2_TEST_ARM64_NODE is not set (tools/arm64-emulation.sh DIR prints one): the arm64 build was not run');
      t.pass();
    }
    return;
  }
  const cli = path.join(installed, pkg.bin.showo2!);
  const cwd = path.join(project, 'arm64');
  fs.mkdirSync(cwd, { recursive: true });
  const arm64 = async (args: string[]): Promise<RunResult> =>
    check(await runCommand(arm64Node, [cli, ...args], { cwd, env }), `arm64 showo2 ${args.join(' ')}`);

  const report = JSON.parse((await arm64(['doctor', '--json'])).stdout) as {
    node: Record<string, unknown>;
    addon: Record<string, unknown>;
    cpu: { features: string };
  };
  t.like(report.node, { platform: 'linux', arch: 'arm64', libc: 'glibc', supported: true });
  t.like(report.addon, { loaded: true, path: file, variant: 'cpu', source: 'prebuilt binary shipped in the package' });
  t.regex(report.cpu.features, /portable kernels/);

  // The quick start on the bundled demo model (fewer steps: emulation runs about ten times slower), and the same
  // command on this x64 machine with its portable kernels (SHOWO2_DISABLE_AVX2): the same scalar code compiled for
  // two architectures; only floating-point contraction may differ, so pixels may move by one level at most.
  const prompt = 'a red circle on a blue background';
  const options = ['--seed', '1', '--steps', '10', '--device', 'cpu', '-q'];
  await arm64(['generate', prompt, '-o', path.join(cwd, 'arm64.png'), ...options]);
  await showo2Run(['generate', prompt, '-o', path.join(cwd, 'x64.png'), ...options], project, { SHOWO2_DISABLE_AVX2: '1' });
  const [a, b] = ['arm64.png', 'x64.png'].map((name) => decodeImage(fs.readFileSync(path.join(cwd, name))));
  t.deepEqual([a!.width, a!.height], [b!.width, b!.height]);
  let maxDiff = 0;
  let differing = 0;
  for (let i = 0; i < a!.data.length; i++) {
    const d = Math.abs(a!.data[i]! - b!.data[i]!);
    maxDiff = Math.max(maxDiff, d);
    if (d) differing++;
  }
  t.log(`arm64 vs x64 portable kernels: ${differing} of ${a!.data.length} values differ, by at most ${maxDiff}`);
  t.true(maxDiff <= 1, `pixels differ by up to ${maxDiff}`);
  const ask = await arm64(['ask', path.join(cwd, 'arm64.png'), 'What colour is the background?', '-q']);
  t.is(ask.stdout, 'blue\n');
});
