/**
 * What every `showo2` command shares: the command table's shape, argument checks that fail as usage errors, error
 * hints, JSON output and file writing. (Progress is in progress.ts, the model flags and loading in load-model.ts.)
 *
 * @module
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { createError, describeValue, ERROR_CLASSES, ShowO2Error, type ErrorCode } from '../errors.js';
import { packageRoot } from '../native.js';
import type { Progress } from './progress.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** 128 + SIGINT, what shells report for a program stopped by Ctrl-C. */
export const EXIT_INTERRUPTED = 130;

/** Where the CLI reads and writes; injectable so it can run in-process. */
export interface CliIo {
  /** Writes a line to stdout. */
  out(line: string): void;
  /** Writes text to stdout as it is (streamed answers). */
  write(text: string): void;
  /** Writes a line to stderr. */
  err(line: string): void;
  /** Writes text to stderr as it is (the updating progress line). */
  errWrite(text: string): void;
  /** Whether stderr is a terminal (an updating progress line) or not (plain progress lines). */
  errIsTTY: boolean;
  /** Standard output as a stream, for the interactive chat's prompt. */
  stdout: NodeJS.WritableStream;
  /** Standard input, for `chat`. */
  stdin: NodeJS.ReadableStream;
  /** Whether stdin is a terminal (interactive chat with a prompt) or a pipe (one question per line). */
  stdinIsTTY: boolean;
}

export const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  write: (text) => process.stdout.write(text),
  err: (line) => process.stderr.write(`${line}\n`),
  errWrite: (text) => process.stderr.write(text),
  get errIsTTY() {
    return process.stderr.isTTY === true;
  },
  get stdout() {
    return process.stdout;
  },
  get stdin() {
    return process.stdin;
  },
  get stdinIsTTY() {
    return process.stdin.isTTY === true;
  },
};

/** Bad usage: printed with the command's usage line, exit code 2. */
export class UsageError extends Error {}

/** One flag of a command, as parseArgs takes it plus what `showo2 help <command>` prints. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** May be given more than once (the values arrive as an array). */
  multiple?: boolean;
  /** Positionals that follow the flag are more values of it (`--video-frames a.png b.png`). Implies `multiple`. */
  greedy?: boolean;
  /** The value's placeholder in the help, e.g. `N` or `PATH`. */
  value?: string;
  /** What it does, ending with its default. */
  description: string;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

/** What a command runs with. */
export interface CommandContext {
  io: CliIo;
  /** `--json`: one JSON object (or JSON lines for streams) on stdout instead of text. */
  json: boolean;
  /** `--quiet`: no progress and no notices on stderr. */
  quiet: boolean;
  progress: Progress;
  /** Aborted by Ctrl-C (SIGINT). */
  signal: AbortSignal;
}

export interface Command {
  /** One line for `showo2 --help`. */
  summary: string;
  /** The usage line after `showo2 `, e.g. `generate <model-dir> --prompt TEXT [options]`. */
  usage: string;
  /** Required positional argument names (the count is checked). */
  positionals: string[];
  /** Optional positional arguments after the required ones, in order. */
  optionalPositionals?: string[];
  /** Whether the last optional positional may repeat (`generate PROMPT...`). */
  variadic?: boolean;
  options: Record<string, OptionSpec>;
  /** More help text: details and examples. */
  details?: string;
  /** Whether the command stops cleanly on Ctrl-C through `signal`; otherwise Ctrl-C ends the process at once. */
  cancellable?: boolean;
  /** Runs the command; resolves with its exit code (0 when it returns nothing). */
  run(ctx: CommandContext, args: string[], values: OptionValues): Promise<number | void>;
}

/** The flags every command takes, documented once in each command's help. */
export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  json: { type: 'boolean', description: 'Print one JSON object (JSON lines for streams) to stdout instead of text. Defaults to off.' },
  quiet: { type: 'boolean', short: 'q', description: 'No progress output on stderr. Defaults to off.' },
  help: { type: 'boolean', short: 'h', description: 'Show this help.' },
};

// ---- Argument values ----

