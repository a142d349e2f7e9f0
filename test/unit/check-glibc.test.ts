// tools/check-glibc.mjs, the check that a prebuilt binary runs on glibc 2.28 (tools/prebuild.mjs runs it after each
// build; `npm run check:glibc` runs it on prebuilds/): what it reads from `readelf --dyn-syms`, and its exit status.
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

import test from 'ava';

import { repoRoot, runNode } from '../helpers.js';

interface Requirement {
  glibc: string | null;
  glibcxx: string | null;
  tooNew: string[];
}
interface CheckGlibc {
  GLIBC_BASELINE: string;
  GLIBCXX_BASELINE: string;
  compareVersions(a: string, b: string): number;
  glibcRequirement(file: string): Requirement;
  requirementFromSymbols(table: string): Requirement;
}
const script = path.join(repoRoot, 'tools', 'check-glibc.mjs');
const load = async () => (await import(pathToFileURL(script).href)) as CheckGlibc;

// Lines as `readelf -W --dyn-syms` prints them: an import of each kind, an export (not a requirement), an
// unversioned import.
const table = `
Symbol table '.dynsym' contains 11 entries:
   Num:    Value          Size Type    Bind   Vis      Ndx Name
     0: 0000000000000000     0 NOTYPE  LOCAL  DEFAULT  UND 
     1: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND memcpy@GLIBC_2.14 (2)
     2: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND clock_gettime@GLIBC_2.17 (3)
     3: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND fcntl64@GLIBC_2.28 (4)
     4: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND pthread_create@GLIBC_2.34 (5)
     5: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND exp@GLIBC_2.29 (6)
     6: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND _ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE9_M_createERmm@GLIBCXX_3.4.21 (7)
     7: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND _ZSt21__glibcxx_assert_failPKciS0_S0_@GLIBCXX_3.4.30 (8)
     8: 0000000000000000     0 NOTYPE  WEAK   DEFAULT  UND __gmon_start__
     9: 00000000000a1b20    68 FUNC    GLOBAL DEFAULT   12 napi_register_module_v1
    10: 0000000000000000     0 OBJECT  GLOBAL DEFAULT  UND __libc_single_threaded@GLIBC_2.32 (9)
`;

test('the newest GLIBC and GLIBCXX versions imported, and every import past glibc 2.28 / GCC 8', async (t) => {
  const { requirementFromSymbols, GLIBC_BASELINE, GLIBCXX_BASELINE } = await load();
  t.is(GLIBC_BASELINE, '2.28');
  t.is(GLIBCXX_BASELINE, '3.4.25');
  t.deepEqual(requirementFromSymbols(table), {
    glibc: '2.34',
    glibcxx: '3.4.30',
    tooNew: [
      'pthread_create@GLIBC_2.34',
      'exp@GLIBC_2.29',
      '_ZSt21__glibcxx_assert_failPKciS0_S0_@GLIBCXX_3.4.30',
      '__libc_single_threaded@GLIBC_2.32',
    ],
  });
  const old = table.split('\n').filter((line) => !/GLIBC_2\.(29|3\d)|GLIBCXX_3\.4\.30/.test(line)).join('\n');
  t.deepEqual(requirementFromSymbols(old), { glibc: '2.28', glibcxx: '3.4.21', tooNew: [] });
  t.deepEqual(requirementFromSymbols(''), { glibc: null, glibcxx: null, tooNew: [] });
});

test('versions compare by number, not as text', async (t) => {
  const { compareVersions } = await load();
  t.is(compareVersions('2.28', '2.3'), 1);
  t.is(compareVersions('2.3.4', '2.28'), -1);
  t.is(compareVersions('3.4.25', '3.4.25'), 0);
  t.is(compareVersions('2.28.1', '2.28'), 1);
});

test('the script exits 1 exactly when a binary needs more than glibc 2.28, naming the imports', async (t) => {
  const { glibcRequirement } = await load();
  const addon = path.join(repoRoot, 'build', 'Release', 'showo2.node');
  const need = glibcRequirement(addon);
  const r = await runNode([script, addon]);
  t.log(`build/Release/showo2.node needs GLIBC ${need.glibc}, GLIBCXX ${need.glibcxx ?? 'none'}`);
  if (need.tooNew.length === 0) {
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /^check-glibc: ok /);
  } else {
    t.is(r.code, 1);
    t.true(r.stderr.includes(need.tooNew[0]!), r.stderr);
    t.regex(r.stderr, new RegExp(`${need.tooNew.length} import\\(s\\) newer than GLIBC 2\\.28`));
  }
  const missing = await runNode([script, path.join(repoRoot, 'no-such-file.node')]);
  t.not(missing.code, 0);
});
