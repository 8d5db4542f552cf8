import type { JobEvent } from '../contract/events.ts';
import type { JobProgress, JobResult } from '../contract/job.ts';

export interface Output {
  write(text: string): void;
}

/** Where a followed job's report goes: lines to stdout, the live bar to stderr (redrawn only on a terminal). */
export interface FollowTerminal {
  readonly stdout: Output;
  readonly stderr: Output;
  /** stderr is a terminal: the bar is redrawn in place; otherwise each log line is printed as a line. */
  readonly live: boolean;
  readonly columns?: number;
}

const barWidth = 24;

/**
 * Turns a job's events into what a person watching wants: a bar with epoch, batch, loss and ETA,
 * a line per epoch, and the final accuracy (or why there is none).
 */
export class FollowReport {
  private startedAt: number | null = null;
  private progress: JobProgress | null = null;
  private loss: number | null = null;
  private latestAt: number | null = null;
  private barShown = false;

  constructor(
    private readonly jobId: string,
    private readonly terminal: FollowTerminal,
  ) {}

  handle(event: JobEvent): void {
    const at = Date.parse(event.data.at);
    this.latestAt = Number.isFinite(at) ? at : this.latestAt;
    switch (event.type) {
      case 'state':
        if (event.data.state === 'running') this.startedAt = at;
        if (event.data.state === 'running' && event.data.previous === 'running')
          this.line(`job ${this.jobId} taken over by another worker (its worker stopped)`);
        else if (event.data.state === 'queued' && event.data.previous === 'running')
          this.line(`job ${this.jobId} queued again (its worker shut down)`);
        else if (event.data.state === 'queued' || event.data.state === 'running')
          this.line(`job ${this.jobId} ${event.data.state}`);
        return;
      case 'rewind': {
        this.progress = event.data.progress;
        const { epoch, batch } = event.data.progress;
        this.line(
          epoch === 0
            ? `job ${this.jobId} restarts from the beginning`
            : `job ${this.jobId} goes on from its checkpoint at epoch ${epoch}, batch ${batch}`,
        );
        return;
      }
      case 'progress':
        this.progress = event.data.progress;
        this.drawBar();
        return;
      case 'log':
        this.progress = event.data.progress;
        this.loss = event.data.line.loss;
        if (this.terminal.live) this.drawBar();
        else this.terminal.stderr.write(`${this.status()}\n`);
        return;
      case 'epoch': {
        this.progress = event.data.progress;
        const { summary } = event.data;
        this.line(
          `epoch ${summary.epoch}/${event.data.progress.epochs}: loss ${summary.loss.toFixed(4)}, ` +
            (summary.validationLoss === undefined
              ? ''
              : `validation loss ${summary.validationLoss.toFixed(4)} accuracy ${summary.validationAccuracy?.toFixed(4)}, `) +
            `test accuracy ${summary.testAccuracy.toFixed(4)}, ` +
            `${Math.round(summary.imagesPerSecond)} images/s, ${summary.seconds.toFixed(1)} s`,
        );
        return;
      }
      case 'end':
        this.clearBar();
        if (event.data.state === 'completed' && event.data.result)
          this.terminal.stdout.write(`${completedLine(event.data.result)}\n`);
        else if (event.data.state === 'failed')
          this.terminal.stderr.write(`job ${this.jobId} failed: ${event.data.error?.message ?? 'no reason given'}\n`);
        else this.terminal.stderr.write(`job ${this.jobId} ${event.data.state}\n`);
        return;
    }
  }

  /** Ends the bar's line, when the stream stops before the job's end. */
  close(): void {
    this.clearBar();
  }

  /** `[#####·····]  45%  epoch 2/4  batch 12/20  loss 0.4321  ETA 0:12` */
  status(): string {
    const progress = this.progress;
    if (!progress) return 'waiting for progress…';
    const filled = Math.round(progress.fraction * barWidth);
    const bar = `[${'#'.repeat(filled)}${'·'.repeat(barWidth - filled)}]`;
    const percent = `${Math.floor(progress.fraction * 100)}%`.padStart(4);
    const loss = this.loss === null ? '' : `  loss ${this.loss.toFixed(4)}`;
    return `${bar} ${percent}  epoch ${progress.epoch}/${progress.epochs}  batch ${progress.batch}/${progress.batchesPerEpoch}${loss}  ETA ${this.eta()}`;
  }

  /** Time left at the rate so far, from the times the events carry (so a replay estimates as well as a live view). */
  private eta(): string {
    const fraction = this.progress?.fraction ?? 0;
    if (this.startedAt === null || this.latestAt === null || fraction <= 0) return '--:--';
    if (fraction >= 1) return '0:00';
    const elapsed = (this.latestAt - this.startedAt) / 1000;
    return duration((elapsed * (1 - fraction)) / fraction);
  }

  private line(text: string): void {
    const redraw = this.barShown;
    this.clearBar();
    this.terminal.stdout.write(`${text}\n`);
    if (redraw) this.drawBar();
  }

  private drawBar(): void {
    if (!this.terminal.live) return;
    const text = this.status();
    const width = this.terminal.columns ?? 120;
    this.terminal.stderr.write(`\r\x1b[2K${text.length >= width ? text.slice(0, width - 1) : text}`);
    this.barShown = true;
  }

  private clearBar(): void {
    if (!this.barShown) return;
    this.terminal.stderr.write('\r\x1b[2K');
    this.barShown = false;
  }
}

export function completedLine(result: JobResult): string {
  const stopping = result.earlyStopping;
  const stopped = stopping?.stoppedAfterEpoch
    ? `, stopped early after epoch ${stopping.stoppedAfterEpoch} keeping epoch ${stopping.keptEpoch}`
    : '';
  return `completed: test accuracy ${result.testAccuracy.toFixed(4)} (${result.correct}/${result.total} correct)${result.macro ? `, macro F1 ${result.macro.f1.toFixed(4)}` : ''}, trained in ${result.trainSeconds.toFixed(1)} s on ${result.backend}${result.device?.kind === 'gpu' ? ` (${result.device.name})` : ''}${stopped}`;
}

/** `m:ss`, or `h:mm:ss` from an hour. */
function duration(seconds: number): string {
  const total = Math.max(0, Math.round(seconds));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const rest = String(total % 60).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${rest}` : `${minutes}:${rest}`;
}
