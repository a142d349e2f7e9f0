/**
 * The one place that loads the native addon (after sharp's lib/sharp.mjs).
 *
 * It tries each candidate binary in order, remembers why each one failed, and when none loads throws a single
 * ShowO2Error `ERR_NATIVE_LOAD` that lists every attempt and the likely fixes. The addon is loaded lazily, on first
 * use, so `import 'showo2'` itself never fails and the error surfaces from the call that needed the addon.
 *
 * @module
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { Addon } from '../typings/addon.js';
import { createError } from './errors.js';

/** A place the addon may be: `resolve()` returns a path to try, or throws to say why there is none. */
export interface AddonCandidate {
  label: string;
  resolve(): string;
}

/** The platform facts the error message reports (injectable so tests can pin them). */
export interface LoadEnvironment {
  platform: string;
  arch: string;
  nodeVersion: string;
  abi: string;
  napiVersion: string;
  libc: 'glibc' | 'musl' | null;
}

/** The package root: dist/native.js lives one level below it. */
export const packageRoot = path.resolve(__dirname, '..');

export function currentEnvironment(): LoadEnvironment {
  const libc = process.platform !== 'linux' ? null : fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
  return {
    platform: process.platform,
    arch: process.arch,
    nodeVersion: process.versions.node,
    abi: process.versions.modules,
    napiVersion: process.versions.napi ?? 'unknown',
    libc,
  };
}

/**
 * The prebuilt binaries in prebuilds/<platform>-<arch>/ that node-gyp-build would accept for this runtime, in its
 * order of preference: ABI-tagged before N-API-tagged, then the most tags (e.g. `node.napi.glibc.node` before
 * `node.napi.node`). File names are dot-separated tags ending in `.node`; `npm run prebuild` writes
 * `showo2.napi.glibc.node` (`.musl` on Alpine, no libc tag off Linux).
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

/**
 * Where the addon may be, in the order tried:
 *  1. build/Release/showo2.node: a from-source build (`npm install` without a matching prebuild, or
 *     `npm rebuild showo2 --build-from-source`). It goes first, as in node-gyp-build, because it only exists when
 *     someone built on purpose, and it is the binary the install script just checked.
 *  2. prebuilds/<platform>-<arch>/*.node: the binaries shipped in the package (`npm run prebuild`).
 *  3. node-gyp-build's own lookup, which adds the SHOWO2_PREBUILD override and prebuilds next to the node binary,
 *     and when nothing is found explains what it looked for.
 */
export function defaultCandidates(root: string = packageRoot, env: LoadEnvironment = currentEnvironment()): AddonCandidate[] {
  const candidates: AddonCandidate[] = [
    { label: 'from-source build', resolve: () => path.join(root, 'build', 'Release', 'showo2.node') },
  ];
  const prebuilt = prebuiltBinaries(root, env);
  if (prebuilt.length === 0) {
    candidates.push({
      label: 'prebuilt binary',
      resolve: () => {
        throw new Error(`none for ${env.platform}-${env.arch} in ${path.join(root, 'prebuilds')}`);
      },
    });
  }
  for (const file of prebuilt) candidates.push({ label: 'prebuilt binary', resolve: () => file });
  candidates.push({
    label: 'node-gyp-build lookup',
    resolve: () => (require('node-gyp-build') as { resolve(dir: string): string }).resolve(root),
  });
  return candidates;
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0]!.trim();
}

/** The ERR_NATIVE_LOAD message: every attempt, then what to do about it. */
export function nativeLoadErrorMessage(attempts: { label: string; detail: string }[], env: LoadEnvironment): string {
  const target = `${env.platform}-${env.arch}${env.libc ? ` (${env.libc})` : ''}`;
  const lines = [
    `Could not load the showo2 native addon for ${target}, Node.js ${env.nodeVersion} (ABI ${env.abi}, N-API ${env.napiVersion}).`,
    'Tried:',
    ...attempts.map((a) => `  - ${a.label}: ${a.detail}`),
    'Possible solutions:',
    '  - Build it from source: npm rebuild showo2 --build-from-source',
    '  - Install the build toolchain first: a C++17 compiler, CMake >= 3.20 and Ninja or make',
    '    (Debian/Ubuntu: apt-get install -y g++ cmake ninja-build; macOS: xcode-select --install && brew install cmake).',
    `  - If node_modules was installed on another OS, CPU or Node.js version, reinstall it on this ${target} machine.`,
  ];
  const details = attempts.map((a) => a.detail).join('\n');
  if (/GLIBC|GLIBCXX|CXXABI/.test(details)) {
    lines.push('  - The binary needs a newer C/C++ runtime than this system has: build from source here.');
  }
  if (/cuda|libcu/i.test(details)) {
    lines.push(
      '  - A CUDA library failed to load: install the NVIDIA driver, or build without CUDA:',
      '    SHOWO2_CUDA=OFF npm rebuild showo2 --build-from-source',
    );
  }
  return lines.join('\n');
}

/**
 * Loads the first candidate that works, or throws ERR_NATIVE_LOAD naming every failure.
 * `load` is `require` in production; tests pass candidates pointing at missing or broken files.
 */
export function loadAddonFrom(
  candidates: AddonCandidate[],
  env: LoadEnvironment = currentEnvironment(),
  load: (file: string) => unknown = require,
): { addon: Addon; file: string } {
  const attempts: { label: string; detail: string }[] = [];
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
    try {
      return { addon: load(file) as Addon, file };
    } catch (err) {
      attempts.push({ label: candidate.label, detail: `${file}: ${firstLine(err)}` });
    }
  }
  throw createError('ERR_NATIVE_LOAD', nativeLoadErrorMessage(attempts, env));
}

let loaded: { addon: Addon; file: string } | undefined;

/** The addon, loaded on first call. Throws ERR_NATIVE_LOAD (again on every call) when no binary loads. */
export function addon(): Addon {
  loaded ??= loadAddonFrom(defaultCandidates());
  return loaded.addon;
}

/** The path of the binary that `addon()` loaded. */
export function addonFile(): string {
  addon();
  return loaded!.file;
}
