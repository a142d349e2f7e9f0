/**
 * Progress on stderr for every long step: one updating line on a terminal, plain lines otherwise (a pipe, a log
 * file), nothing with `--quiet`.
 *
 * @module
 * @internal
 */
import type { CliIo } from './common.js';

/** How progress is shown: an updating line (terminal), plain lines (pipe, log file) or not at all (`--quiet`). */
export type ProgressMode = 'tty' | 'lines' | 'off';

const BAR_WIDTH = 24;

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Sizes in the units people read: `512 MiB`, `2.9 GiB`. */
export function formatBytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : `${(n / 2 ** 20).toFixed(0)} MiB`;
}

/** One long step: loading, downloading, denoising, decoding. */
export class ProgressTask {
  readonly #owner: Progress;
  readonly #label: string;
  readonly #format: (n: number) => string;
  readonly #started = performance.now();
  #lastDraw = 0;
  #lastPercentLine = -1;

  /** @internal */
  constructor(owner: Progress, label: string, format: (n: number) => string) {
    this.#owner = owner;
    this.#label = label;
    this.#format = format;
  }

  /** Reports `done` of `total` units (`total` undefined when unknown). */
  update(done: number, total?: number): void {
    const mode = this.#owner.mode;
    const elapsed = seconds(performance.now() - this.#started);
    const amount = total === undefined ? this.#format(done) : `${this.#format(done)}/${this.#format(total)}`;
    const finished = total !== undefined && done >= total;
    if (mode === 'tty') {
      const now = performance.now();
      if (!finished && now - this.#lastDraw < 80) return; // at most ~12 redraws a second
      this.#lastDraw = now;
      const filled = total ? Math.min(BAR_WIDTH, Math.round((done / total) * BAR_WIDTH)) : 0;
      const bar = total === undefined ? '' : ` [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
      this.#owner.draw(`${this.#label}${bar} ${amount} ${elapsed}`);
    } else if (mode === 'lines') {
      // A line per tenth (or per 10 s when the total is unknown), so a 1000-step run does not flood a log; the last
      // unit is reported by done().
      const tick = total ? Math.floor((done / total) * 10) : Math.floor((performance.now() - this.#started) / 10_000);
      if (tick === this.#lastPercentLine || finished) return;
      this.#lastPercentLine = tick;
      this.#owner.line(`${this.#label}: ${amount} (${elapsed})`);
    }
  }

  /** Ends the step with how long it took. */
  done(detail = ''): void {
    const elapsed = seconds(performance.now() - this.#started);
    this.#owner.finish(`${this.#label}: done in ${elapsed}${detail ? `, ${detail}` : ''}`);
  }
}

/** The progress display of one command run. */
export class Progress {
  readonly mode: ProgressMode;
  readonly #io: CliIo;
  #lineOpen = false;

  constructor(io: CliIo, mode: ProgressMode) {
    this.#io = io;
    this.mode = mode;
  }

  /** Starts a step and shows its label. */
  start(label: string, format: (n: number) => string = String): ProgressTask {
    if (this.mode === 'tty') this.draw(`${label}...`);
    else if (this.mode === 'lines') this.line(`${label}...`);
    return new ProgressTask(this, label, format);
  }

  /** Ends the updating line, so what follows starts on a fresh one. */
  interrupt(): void {
    if (this.#lineOpen) this.#io.errWrite('\n');
    this.#lineOpen = false;
  }

  /** @internal */
  draw(text: string): void {
    this.#io.errWrite(`\r\x1b[K${text}`);
    this.#lineOpen = true;
  }

  /** @internal */
  line(text: string): void {
    this.#io.err(text);
  }

  /** @internal */
  finish(text: string): void {
    if (this.mode === 'tty') {
      this.draw(text);
      this.interrupt();
    } else if (this.mode === 'lines') {
      this.line(text);
    }
  }
}
