#!/usr/bin/env node
/**
 * The `showo2` command line:
 *
 *   showo2 convert <src> <dst> [--dtype f32|bf16|f16]   checkpoint -> safetensors
 *   showo2 inspect <weights> [--json]                    list a checkpoint's tensors
 *   showo2 info [--json]                                 runtime information
 *
 * Exit codes: 0 success, 1 the operation failed, 2 bad usage. Failures print one line to stderr,
 * `error ERR_CODE: message`, so scripts can match the code.
 *
 * @module
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { convertToSafetensors } from './convert.js';
import { FLOAT_DTYPES, type FloatDType } from './dtype.js';
import { invalidParameterError, ShowO2Error } from './errors.js';
import { runtimeInfo, type RuntimeInfo } from './runtime.js';
import { isOneOf } from './validate.js';
import { WeightFile } from './weights.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

const USAGE = `Usage: showo2 <command> [options]

Commands:
  convert <src> <dst> [--dtype f32|bf16|f16]  Convert a checkpoint (.bin, .pth, .safetensors, *.index.json)
                                              into one safetensors file; --dtype casts float tensors
  inspect <weights> [--json]                  List a checkpoint's format, metadata and tensors
  info [--json]                               Show the version, native binary, CPU features and CUDA status

Options:
  -h, --help     Show this help
  -v, --version  Show the version

Exit codes: 0 success, 1 failure, 2 bad usage. Errors print as "error ERR_CODE: message".`;

/** Where the CLI writes; injectable so it can run in-process. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

class UsageError extends Error {}

interface Command {
  positionals: string[]; // names, for the usage error when the count is wrong
  options: Record<string, { type: 'string' | 'boolean' }>;
  run(args: string[], values: Record<string, string | boolean | undefined>, io: CliIo): Promise<void>;
}

function parseDtype(value: string | boolean | undefined): FloatDType | undefined {
  if (value === undefined) return undefined;
  const upper = String(value).toUpperCase();
  if (!isOneOf(upper, FLOAT_DTYPES)) throw invalidParameterError('--dtype', 'one of f32, bf16, f16', value);
  return upper;
}

function formatBytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : `${(n / 2 ** 20).toFixed(0)} MiB`;
}

function printInfo(info: RuntimeInfo, io: CliIo): void {
  const { cuda } = info;
  io.out(`showo2 ${info.version} (${info.platform}, Node.js ${process.versions.node})`);
  io.out(`addon:        ${info.addonPath}`);
  io.out(`cpu features: ${info.cpuFeatures}`);
  io.out(`threads:      ${info.defaultThreadCount}`);
  if (!cuda.built) {
    io.out('cuda:         not built');
  } else {
    io.out(`cuda:         runtime ${cuda.runtimeVersion}, driver ${cuda.driverVersion ?? 'none'}`);
    for (const d of cuda.devices) {
      io.out(
        `  device ${d.index}: ${d.name}, compute ${d.computeCapability}, ${formatBytes(d.totalMemoryBytes)}, ` +
          `${d.multiprocessors} SMs${d.supported ? '' : ' (unsupported)'}`,
      );
    }
  }
  io.out(`gpu:          ${cuda.unavailableReason ? `unavailable: ${cuda.unavailableReason}` : 'available'}`);
}

const commands: Record<string, Command> = {
  convert: {
    positionals: ['src', 'dst'],
    options: { dtype: { type: 'string' } },
    async run([src, dst], values, io) {
      const dtype = parseDtype(values.dtype);
      const written = await convertToSafetensors(src!, dst!, dtype ? { dtype } : {});
      io.out(`wrote ${written} tensors to ${dst}`);
    },
  },
  inspect: {
    positionals: ['weights'],
    options: { json: { type: 'boolean' } },
    async run([file], values, io) {
      const weights = await WeightFile.open(file!);
      try {
        if (values.json) {
          const { path, format, metadata, tensors } = weights;
          io.out(JSON.stringify({ path, format, metadata, tensors }, null, 2));
          return;
        }
        io.out(`${weights.path}: ${weights.format}, ${weights.tensors.length} tensors`);
        for (const [key, value] of Object.entries(weights.metadata)) io.out(`metadata ${key}: ${value}`);
        const width = Math.max(0, ...weights.tensors.map((t) => t.name.length));
        for (const t of weights.tensors) io.out(`${t.name.padEnd(width)}  ${t.dtype.padEnd(4)}  [${t.shape.join(', ')}]`);
      } finally {
        weights.dispose();
      }
    },
  },
  info: {
    positionals: [],
    options: { json: { type: 'boolean' } },
    async run(_args, values, io) {
      const info = await runtimeInfo();
      if (values.json) io.out(JSON.stringify(info, null, 2));
      else printInfo(info, io);
    },
  },
};

// Read from package.json rather than the addon, so `showo2 --version` works even when the addon does not load.
function readVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * Runs the CLI with `argv` (without `node` and the script) and resolves with the exit code.
 * @internal
 */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  try {
    const [name, ...rest] = argv;
    if (name === undefined || name === 'help' || name === '-h' || name === '--help') {
      io.out(USAGE);
      return name === undefined ? EXIT_USAGE : EXIT_OK;
    }
    if (name === '-v' || name === '--version') {
      io.out(readVersion());
      return EXIT_OK;
    }
    const command = commands[name];
    if (!command) throw new UsageError(`Unknown command ${JSON.stringify(name)}`);
    let parsed;
    try {
      parsed = parseArgs({
        args: rest,
        options: { ...command.options, help: { type: 'boolean', short: 'h' } },
        allowPositionals: true,
        strict: true,
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (parsed.values.help) {
      io.out(USAGE);
      return EXIT_OK;
    }
    if (parsed.positionals.length !== command.positionals.length) {
      const expected = command.positionals.map((p) => `<${p}>`).join(' ');
      throw new UsageError(`${name} takes ${expected || 'no arguments'} (got ${parsed.positionals.length} arguments)`);
    }
    await command.run(parsed.positionals, parsed.values, io);
    return EXIT_OK;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`error ERR_INVALID_ARGUMENT: ${err.message}`);
      io.err('Run "showo2 --help" for usage.');
      return EXIT_USAGE;
    }
    if (err instanceof ShowO2Error) {
      io.err(`error ${err.code}: ${err.message}`);
      return err.code === 'ERR_INVALID_ARGUMENT' ? EXIT_USAGE : EXIT_FAILURE;
    }
    io.err(`error ERR_INTERNAL: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return EXIT_FAILURE;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
