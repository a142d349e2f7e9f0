/**
 * Small predicates for validating arguments in TypeScript before anything reaches the addon (sharp's `is.mjs`).
 * Each answers one question and never throws; call sites pair them with `invalidParameterError`.
 *
 * @module
 * @internal
 */

/** Not `undefined` and not `null`. */
export function isDefined<T>(value: T | undefined | null): value is T {
  return value !== undefined && value !== null;
}

/** A plain object literal (`{...}`), not an array, class instance, or null. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function isString(value: unknown): value is string {
  return typeof value === 'string';
}

export function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

/** A number that is neither NaN nor infinite. */
export function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** A finite integer (`Number.isInteger`: no NaN, no Infinity, no fractions). */
export function isInteger(value: unknown): value is number {
  return Number.isInteger(value);
}

export function isPositiveInteger(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) > 0;
}

/** `min <= value <= max`, for numbers. */
export function inRange(value: number, min: number, max: number): boolean {
  return value >= min && value <= max;
}

/** One of the listed values (strict equality). */
export function isOneOf<T>(value: unknown, allowed: readonly T[]): value is T {
  return allowed.includes(value as T);
}

/** The index of the first NaN or ±Infinity in `data`, or -1 when every value is finite. */
export function firstNonFinite(data: ArrayLike<number>): number {
  for (let i = 0; i < data.length; i++) {
    // x - x is 0 for a finite x and NaN for NaN and ±Infinity: one comparison per value.
    const x = data[i]!;
    if (x - x !== 0) return i;
  }
  return -1;
}
