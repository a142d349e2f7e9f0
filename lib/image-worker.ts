/**
 * Image preprocessing off the event loop. Decoding and resampling are synchronous JavaScript and WebAssembly (pngjs,
 * jpeg-js, libwebp): a 16-megapixel JPEG takes seconds, and the size limits allow 268 megapixels. A service must not
 * freeze for that, so the model's image inputs are decoded, resized and converted to tensors in one background
 * worker thread, created on first use and shared by every model of this thread. It does not keep the process alive
 * when idle. After an image over {@link RETIRE_AFTER_PIXELS} it is replaced, so its memory goes back to the system.
 * If it dies (out of memory on a giant image, say) the requests in flight fail with a typed error and the next
 * request starts a new one.
 *
 * This file is both sides: the client below, and the worker's message loop (when loaded as the worker).
 *
 * @module
 */
import * as path from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

import { createError, ERROR_CODES, ShowO2Error, type ErrorCode } from './errors.js';
import { centerCrop, decodeImage, imageToTensor, letterbox, readImageSize, resizeShorterSide, type RgbImage } from './image.js';

/** What the worker does to one image (bytes are decoded first; pixels are used as they are). */
export type ImageJob =
  | { op: 'decode' }
  /** Understanding (spec §8.2): the shorter side to `size`, centre crop to a square, then [-1, 1] planar floats. */
  | { op: 'understanding'; size: number }
  /** Video frames (spec §8.3): letterboxed into a `size` square, then [-1, 1] planar floats. */
  | { op: 'letterbox'; size: number }
  /** Image-to-video's first frame: the shorter side to cover `width` x `height`, centre crop, then floats. */
  | { op: 'cover'; width: number; height: number };

export type JobResult<J extends ImageJob> = J extends { op: 'decode' } ? RgbImage : Float32Array;

interface Request {
  id: number;
  job: ImageJob;
  /** Encoded bytes, or decoded pixels. */
  image: Uint8Array | RgbImage;
}

type Response = { id: number; retire: boolean } & (
  | { ok: true; result: RgbImage | Float32Array }
  | { ok: false; error: { code?: string; name: string; message: string } }
);

/**
 * After an image of more than this many pixels the thread is retired (ended once its work is done, a fresh one takes
 * new work): decoding a large image leaves the thread holding its buffers, and libwebp's WebAssembly memory never
 * shrinks, so an idle process would keep gigabytes after one large upload. Starting a thread costs tens of
 * milliseconds, little next to decoding 4 megapixels.
 */
export const RETIRE_AFTER_PIXELS = 1 << 22;

const WORKER_MARK = 'showo2-image-worker';

/** Runs one job: the same functions the main thread would call. */
function runJob(job: ImageJob, input: Uint8Array | RgbImage): RgbImage | Float32Array {
  const image = input instanceof Uint8Array ? decodeImage(input) : input;
  switch (job.op) {
    case 'decode':
      return image;
    case 'understanding':
      return imageToTensor(centerCrop(resizeShorterSide(image, job.size), job.size, job.size));
    case 'letterbox':
      return imageToTensor(letterbox(image, job.size));
    case 'cover':
      return imageToTensor(centerCrop(resizeShorterSide(image, Math.max(job.width, job.height)), job.width, job.height));
  }
}

/** The pixels of the input (from the header for encoded bytes; 0 when it cannot be read, and decoding will say why). */
function inputPixels(input: Uint8Array | RgbImage): number {
  if (!(input instanceof Uint8Array)) return input.width * input.height;
  try {
    const { width, height } = readImageSize(input);
    return width * height;
  } catch {
    return 0;
  }
}

function workerLoop(): void {
  parentPort!.on('message', ({ id, job, image }: Request) => {
    let response: Response;
    let transfer: ArrayBuffer[] = [];
    const retire = inputPixels(image) > RETIRE_AFTER_PIXELS;
    try {
      const result = runJob(job, image);
      response = { id, retire, ok: true, result };
      // Everything here is this thread's own copy: hand the result's memory over instead of copying it back.
      const buffer = (result instanceof Float32Array ? result : result.data).buffer;
      if (buffer instanceof ArrayBuffer) transfer = [buffer];
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      response = { id, retire, ok: false, error: { ...(err instanceof ShowO2Error ? { code: err.code } : {}), name: e.name, message: e.message } };
    }
    parentPort!.postMessage(response, transfer);
  });
}

