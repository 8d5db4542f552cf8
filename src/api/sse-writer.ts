import type { ServerResponse } from 'node:http';

/** An event as the wire carries it. */
export interface SseEvent {
  readonly id?: string;
  readonly type: string;
  /** One line: JSON never holds a line break, and any other text has its breaks replaced. */
  readonly data: string;
}

/**
 * A Server-Sent Events response on a raw Node response (the Fastify reply hijacked): writes
 * events and comments, and tells when the client has gone. A client that reads slower than
 * events come is cut off once `maxBufferedBytes` wait unsent in this process, so it can't grow
 * the server's memory without limit; it reconnects with Last-Event-ID and misses nothing.
 */
export class SseResponse {
  private finished = false;
  private cut = false;
  private readonly gone: Promise<void>;
  private markGone!: () => void;

  constructor(
    private readonly raw: ServerResponse,
    /** Past this many unsent bytes the client is cut off. */
    readonly maxBufferedBytes: number,
  ) {
    this.gone = new Promise((resolve) => (this.markGone = resolve));
    raw.once('close', () => {
      this.finished = true;
      this.markGone();
    });
  }

  /** Sends the headers (and `retry`, the reconnection delay an EventSource should use). */
  open(retryMs: number): void {
    this.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // Proxies such as nginx would otherwise hold events back in their buffers.
      'x-accel-buffering': 'no',
    });
    this.raw.flushHeaders();
    this.writeNow(`retry: ${retryMs}\n\n`);
  }

  /** True once the client disconnected, was cut off, or the response ended. */
  get closed(): boolean {
    return this.finished || this.raw.destroyed || this.raw.writableEnded;
  }

  /** True when this server closed the stream because the client read too slowly. */
  get cutOff(): boolean {
    return this.cut;
  }

  /** Resolves when the client disconnects, is cut off, or the response ends. */
  whenClosed(): Promise<void> {
    return this.gone;
  }

  /** One event, waiting while the client's buffer is full: for a replay, which need go no faster than the client reads. */
  async send(event: SseEvent): Promise<void> {
    if (this.closed) return;
    if (this.raw.write(encodeSse(event))) return;
    await Promise.race([new Promise<void>((resolve) => this.raw.once('drain', () => resolve())), this.gone]);
  }

  /** One event (encodeSse's bytes) without waiting: live events fan out to every client at once and can't wait for the slowest. */
  push(bytes: Buffer): void {
    this.writeNow(bytes);
  }

  /** A comment line: clients ignore it; it keeps proxies and load balancers from closing an idle stream. */
  comment(text: string): void {
    this.writeNow(`: ${text}\n\n`);
  }

  /** Closes the stream as if the client read too slowly. */
  cutOffNow(): void {
    this.cut = true;
    this.finished = true;
    this.raw.destroy();
    this.markGone();
  }

  end(): void {
    if (!this.raw.writableEnded) this.raw.end();
    this.finished = true;
    this.markGone();
  }

  private writeNow(chunk: string | Buffer): void {
    if (this.closed) return;
    this.raw.write(chunk);
    if (this.raw.writableLength > this.maxBufferedBytes) this.cutOffNow();
  }
}

/** An event as the wire carries it, encoded once however many clients it goes to. */
export function encodeSse(event: SseEvent): Buffer {
  const id = event.id === undefined ? '' : `id: ${event.id}\n`;
  return Buffer.from(`${id}event: ${event.type}\ndata: ${event.data.replaceAll(/\r?\n/g, ' ')}\n\n`);
}
