#!/usr/bin/env node
/**
 * The `showo2` command line (the package's bin). Commands live in lib/cli/: generate and video in generate.ts, interleave in interleave.ts, ask
 * and chat in understand.ts, pull in pull.ts, info and doctor in info.ts, convert and inspect in files.ts; finding and loading the
 * model (a directory or a Hub repo id) in load-model.ts, progress in progress.ts, the rest they share in common.ts.
 * This file parses the arguments, runs one command, and turns what happened into output and an exit code.
 *
 * Exit codes: 0 success, 1 the operation failed, 2 bad usage, 130 interrupted (Ctrl-C). Failures print
 * `error ERR_CODE: message` on stderr, then a `hint:` line saying what to do and a `see:` line pointing at the code's
 * section of docs/TROUBLESHOOTING.md; usage errors print the usage line. With `--json` a failure is also one
 * `{"error":{"code","name","message",...}}` object on stdout (`name`: the error's class, e.g. ModelNotFoundError).
 *
 * @module
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { createError, ShowO2Error } from './errors.js';
import {
  COMMON_OPTIONS,
  EXIT_FAILURE,
  EXIT_INTERRUPTED,
  EXIT_OK,
  EXIT_USAGE,
  errorClassName,
  hintFor,
  printJson,
  processIo,
  troubleshootingLink,
  UsageError,
  type CliIo,
  type Command,
  type OptionSpec,
  type OptionValues,
} from './cli/common.js';
import { convert, inspect } from './cli/files.js';
import { generate, video } from './cli/generate.js';
import { doctor, info } from './cli/info.js';
import { interleave } from './cli/interleave.js';
import { Progress } from './cli/progress.js';
import { pull } from './cli/pull.js';
import { ask, chat } from './cli/understand.js';

export { EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, type CliIo };

/** Every command, in the order `showo2 --help` lists them. */
export const commands: Record<string, Command> = { generate, video, interleave, ask, chat, pull, doctor, info, convert, inspect };

function overview(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  return [
    'Usage: showo2 <command> [options]',
    '',
    'Commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Options:',
    '  -h, --help     Show this help ("showo2 help <command>" for a command\'s options)',
    '  -v, --version  Show the version',
    '',
    'Every command takes --json (machine-readable output on stdout) and --quiet (no progress on stderr).',
    'Exit codes: 0 success, 1 failure, 2 bad usage, 130 interrupted. Errors print as "error ERR_CODE: message".',
  ].join('\n');
}

