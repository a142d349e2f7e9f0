#!/usr/bin/env node
// Checks that native binaries run on Linux with glibc 2.28 (Debian 10, RHEL/Rocky/Alma 8, Ubuntu 18.10), the oldest
// C library the prebuilt binaries promise: every versioned symbol they import from glibc must be GLIBC_2.28 or older,
// and from libstdc++ GLIBCXX_3.4.25 or older (GCC 8, what RHEL 8 ships), or better none (tools/prebuild.mjs links the
// C++ runtime statically). Reads the dynamic symbol table with `readelf --dyn-syms` (binutils), which reads the
// binaries of every architecture (arm64 ones too, on an x64 machine).
//
// Usage: node tools/check-glibc.mjs [FILE.node ...]
//   without files: every prebuilds/linux-*/*.glibc*.node in the repository. Exits 1 when one needs more.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The newest GLIBC_x.y symbol version a prebuilt binary may import. */
export const GLIBC_BASELINE = '2.28';
/** The newest GLIBCXX_x.y.z symbol version a prebuilt binary may import (libstdc++ of GCC 8). */
export const GLIBCXX_BASELINE = '3.4.25';

/** -1, 0 or 1 as dotted version a is older than, equal to or newer than b. */
export function compareVersions(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/**
 * The glibc and libstdc++ versions a binary needs, from the versioned symbols it imports.
 * `tooNew` lists each import newer than the baselines as `name@GLIBC_x.y`.
 */
export function glibcRequirement(file) {
  const table = execFileSync('readelf', ['-W', '--dyn-syms', file], { encoding: 'utf8', maxBuffer: 256 * 2 ** 20 });
  return requirementFromSymbols(table);
}

/** {@link glibcRequirement} from the text of `readelf -W --dyn-syms`. */
export function requirementFromSymbols(table) {
  let glibc = null;
  let glibcxx = null;
  const tooNew = [];
  for (const line of table.split('\n')) {
    // e.g. "     3: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND pthread_create@GLIBC_2.34 (3)"
    const m = /\sUND\s+([^@\s]+)@(GLIBC|GLIBCXX)_([\d.]+)/.exec(line);
    if (!m) continue;
    const [, symbol, lib, version] = m;
    if (lib === 'GLIBC') {
      if (glibc === null || compareVersions(version, glibc) > 0) glibc = version;
      if (compareVersions(version, GLIBC_BASELINE) > 0) tooNew.push(`${symbol}@GLIBC_${version}`);
    } else {
      if (glibcxx === null || compareVersions(version, glibcxx) > 0) glibcxx = version;
      if (compareVersions(version, GLIBCXX_BASELINE) > 0) tooNew.push(`${symbol}@GLIBCXX_${version}`);
    }
  }
  return { glibc, glibcxx, tooNew };
}

/** The glibc binaries in prebuilds/. */
export function prebuiltGlibcBinaries(root) {
  const dir = path.join(root, 'prebuilds');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((d) => d.startsWith('linux-'))
    .flatMap((d) => fs.readdirSync(path.join(dir, d)).map((f) => path.join(dir, d, f)))
    .filter((f) => f.endsWith('.node') && path.basename(f).split('.').includes('glibc'));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const files = process.argv.length > 2 ? process.argv.slice(2) : prebuiltGlibcBinaries(root);
  if (files.length === 0) {
    console.error('check-glibc: no binaries to check (prebuilds/linux-*/ has no *.glibc*.node: run "npm run prebuild")');
    process.exit(1);
  }
  let failed = false;
  for (const file of files) {
    const need = glibcRequirement(file);
    const summary = `${file}: GLIBC ${need.glibc ?? 'none'}, GLIBCXX ${need.glibcxx ?? 'none'}`;
    if (need.tooNew.length === 0) {
      console.log(`check-glibc: ok ${summary}`);
    } else {
      failed = true;
      console.error(
        `check-glibc: ${summary}: ${need.tooNew.length} import(s) newer than GLIBC ${GLIBC_BASELINE} / ` +
          `GLIBCXX ${GLIBCXX_BASELINE}:\n  ${need.tooNew.join('\n  ')}`,
      );
    }
  }
  process.exit(failed ? 1 : 0);
}