interface Pending {
  resolve: (value: RgbImage | Float32Array) => void;
  reject: (err: Error) => void;
}

/** One preprocessing thread and the requests it has not answered yet. */
interface Thread {
  worker: Worker;
  pending: Map<number, Pending>;
  /** Retired: takes no new work, ends when `pending` is empty. */
  retired: boolean;
}

/** The thread that takes new work (null: start one on the next request). */
let current: Thread | null = null;
/** Every thread not yet exited. */
const threads = new Set<Thread>();
let nextId = 0;

function retire(thread: Thread): void {
  thread.retired = true;
  if (current === thread) current = null;
  if (thread.pending.size === 0) void thread.worker.terminate();
}

function failAll(thread: Thread, err: Error): void {
  const waiting = [...thread.pending.values()];
  thread.pending.clear();
  if (current === thread) current = null;
  thread.retired = true;
  for (const p of waiting) p.reject(err);
}

function startThread(): Thread {
  const worker = new Worker(path.join(__dirname, 'image-worker.js'), { workerData: WORKER_MARK });
  const thread: Thread = { worker, pending: new Map(), retired: false };
  threads.add(thread);
  worker.on('message', (m: Response) => {
    const p = thread.pending.get(m.id);
    if (!p) return;
    thread.pending.delete(m.id);
    if (thread.pending.size === 0) worker.unref();
    if (m.retire && !thread.retired) retire(thread);
    else if (thread.retired && thread.pending.size === 0) void worker.terminate();
    if (m.ok) {
      p.resolve(m.result);
    } else {
      const code = m.error.code;
      p.reject(
        code && (ERROR_CODES as readonly string[]).includes(code)
          ? createError(code as ErrorCode, m.error.message)
          : createError('ERR_INTERNAL', `Image preprocessing failed: ${m.error.name}: ${m.error.message}`),
      );
    }
  });
  worker.on('error', (err: Error & { code?: string }) => {
    failAll(
      thread,
      err.code === 'ERR_WORKER_OUT_OF_MEMORY'
        ? createError('ERR_OUT_OF_MEMORY', `Image preprocessing ran out of memory (the image is too large to decode here): ${err.message}`, { cause: err })
        : createError('ERR_INTERNAL', `The image preprocessing thread failed: ${err.message}`, { cause: err }),
    );
  });
  worker.on('exit', (code) => {
    threads.delete(thread);
    if (thread.pending.size > 0) failAll(thread, createError('ERR_INTERNAL', `The image preprocessing thread exited (code ${code}) with work in flight`));
    if (current === thread) current = null;
  });
  worker.unref();
  return thread;
}

/** How many preprocessing threads exist right now (the working one and retired ones finishing their work). @internal */
export function imageThreadCount(): number {
  return threads.size;
}

/**
 * Runs `job` on `image` in the preprocessing thread. Pixels are copied to it (the caller's object is left as it
 * was); encoded bytes too. Rejects with the ShowO2Error the synchronous functions would throw (same code and
 * message), `ERR_OUT_OF_MEMORY` if the thread ran out of memory, or `ERR_INTERNAL`.
 */
export function runImageJob<J extends ImageJob>(job: J, image: Uint8Array | RgbImage): Promise<JobResult<J>> {
  current ??= startThread();
  const thread = current;
  const w = thread.worker;
  const id = nextId++;
  return new Promise<JobResult<J>>((resolve, reject) => {
    thread.pending.set(id, { resolve: resolve as (value: RgbImage | Float32Array) => void, reject });
    w.ref();
    // A typed array is cloned with its whole ArrayBuffer: cut a view of a larger buffer (a pooled Buffer) to its bytes.
    const own = (bytes: Uint8Array): Uint8Array => (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice());
    const plain = image instanceof Uint8Array ? own(image) : { width: image.width, height: image.height, data: own(image.data) };
    w.postMessage({ id, job, image: plain } satisfies Request);
  });
}

if (!isMainThread && workerData === WORKER_MARK) workerLoop();
