/**
 * `showo2 ask` (one question about an image or a video, streamed) and `showo2 chat` (a conversation on the terminal
 * or over a pipe).
 *
 * @module
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';

import { createError, ShowO2Error } from '../errors.js';
import type { ChatSession, ShowO2Model } from '../model.js';
import type { GenerationResult, TextGenerationOptions } from '../text-generation.js';
import {
  asFlagError,
  EXIT_INTERRUPTED,
  hintFor,
  intValue,
  printJson,
  stringList,
  stringValue,
  textSamplingValues,
  UsageError,
  type Command,
  type CommandContext,
  type OptionSpec,
  type OptionValues,
} from './common.js';
import { LOAD_OPTIONS, loadModel } from './load-model.js';

/** The sampling flags `ask` and `chat` share. */
const TEXT_OPTIONS: Record<string, OptionSpec> = {
  system: { type: 'string', value: 'TEXT', description: 'The system prompt. Defaults to "You are a helpful assistant.".' },
  'max-tokens': { type: 'string', value: 'N', description: 'The most tokens in an answer, 1 to 1000000. Defaults to 300.' },
  temperature: { type: 'string', value: 'T', description: 'Sampling temperature, >= 0; 0 always picks the most likely token. Defaults to 0.' },
  'top-p': { type: 'string', value: 'P', description: 'Nucleus sampling threshold, in (0, 1]. Defaults to 1 (off).' },
  'top-k': { type: 'string', value: 'K', description: 'Sample only from the K most likely tokens; 0 turns it off. Defaults to 0.' },
  seed: { type: 'string', value: 'N', description: "Seed of the sampler's random generator. Defaults to 0." },
};

function textOptions(values: OptionValues): TextGenerationOptions {
  const options: TextGenerationOptions = textSamplingValues(values, 1_000_000);
  const seed = intValue(values, 'seed', 0);
  if (seed !== undefined) options.seed = seed;
  return options;
}

/** The system prompt option, when given. */
function systemOption(values: OptionValues): { systemPrompt?: string } {
  const system = stringValue(values, 'system');
  return system === undefined ? {} : { systemPrompt: system };
}

const IMAGE_FILE = /\.(png|jpe?g|webp)$/i;