export function stringValue(values: OptionValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function stringList(values: OptionValues, name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

/** An integer flag within [min, max]; a usage error names the flag and what arrived. */
export function intValue(values: OptionValues, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const raw = stringValue(values, name);
  if (raw === undefined) return undefined;
  const n = /^[+-]?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw new UsageError(`Expected ${range} for --${name} but received ${describeValue(raw)}`);
  }
  return n;
}

/** A finite number flag; `check` states the domain ("a number > 0") and tests it. */
export function numberValue(values: OptionValues, name: string, expected: string, check: (n: number) => boolean): number | undefined {
  const raw = stringValue(values, name);
  if (raw === undefined) return undefined;
  const n = raw.trim() === '' ? NaN : Number(raw);
  if (!Number.isFinite(n) || !check(n)) throw new UsageError(`Expected ${expected} for --${name} but received ${describeValue(raw)}`);
  return n;
}

/** The text sampler's flags (`--max-tokens`, `--temperature`, `--top-p`, `--top-k`), those given, validated. */
export function textSamplingValues(
  values: OptionValues,
  maxTokensLimit: number,
): { maxTokens?: number; temperature?: number; topP?: number; topK?: number } {
  const out: { maxTokens?: number; temperature?: number; topP?: number; topK?: number } = {};
  const maxTokens = intValue(values, 'max-tokens', 1, maxTokensLimit);
  if (maxTokens !== undefined) out.maxTokens = maxTokens;
  const temperature = numberValue(values, 'temperature', 'a number >= 0', (n) => n >= 0);
  if (temperature !== undefined) out.temperature = temperature;
  const topP = numberValue(values, 'top-p', 'a number in (0, 1]', (n) => n > 0 && n <= 1);
  if (topP !== undefined) out.topP = topP;
  const topK = intValue(values, 'top-k', 0);
  if (topK !== undefined) out.topK = topK;
  return out;
}

export function choiceValue<T extends string>(values: OptionValues, name: string, choices: readonly T[]): T | undefined {
  const raw = stringValue(values, name);
  if (raw === undefined) return undefined;
  if (!(choices as readonly string[]).includes(raw)) {
    throw new UsageError(`Expected one of ${choices.join(', ')} for --${name} but received ${describeValue(raw)}`);
  }
  return raw as T;
}

/** The library's option names, as the CLI flags that set them. */
const FLAG_OF_OPTION: Record<string, string> = {
  width: '--width',
  height: '--height',
  steps: '--steps',
  guidanceScale: '--guidance',
  shift: '--shift',
  solver: '--solver',
  seed: '--seed',
  frames: '--frames',
  image: '--image',
  maxTokens: '--max-tokens',
  temperature: '--temperature',
  topP: '--top-p',
  topK: '--top-k',
  'video.numFrames': '--num-frames',
  vaePath: '--vae',
  tokenizerPath: '--tokenizer',
  threads: '--threads',
  device: '--device',
};

/**
 * Speaks of flags instead of the library's option names: "Expected ... for options.width but received ..." becomes a
 * usage error about `--width` (a value only the loaded model can check, such as a width that is not a multiple of
 * its patch, then reads like any other bad flag), and "options.image" in other messages becomes "--image".
 */
export function asFlagError(err: unknown): unknown {
  if (!(err instanceof ShowO2Error)) return err;
  const match = /^(Expected .* for )options\.([\w.]+)( but received .*)$/s.exec(err.message);
  const flag = match ? FLAG_OF_OPTION[match[2]!] : undefined;
  if (err.code === 'ERR_INVALID_ARGUMENT' && flag) return new UsageError(`${match![1]}${flag}${match![3]}`);
  // An option path is dot-separated words; a full stop after it ends the sentence, not the path.
  const message = err.message.replace(/\boptions\.(\w+(?:\.\w+)*)/g, (whole, name: string) => FLAG_OF_OPTION[name] ?? whole);
  if (message === err.message) return err;
  const renamed = createError(err.code, message, { cause: err });
  const hint = hints.get(err);
  if (hint !== undefined) hints.set(renamed, hint);
  return renamed;
}

// ---- Errors: what to do next ----

const hints = new WeakMap<object, string>();

/** Attaches a hint that fits where the error happened better than the code's generic one. */
export function withHint<T>(promise: Promise<T>, hint: (err: ShowO2Error) => string | undefined): Promise<T> {
  return promise.catch((err: unknown) => {
    if (err instanceof ShowO2Error) {
      const h = hint(err);
      if (h !== undefined) hints.set(err, h);
    }
    throw err;
  });
}

const HINTS: Partial<Record<ErrorCode, string>> = {
  ERR_FILE_NOT_FOUND: 'Check the path; relative paths are resolved from the current directory.',
  ERR_FILE_READ: 'Check that the file is readable and that the disk has space left.',
  ERR_CORRUPT_FILE: 'The file is damaged or incomplete: download it again.',
  ERR_UNSAFE_PICKLE: 'Convert the checkpoint to safetensors with Python, then pass that file.',
  ERR_UNSUPPORTED_FORMAT: 'Pass a .safetensors, .bin or .pth checkpoint, or convert it with "showo2 convert".',
  ERR_UNSUPPORTED_DTYPE: 'Convert the checkpoint with "showo2 convert --dtype bf16".',
  ERR_UNSUPPORTED_MODEL: 'Pass a Show-o2 model: a download of showlab/show-o2-1.5B, show-o2-1.5B-HQ or show-o2-7B, or the repo id.',
  ERR_INVALID_IMAGE: 'Pass a PNG, JPEG or WebP file.',
  ERR_OUT_OF_MEMORY: 'Use a smaller --width/--height, fewer --count or --frames, or close other programs using the memory.',
  ERR_NO_GPU: 'Pass --device cpu (or --device auto); "showo2 doctor" shows what the GPU setup lacks.',
  ERR_CUDA: 'A CUDA call failed while running: check "nvidia-smi" and "showo2 doctor" and try again, or pass --device cpu.',
  ERR_NATIVE_LOAD: 'Run "showo2 doctor"; building from source with "npm run build:native --prefix node_modules/showo2" usually fixes it.',
  ERR_MODEL_NOT_FOUND: 'Pass a model directory, or a Hugging Face repo id such as showlab/show-o2-1.5B (check its spelling and --revision).',
  ERR_UNAUTHORIZED: 'Set HF_TOKEN to a Hugging Face token that can read the repo (or log in with "huggingface-cli login").',
  ERR_DOWNLOAD: 'Check the network connection and run the command again: downloads resume where they stopped.',
  ERR_OFFLINE: 'Unset HF_HUB_OFFLINE so the missing file can be downloaded, or pass local paths (--vae, --tokenizer).',
  ERR_INTERNAL: 'This is a bug in showo2: please report it with the command and the output of "showo2 doctor".',
};

export function hintFor(err: ShowO2Error): string | undefined {
  return hints.get(err) ?? HINTS[err.code];
}

/** docs/TROUBLESHOOTING.md, shipped in the package: one section per error code. */
export const TROUBLESHOOTING_FILE = path.join(packageRoot, 'docs', 'TROUBLESHOOTING.md');

/**
 * Where the troubleshooting page explains `code`: the file plus the anchor of its `## ERR_...` heading, as GitHub and
 * Markdown viewers spell it (the heading in lower case).
 */
export function troubleshootingLink(code: ErrorCode): string {
  return `${TROUBLESHOOTING_FILE}#${code.toLowerCase()}`;
}

/** The class name of an error with `code` (its family, e.g. ModelNotFoundError), for --json output. */
export function errorClassName(code: ErrorCode): string {
  return ERROR_CLASSES[code].name;
}

// ---- Output ----

/** Prints one JSON value on one line (a JSON object per line for streams). */
export function printJson(io: CliIo, value: unknown): void {
  io.out(JSON.stringify(value));
}

export function cancelled(): ShowO2Error {
  return createError('ERR_CANCELLED', 'Interrupted');
}

/**
 * Settles with `promise`, or rejects with ERR_CANCELLED as soon as `signal` aborts: for steps the library cannot
 * stop (loading), the process exits without waiting for them.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(cancelled());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(cancelled());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** Writes a file, creating its folder. */
export function writeFile(file: string, bytes: Uint8Array): void {
  try {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    fs.writeFileSync(file, bytes);
  } catch (err) {
    throw createError('ERR_FILE_READ', `Cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
}