function optionLines(options: Record<string, OptionSpec>): string[] {
  const heads = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.value ? ` ${o.value}` : ''}`;
    return [flag, o.description] as const;
  });
  const width = Math.max(...heads.map(([flag]) => flag.length));
  return heads.map(([flag, description]) => `  ${flag.padEnd(width)}  ${description}`);
}

/** `showo2 help <command>`: the usage line, every flag with its default, details and examples. */
export function commandHelp(name: string): string {
  const command = commands[name]!;
  const lines = [`Usage: showo2 ${command.usage}`, '', command.summary + '.'];
  if (Object.keys(command.options).length > 0) lines.push('', 'Options:', ...optionLines(command.options));
  lines.push('', 'Common options:', ...optionLines(COMMON_OPTIONS));
  if (command.details) lines.push('', command.details);
  return lines.join('\n');
}

// Read from package.json rather than the addon, so `showo2 --version` works even when the addon does not load.
function readVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
}

/** Parses a command's arguments; positionals right after a `greedy` flag are more values of it. */
function parseCommandArgs(command: Command, args: string[]): { positionals: string[]; values: OptionValues } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, o] of Object.entries({ ...command.options, ...COMMON_OPTIONS })) {
    options[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple || o.greedy ? { multiple: true } : {}) };
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const values = parsed.values as OptionValues;
  const positionals: string[] = [];
  let greedy: string | undefined;
  for (const token of parsed.tokens) {
    if (token.kind === 'option') {
      greedy = command.options[token.name]?.greedy ? token.name : undefined;
    } else if (token.kind === 'option-terminator') {
      greedy = undefined;
    } else if (greedy !== undefined) {
      (values[greedy] as string[]).push(token.value);
    } else {
      positionals.push(token.value);
    }
  }
  return { positionals, values };
}

/** Whether the command now running stops cleanly on Ctrl-C (otherwise Ctrl-C ends the process at once). */
let runningCancellable = false;

/**
 * Runs the CLI with `argv` (without `node` and the script) and resolves with the exit code. `signal` is what Ctrl-C
 * aborts: the running generation stops through it and the command resolves with 130.
 * @internal
 */
export async function main(argv: string[], io: CliIo = processIo, signal: AbortSignal = new AbortController().signal): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help') {
    io.out(overview());
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (name === '-v' || name === '--version') {
    io.out(readVersion());
    return EXIT_OK;
  }
  if (name === 'help') {
    const topic = rest[0];
    if (topic === undefined) {
      io.out(overview());
      return EXIT_OK;
    }
    if (!Object.hasOwn(commands, topic)) return usageFailure(io, `Unknown command ${JSON.stringify(topic)}`, undefined, false);
    io.out(commandHelp(topic));
    return EXIT_OK;
  }
  if (!Object.hasOwn(commands, name)) return usageFailure(io, `Unknown command ${JSON.stringify(name)}`, undefined, rest.includes('--json'));
  const command = commands[name]!;
  let json = rest.includes('--json');
  let progress: Progress | undefined;
  try {
    const { positionals, values } = parseCommandArgs(command, rest);
    json = values.json === true;
    if (values.help) {
      io.out(commandHelp(name));
      return EXIT_OK;
    }
    const optional = command.optionalPositionals ?? [];
    const most = command.variadic ? Infinity : command.positionals.length + optional.length;
    if (positionals.length < command.positionals.length || positionals.length > most) {
      const expected = [
        ...command.positionals.map((p) => `<${p}>`),
        ...optional.map((p, i) => `[${p}${command.variadic && i === optional.length - 1 ? '...' : ''}]`),
      ].join(' ');
      throw new UsageError(`${name} takes ${expected || 'no arguments'} (got ${positionals.length} arguments)`);
    }
    progress = new Progress(io, values.quiet ? 'off' : io.errIsTTY ? 'tty' : 'lines');
    runningCancellable = command.cancellable === true;
    const code = (await command.run({ io, json, quiet: values.quiet === true, progress, signal }, positionals, values)) ?? EXIT_OK;
    if (signal.aborted) return interrupted(io, json, progress);
    return code;
  } catch (err) {
    progress?.interrupt();
    if (signal.aborted) return interrupted(io, json, progress);
    if (err instanceof UsageError) return usageFailure(io, err.message, name, json);
    const error = err instanceof ShowO2Error ? err : createError('ERR_INTERNAL', err instanceof Error ? (err.stack ?? err.message) : String(err));
    const hint = hintFor(error);
    const troubleshooting = troubleshootingLink(error.code);
    io.err(`error ${error.code}: ${error.message}`);
    if (hint) io.err(`hint: ${hint}`);
    io.err(`see: ${troubleshooting}`);
    if (json) {
      const { code, name, message } = error;
      printJson(io, { error: { code, name, message, ...(hint ? { hint } : {}), troubleshooting } });
    }
    return EXIT_FAILURE;
  } finally {
    runningCancellable = false;
  }
}

function usageFailure(io: CliIo, message: string, command: string | undefined, json: boolean): number {
  io.err(`error ERR_INVALID_ARGUMENT: ${message}`);
  if (command) {
    io.err(`Usage: showo2 ${commands[command]!.usage}`);
    io.err(`Run "showo2 help ${command}" for all options.`);
  } else {
    io.err('Run "showo2 --help" for usage.');
  }
  if (json) printJson(io, { error: { code: 'ERR_INVALID_ARGUMENT', name: errorClassName('ERR_INVALID_ARGUMENT'), message } });
  return EXIT_USAGE;
}

function interrupted(io: CliIo, json: boolean, progress: Progress | undefined): number {
  progress?.interrupt();
  io.err('error ERR_CANCELLED: Interrupted (Ctrl-C)');
  if (json) printJson(io, { error: { code: 'ERR_CANCELLED', name: errorClassName('ERR_CANCELLED'), message: 'Interrupted (Ctrl-C)' } });
  return EXIT_INTERRUPTED;
}

if (require.main === module) {
  // Each process warning as one "warning: ..." line, e.g. the one device 'auto' logs when it runs on the CPU (Node's
  // own printer adds its pid and a "(Use `node --trace-warnings ...`)" line). --no-warnings and NODE_NO_WARNINGS=1
  // still silence them.
  if (!process.execArgv.includes('--no-warnings') && process.env.NODE_NO_WARNINGS !== '1') {
    process.removeAllListeners('warning');
    process.on('warning', (warning) => {
      const kind = warning.name === 'ShowO2Warning' || warning.name === 'Warning' ? '' : ` (${warning.name})`;
      processIo.err(`warning${kind}: ${warning.message}`);
    });
  }
  const controller = new AbortController();
  // The first Ctrl-C stops a cancellable command through its AbortSignal (it then exits 130 after cleaning up);
  // a second one, or one during a command that cannot stop part-way, ends the process at once.
  process.on('SIGINT', () => {
    if (!runningCancellable || controller.signal.aborted) process.exit(EXIT_INTERRUPTED);
    controller.abort();
  });
  main(process.argv.slice(2), processIo, controller.signal).then((code) => {
    // A model load still running after Ctrl-C would keep the process alive until it finished.
    if (code === EXIT_INTERRUPTED) process.exit(code);
    process.exitCode = code;
  });
}