/** `--video-frames` values: files as given, and each directory as its PNG/JPEG/WebP files in natural order. */
function videoFrameFiles(paths: string[]): string[] {
  const files: string[] = [];
  for (const p of paths) {
    let entries: string[] | undefined;
    try {
      if (fs.statSync(p).isDirectory()) entries = fs.readdirSync(p);
    } catch {
      // A missing path is reported by the model when it reads the frame, with the frame's index.
    }
    if (!entries) {
      files.push(p);
      continue;
    }
    const images = entries.filter((e) => IMAGE_FILE.test(e)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    if (images.length === 0) throw createError('ERR_FILE_NOT_FOUND', `No PNG, JPEG or WebP frames in the directory ${p} (--video-frames)`);
    files.push(...images.map((e) => path.join(p, e)));
  }
  return files;
}

/**
 * Streams an answer: text to stdout as it is decoded (or `{"type":"text"}` JSON lines), then a newline (or a
 * `{"type":"result"}` line). `fields` are added to every JSON line (the chat's turn number).
 */
async function streamAnswer(
  ctx: CommandContext,
  stream: AsyncGenerator<string, GenerationResult>,
  fields: Record<string, unknown>,
  showProgress: boolean,
): Promise<GenerationResult> {
  const task = showProgress ? ctx.progress.start('reading the prompt') : undefined;
  let first = true;
  for (;;) {
    let step: IteratorResult<string, GenerationResult>;
    try {
      step = await stream.next();
    } catch (err) {
      ctx.progress.interrupt();
      throw asFlagError(err);
    }
    if (first) {
      task?.done();
      first = false;
    }
    if (step.done) {
      const { text, finishReason, usage } = step.value;
      if (ctx.json) printJson(ctx.io, { type: 'result', ...fields, text, finishReason, usage });
      else ctx.io.write('\n');
      return step.value;
    }
    if (ctx.json) printJson(ctx.io, { type: 'text', ...fields, text: step.value });
    else ctx.io.write(step.value);
  }
}

/** `ask`'s image and question: `ask IMAGE QUESTION`, `ask QUESTION`, or the --image / --question flags. */
function imageAndQuestion(args: string[], values: OptionValues): { image: string | undefined; question: string } {
  let image = stringValue(values, 'image');
  let question = stringValue(values, 'question');
  if (args.length === 2) {
    if (image !== undefined || question !== undefined) throw new UsageError('Pass the image and the question either as arguments or as --image / --question, not both');
    [image, question] = args as [string, string];
  } else if (args.length === 1) {
    if (question === undefined) question = args[0]!;
    else if (image === undefined) image = args[0]!;
    else throw new UsageError('Pass the image and the question either as arguments or as --image / --question, not both');
  }
  if (question === undefined) throw new UsageError('Missing the question: showo2 ask IMAGE "What is in the image?"');
  return { image, question };
}

export const ask: Command = {
  summary: 'Answer a question about an image or a video, streaming the answer to stdout',
  usage: 'ask [IMAGE] QUESTION [--model DIR|REPO] [--video-frames PATH...] [options]',
  positionals: [],
  optionalPositionals: ['image', 'question'],
  cancellable: true,
  options: {
    question: { type: 'string', value: 'TEXT', description: 'The question, as a flag. Defaults to the QUESTION argument.' },
    image: { type: 'string', value: 'PATH', description: 'The image (PNG, JPEG or WebP) the question is about, as a flag. Defaults to the IMAGE argument, else none.' },
    'video-frames': {
      type: 'string',
      greedy: true,
      value: 'PATH...',
      description:
        'The video as its frames in order: files, or a directory of PNG/JPEG/WebP frames (sorted by name). Defaults to none.',
    },
    'num-frames': { type: 'string', value: 'N', description: 'Frames sampled uniformly from --video-frames, 1 to 1024. Defaults to 32.' },
    ...TEXT_OPTIONS,
    ...LOAD_OPTIONS,
  },
  details: `With two arguments the first is the image and the second the question; with one, it is the question
(a question about no image, or about --image / --video-frames). The paths after --video-frames are all frames.
With --json, each piece of text is a line {"type":"text","text":...} and the last line is
{"type":"result","text":...,"finishReason":...,"usage":{...}}.

Examples:
  showo2 ask out.png "What shape is in the image?"
  showo2 ask cat.jpg "What is the cat doing?" --model showlab/show-o2-1.5B
  showo2 ask "What happens in this video?" --model ./show-o2-1.5B --video-frames frames/ --num-frames 16`,
  async run(ctx, args, values) {
    const { image, question } = imageAndQuestion(args, values);
    const framePaths = stringList(values, 'video-frames');
    if (image !== undefined && framePaths.length > 0) throw new UsageError('Pass either --image or --video-frames, not both');
    const numFrames = intValue(values, 'num-frames', 1, 1024);
    if (numFrames !== undefined && framePaths.length === 0) throw new UsageError('--num-frames needs --video-frames');
    const generation = textOptions(values);
    const video = framePaths.length > 0 ? { frames: videoFrameFiles(framePaths), ...(numFrames !== undefined ? { numFrames } : {}) } : undefined;

    const model = await loadModel(ctx, values);
    try {
      const stream = model.answerStream({
        ...generation,
        ...systemOption(values),
        question,
        ...(image !== undefined ? { image } : {}),
        ...(video ? { video } : {}),
        signal: ctx.signal,
      });
      await streamAnswer(ctx, stream, {}, true);
    } finally {
      model.dispose();
    }
  },
};

const CHAT_HELP = 'Commands: /image PATH attaches an image to the next question, /reset starts a new conversation, /exit quits.';

export const chat: Command = {
  summary: 'Chat about images on the terminal, or answer one question per line of piped stdin',
  usage: 'chat [--model DIR|REPO] [--image PATH] [options]',
  positionals: [],
  cancellable: true,
  options: {
    image: { type: 'string', value: 'PATH', description: 'An image (PNG, JPEG or WebP) for the first question. Defaults to none.' },
    ...TEXT_OPTIONS,
    ...LOAD_OPTIONS,
  },
  details: `Each line is a question; the conversation is kept between questions. Lines starting with / are commands:
  /image PATH   attach an image to the next question
  /reset        forget the conversation
  /exit         quit (so does Ctrl-D)
On a terminal, Ctrl-C stops the answer being written, and quits at the prompt. With stdin from a pipe, the
answers are written one after another, each ending with a newline; with --json, as JSON lines carrying "turn".

Examples:
  showo2 chat --image shapes.png
  printf 'What animal is this?\\nWhat color is it?\\n' | showo2 chat --model ./show-o2-1.5B --image cat.jpg --json`,
  async run(ctx, _args, values) {
    const generation = textOptions(values);
    const chatOptions = systemOption(values);
    let pendingImage = stringValue(values, 'image');
    const model: ShowO2Model = await loadModel(ctx, values);
    const { io } = ctx;
    const interactive = io.stdinIsTTY;
    const rl = readline.createInterface({
      input: io.stdin,
      ...(interactive ? { output: io.stdout, terminal: true } : { terminal: false }),
    });
    let session: ChatSession = model.createChat(chatOptions);
    let turnController: AbortController | undefined;
    let interrupted = false;
    const onAbort = () => {
      interrupted = true;
      if (interactive) io.write('\n'); // the shell's prompt then starts on its own line
      rl.close();
    };
    ctx.signal.addEventListener('abort', onAbort);
    // A terminal's Ctrl-C reaches readline, not the process: stop the answer, or quit at the prompt.
    rl.on('SIGINT', () => {
      if (turnController) turnController.abort();
      else onAbort();
    });
    const notice = (text: string) => {
      if (ctx.json) printJson(io, { type: 'notice', text });
      else io.err(text);
    };
    let turn = 0;
    try {
      if (interactive) {
        io.err(CHAT_HELP);
        rl.setPrompt('> ');
        rl.prompt();
      }
      for await (const raw of rl) {
        const line = raw.trim();
        if (line.startsWith('/')) {
          const command = line.split(/\s+/, 1)[0]!;
          const arg = line.slice(command.length).trim();
          if (command === '/exit' || command === '/quit') break;
          if (command === '/reset') {
            session.dispose();
            session = model.createChat(chatOptions);
            pendingImage = undefined;
            notice('(new conversation)');
          } else if (command === '/image' && arg !== '') {
            if (fs.existsSync(arg)) {
              pendingImage = arg;
              notice(`(${arg} goes with the next question)`);
            } else {
              notice(`error ERR_FILE_NOT_FOUND: ${arg} does not exist`);
              if (!interactive) throw createError('ERR_FILE_NOT_FOUND', `The image ${arg} (/image) does not exist`);
            }
          } else {
            notice(command === '/image' ? 'usage: /image PATH' : `unknown command ${command}. ${CHAT_HELP}`);
          }
        } else if (line !== '') {
          turn += 1;
          turnController = new AbortController();
          const signal = AbortSignal.any([ctx.signal, turnController.signal]);
          const image = pendingImage;
          try {
            const result = await streamAnswer(
              ctx,
              session.askStream({ ...generation, question: line, ...(image !== undefined ? { image } : {}), signal }),
              { turn },
              false,
            );
            pendingImage = undefined;
            if (result.finishReason === 'abort' && interactive && !ctx.signal.aborted) notice('(stopped)');
          } catch (err) {
            // On a terminal a failed turn (a bad image) is reported and the chat goes on; over a pipe it ends the run.
            if (!interactive || !(err instanceof ShowO2Error)) throw err;
            const hint = hintFor(err);
            notice(`error ${err.code}: ${err.message}${hint ? `\nhint: ${hint}` : ''}`);
            pendingImage = undefined;
          } finally {
            turnController = undefined;
          }
        }
        if (interrupted || ctx.signal.aborted) break;
        if (interactive) rl.prompt();
      }
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
      rl.close();
      model.dispose();
    }
    if (interrupted || ctx.signal.aborted) return EXIT_INTERRUPTED;
  },
};
