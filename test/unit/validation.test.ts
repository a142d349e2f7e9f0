// Argument validation happens in TypeScript, before the addon is involved: exact codes and messages.
import * as path from 'node:path';

import test from 'ava';

import { convertToSafetensors, ShowO2Error, WeightFile } from 'showo2';
import {
  inRange,
  isDefined,
  isInteger,
  isNonEmptyString,
  isOneOf,
  isPlainObject,
  isPositiveInteger,
  isString,
} from '../../dist/validate.js';

test('predicates', (t) => {
  t.true(isDefined(0));
  t.false(isDefined(null));
  t.false(isDefined(undefined));
  t.true(isPlainObject({}));
  t.true(isPlainObject(Object.create(null)));
  t.false(isPlainObject([]));
  t.false(isPlainObject(new Map()));
  t.false(isPlainObject(null));
  t.true(isString(''));
  t.false(isString(1));
  t.true(isNonEmptyString('a'));
  t.false(isNonEmptyString(''));
  t.true(isInteger(-3));
  t.false(isInteger(1.5));
  t.false(isInteger(Number.POSITIVE_INFINITY));
  t.false(isInteger('1'));
  t.true(isPositiveInteger(1));
  t.false(isPositiveInteger(0));
  t.true(inRange(1, 1, 2));
  t.false(inRange(3, 1, 2));
  t.true(isOneOf('BF16', ['F32', 'BF16']));
  t.false(isOneOf('bf16', ['F32', 'BF16']));
});

const invalidArgument = (message: string) => ({ instanceOf: ShowO2Error, code: 'ERR_INVALID_ARGUMENT', message });

test('WeightFile.open rejects a path that is not a non-empty string', async (t) => {
  await t.throwsAsync(
    WeightFile.open(''),
    invalidArgument('Expected a non-empty string for path but received "" (string)'),
  );
  await t.throwsAsync(
    WeightFile.open(42 as unknown as string),
    invalidArgument('Expected a non-empty string for path but received 42 (number)'),
  );
  await t.throwsAsync(
    WeightFile.open(undefined as unknown as string),
    invalidArgument('Expected a non-empty string for path but received undefined'),
  );
});

test('convertToSafetensors validates src, dst and options', async (t) => {
  await t.throwsAsync(
    convertToSafetensors('', 'out.safetensors'),
    invalidArgument('Expected a non-empty string for src but received "" (string)'),
  );
  await t.throwsAsync(
    convertToSafetensors('in.bin', null as unknown as string),
    invalidArgument('Expected a non-empty string for dst but received null'),
  );
  await t.throwsAsync(
    convertToSafetensors('in.bin', path.resolve('in.bin')),
    invalidArgument(`Expected a path other than src for dst but received ${JSON.stringify(path.resolve('in.bin'))} (string)`),
  );
  await t.throwsAsync(
    convertToSafetensors('in.bin', 'out.safetensors', [] as never),
    invalidArgument('Expected an object for options but received an array of length 0'),
  );
  await t.throwsAsync(
    convertToSafetensors('in.bin', 'out.safetensors', { dtype: 'bf16' as never }),
    invalidArgument('Expected one of F32, BF16, F16 for options.dtype but received "bf16" (string)'),
  );
  await t.throwsAsync(
    convertToSafetensors('in.bin', 'out.safetensors', { dtype: 'I64' as never }),
    invalidArgument('Expected one of F32, BF16, F16 for options.dtype but received "I64" (string)'),
  );
});
