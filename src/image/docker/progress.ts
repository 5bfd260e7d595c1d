/**
 * One progress bar per layer on stderr when it is a terminal (nothing otherwise): the bars
 * of the layers being downloaded are redrawn in place, at most every 100 ms.
 */
import { formatBytes } from '../limits.js';

const WIDTH = 20;
const REDRAW_MS = 100;

export interface Bar { update(done: number): void; finish(): void }

export class LayerProgress {
  private readonly bars: Array<{ label: string; total: number; done: number; finished: boolean }> = [];
  private drawnLines = 0;
  private lastDraw = 0;
  private readonly tty = process.stderr.isTTY === true;

  add(digest: string, total: number): Bar {
    const bar = { label: digest.replace(/^sha256:/, '').slice(0, 12), total, done: 0, finished: false };
    this.bars.push(bar);
    this.draw(true);
    return {
      update: (done) => { bar.done = done; this.draw(false); },
      finish: () => { bar.done = bar.total; bar.finished = true; this.draw(true); },
    };
  }

  private line(b: { label: string; total: number; done: number; finished: boolean }): string {
    const filled = b.total > 0 ? Math.min(WIDTH, Math.floor((b.done / b.total) * WIDTH)) : WIDTH;
    const bar = filled >= WIDTH ? '='.repeat(WIDTH) : `${'='.repeat(filled)}>${' '.repeat(WIDTH - filled - 1)}`;
    return `Downloading ${b.label}: [${bar}] ${formatBytes(b.done)}/${formatBytes(b.total)}${b.finished ? ' done' : ''}`;
  }

  private draw(force: boolean): void {
    if (!this.tty) return;
    const now = Date.now();
    if (!force && now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    const up = this.drawnLines > 0 ? `\x1b[${this.drawnLines}A` : '';
    process.stderr.write(`${up}\r${this.bars.map((b) => `\x1b[K${this.line(b)}\n`).join('')}`);
    this.drawnLines = this.bars.length;
  }

  /** Leaves the final state on screen. */
  done(): void {
    this.draw(true);
  }
}
