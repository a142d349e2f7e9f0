#!/usr/bin/env node
// Builds the prebuilt binaries that ship in the package (`npm run prebuild`), with cmake-js, into the layout
// node-gyp-build and lib/native.ts read: prebuilds/<platform>-<arch>/<name>.node, the name made of dot-separated tags.
//
//   cpu   SHOWO2_CUDA=OFF  showo2.napi[.glibc|.musl].node        CPU backend only (small, never initialises CUDA)
//   cuda  SHOWO2_CUDA=ON   showo2.napi[.glibc|.musl].cuda.node   CPU and CUDA backends; the CUDA runtime is linked
//                                                               statically and cuBLASLt is dlopen'ed when first used,
//                                                               so it loads without a driver (and then runs on the CPU)
//
// The `cuda` tag is ours: node-gyp-build parses it as an unknown tag and ignores it, so it accepts both files; the
// loader (lib/native.ts) tells the variants apart by that tag and by the `variant` the addon reports.
// Every variant is built portable (libstdc++ and libgcc linked statically) in its own build directory,
// build-prebuild-<variant>/ (ignored by git), with the package version compiled in (-DSHOWO2_VERSION). The CUDA
// architectures are CMakeLists.txt's default (machine code for 80, 86, 89, 90 and compute_90 PTX).
//
// Usage: node tools/prebuild.mjs [--variant cpu|cuda|all] [--jobs N] [--zig PATH [--arch x64|arm64] | --cc PATH --cxx PATH]
//                                [--check]
//   --variant  which binaries to build (default all)
//   --jobs     parallel compile jobs (default 2; CUDA compiles need a lot of memory per job)
//   --zig      compile and link C/C++ with this zig (0.11 or newer) for <arch>-linux-gnu.2.28, so the binary runs on
//              glibc 2.28 whatever glibc this machine has (zig ships the headers and link stubs of each glibc
//              version, and links its libc++ statically). CPU build only: nvcc needs a GCC or Clang host compiler.
//   --arch     with --zig: cross-compile for this Linux architecture (x64 or arm64) into prebuilds/linux-<arch>/; a
//              binary for another architecture is not loaded to check it, only its glibc symbols are
//   --cc/--cxx other C and C++ compilers
//   --check    build nothing: check the binaries already in prebuilds/ (loadable, version, variant, glibc symbols)
// After each build the binary is loaded in a fresh Node.js process to check its version and variant, and its glibc
// symbol versions are checked (tools/check-glibc.mjs): one newer than GLIBC 2.28 fails the build. A build with the
// system compiler on a newer glibc (Debian 12 has 2.36) therefore fails that check; the binary is still written.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { GLIBC_BASELINE, glibcRequirement } from './check-glibc.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

const { values } = parseArgs({
  options: {
    variant: { type: 'string', default: 'all' },
    jobs: { type: 'string', default: '2' },
    zig: { type: 'string' },
    arch: { type: 'string', default: process.arch },
    cc: { type: 'string' },
    cxx: { type: 'string' },
    check: { type: 'boolean', default: false },
  },
});
if (!['cpu', 'cuda', 'all'].includes(values.variant)) {
  console.error(`prebuild: --variant must be cpu, cuda or all, not "${values.variant}"`);
  process.exit(2);
}
const jobs = Number(values.jobs);
if (!Number.isInteger(jobs) || jobs < 1) {
  console.error(`prebuild: --jobs must be a positive integer, not "${values.jobs}"`);
  process.exit(2);
}

const ZIG_ARCH = { x64: 'x86_64', arm64: 'aarch64' };
const arch = values.arch;
const cross = arch !== process.arch;
if (cross && (!values.zig || process.platform !== 'linux' || !(arch in ZIG_ARCH))) {
  console.error(`prebuild: --arch ${arch} needs --zig, on Linux, and one of ${Object.keys(ZIG_ARCH).join(', ')}`);
  process.exit(2);
}
const libc = process.platform !== 'linux' ? null : fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
const outDir = path.join(root, 'prebuilds', `${process.platform}-${arch}`);
const variants = {
  cpu: { cuda: 'OFF', file: ['showo2', 'napi', ...(libc ? [libc] : []), 'node'].join('.') },
  cuda: { cuda: 'ON', file: ['showo2', 'napi', ...(libc ? [libc] : []), 'cuda', 'node'].join('.') },
};
const selected = values.variant === 'all' ? ['cpu', 'cuda'] : [values.variant];
if (values.zig && (values.cc || values.cxx)) {
  console.error('prebuild: --zig and --cc/--cxx exclude each other');
  process.exit(2);
}
if (values.zig && selected.includes('cuda')) {
  console.error('prebuild: --zig builds the CPU variant only (nvcc needs a GCC or Clang host compiler): add --variant cpu');
  process.exit(2);
}

/** Wrapper scripts that run `zig cc` / `zig c++` for the glibc 2.28 target (CMake wants one program per compiler). */
function zigCompilers(dir) {
  const zig = path.resolve(values.zig);
  const target = `${ZIG_ARCH[arch]}-linux-gnu.2.28`;
  fs.mkdirSync(dir, { recursive: true });
  const write = (name, mode) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, `#!/bin/sh\nexec ${JSON.stringify(zig)} ${mode} -target ${target} "$@"\n`, { mode: 0o755 });
    return file;
  };
  return { cc: write('zig-cc', 'cc'), cxx: write('zig-c++', 'c++') };
}
const mib = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;

