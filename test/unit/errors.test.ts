// ShowO2Error, the invalidParameterError wording, and how native errors become ShowO2Errors.
import test from 'ava';

import { ShowO2Error, invalidParameterError } from 'showo2';
import { callNative, describeValue, disposedError, fromNativeError } from '../../dist/errors.js';

test('ShowO2Error carries its code, name and cause', (t) => {
  const cause = new Error('inner');
  const err = new ShowO2Error('ERR_CORRUPT_FILE', 'bad header', { cause });
  t.true(err instanceof Error);
  t.is(err.code, 'ERR_CORRUPT_FILE');
  t.is(err.name, 'ShowO2Error');
  t.is(err.message, 'bad header');
  t.is(err.cause, cause);
});

test('invalidParameterError names the parameter, the expectation and what arrived', (t) => {
  const err = invalidParameterError('threads', 'a positive integer', -1);
  t.true(err instanceof ShowO2Error);
  t.is(err.code, 'ERR_INVALID_ARGUMENT');
  t.is(err.message, 'Expected a positive integer for threads but received -1 (number)');
});

const described: [unknown, string][] = [
  [-1, '-1 (number)'],
  [Number.NaN, 'NaN (number)'],
  [true, 'true (boolean)'],
  ['', '"" (string)'],
  ['bf16', '"bf16" (string)'],
  ['x'.repeat(100), `"${'x'.repeat(57)}..." (string)`],
  [10n, '10n (bigint)'],
  [null, 'null'],
  [undefined, 'undefined'],
  [[1, 2], 'an array of length 2'],
  [{}, 'an object'],
  [new Map(), 'an object (Map)'],
  [() => 1, 'a function'],
];
for (const [value, text] of described) {
  test(`describeValue(${text})`, (t) => {
    t.is(describeValue(value), text);
  });
}

test('disposedError says what was disposed and what was attempted', (t) => {
  const err = disposedError('WeightFile', 'read a tensor');
  t.is(err.code, 'ERR_DISPOSED');
  t.is(err.message, 'Cannot read a tensor: the WeightFile has been disposed');
});

test('fromNativeError keeps a known native code and the message', (t) => {
  const native = Object.assign(new Error('/x.bin: no such file'), { code: 'ERR_FILE_NOT_FOUND' });
  const err = fromNativeError(native, new Error());
  t.true(err instanceof ShowO2Error);
  t.is(err.code, 'ERR_FILE_NOT_FOUND');
  t.is(err.message, '/x.bin: no such file');
  t.is(err.cause, native);
});

test('fromNativeError maps anything without a known code to ERR_INTERNAL', (t) => {
  t.is(fromNativeError(Object.assign(new Error('m'), { code: 'EWHATEVER' }), new Error()).code, 'ERR_INTERNAL');
  t.is(fromNativeError(new TypeError('m'), new Error()).code, 'ERR_INTERNAL');
  t.is(fromNativeError('a string', new Error()).message, 'a string');
});

test('callNative rejects with the caller\'s stack, not the native callback\'s', async (t) => {
  async function someCallerFunction() {
    return callNative(() => Promise.reject(Object.assign(new Error('boom'), { code: 'ERR_CUDA' })));
  }
  const err = await t.throwsAsync(someCallerFunction(), { instanceOf: ShowO2Error, code: 'ERR_CUDA', message: 'boom' });
  t.regex(err!.stack!, /^ShowO2Error: boom\n/);
  t.regex(err!.stack!, /someCallerFunction/);
});

test('callNative turns a synchronous throw into a rejection', async (t) => {
  await t.throwsAsync(
    callNative(() => {
      throw Object.assign(new Error('gone'), { code: 'ERR_DISPOSED' });
    }),
    { instanceOf: ShowO2Error, code: 'ERR_DISPOSED' },
  );
});