function build(name) {
  const variant = variants[name];
  // Another compiler needs its own CMake cache.
  const suffix = `${values.zig ? '-zig' : values.cc || values.cxx ? '-custom' : ''}${cross ? `-${arch}` : ''}`;
  const buildDir = path.join(root, `build-prebuild-${name}${suffix}`);
  const compilers = values.zig ? zigCompilers(path.join(root, `build-prebuild-zig-${arch}`)) : { cc: values.cc, cxx: values.cxx };
  const args = [
    path.join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js'),
    // `build`, not `compile`: after a failed build, `compile` empties the build directory and starts again, which
    // costs the CUDA build its 8 minutes a second time.
    'build',
    '--directory', root,
    '--out', buildDir,
    '--config', 'Release',
    '--parallel', String(jobs),
    `--CDSHOWO2_CUDA=${variant.cuda}`,
    `--CDSHOWO2_VERSION=${pkg.version}`,
    '--CDSHOWO2_PORTABLE=ON',
    ...(compilers.cc ? ['--cc', compilers.cc] : []),
    ...(compilers.cxx ? ['--cxx', compilers.cxx] : []),
    ...(cross ? ['--arch', arch, '--CDCMAKE_SYSTEM_NAME=Linux', `--CDCMAKE_SYSTEM_PROCESSOR=${ZIG_ARCH[arch]}`] : []),
  ];
  console.log(`prebuild: building the ${name} variant in ${path.relative(root, buildDir)}/`);
  const started = Date.now();
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`cmake-js failed for the ${name} variant (exit code ${r.status})`);
  // The AVX2 objects must define no weak symbols (cmake/check_avx2_isolation.cmake, also a ctest): with another
  // compiler or C++ library, another inline function could end up compiled for AVX2 and used everywhere.
  const avx2 = fs.readdirSync(buildDir, { recursive: true }).filter((f) => /_avx2\.cpp\.o$/.test(f)).map((f) => path.join(buildDir, f));
  if (avx2.length > 0) {
    const isolation = spawnSync(
      'cmake',
      ['-DNM=nm', `-DOBJECTS=${avx2.join(';')}`, '-P', path.join(root, 'cmake', 'check_avx2_isolation.cmake')],
      { cwd: root, stdio: 'inherit' },
    );
    if (isolation.status !== 0) throw new Error(`the AVX2 objects of the ${name} variant define weak symbols (see above)`);
  }
  fs.mkdirSync(outDir, { recursive: true });
  const target = path.join(outDir, variant.file);
  fs.copyFileSync(path.join(buildDir, 'Release', 'showo2.node'), target);
  console.log(`prebuild: wrote ${path.relative(root, target)} in ${((Date.now() - started) / 60000).toFixed(1)} min`);
}

/** Loads the binary in a fresh process and checks what it reports; returns a one-line summary or throws. */
function check(name) {
  const file = path.join(outDir, variants[name].file);
  if (!fs.existsSync(file)) throw new Error(`${path.relative(root, file)} does not exist: run "npm run prebuild"`);
  const reported = cross ? { version: pkg.version, variant: name } : JSON.parse(
    execFileSync(
      process.execPath,
      ['-e', 'const a = require(process.argv[1]); console.log(JSON.stringify({ version: a.version, variant: a.variant }))', file],
      { encoding: 'utf8' },
    ),
  );
  const problems = [];
  if (reported.version !== pkg.version) problems.push(`built for version ${reported.version}, package is ${pkg.version}`);
  if (reported.variant !== name) problems.push(`reports variant "${reported.variant}", expected "${name}"`);
  let glibc = 'n/a';
  if (libc === 'glibc') {
    const need = glibcRequirement(file);
    glibc = `needs GLIBC ${need.glibc ?? 'none'}${need.glibcxx ? `, GLIBCXX ${need.glibcxx}` : ''}`;
    if (need.tooNew.length > 0) {
      problems.push(`needs symbols newer than GLIBC ${GLIBC_BASELINE}: ${need.tooNew.slice(0, 8).join(', ')}` +
        (need.tooNew.length > 8 ? ` and ${need.tooNew.length - 8} more` : '') +
        (name === 'cpu' && !values.zig ? ' (build it with --zig PATH to target glibc 2.28)' : ''));
    }
  }
  const loaded = cross ? `not loaded (${arch} binary on ${process.arch})` : `version ${reported.version}`;
  const summary = `${path.relative(root, file)}: ${name}, ${loaded}, ${mib(fs.statSync(file).size)}, ${glibc}`;
  if (problems.length > 0) throw new Error(`${summary}\n  ${problems.join('\n  ')}`);
  return summary;
}

let failed = false;
for (const name of selected) {
  try {
    if (!values.check) build(name);
    console.log(`prebuild: ok ${check(name)}`);
  } catch (err) {
    failed = true;
    console.error(`prebuild: ${err.message}`);
  }
}
process.exit(failed ? 1 : 0);
