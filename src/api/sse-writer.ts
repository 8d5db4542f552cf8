import type { ServerResponse } from 'node:http';

/**
 * A Server-Sent Events response on a raw Node response (the Fastify reply hijacked): writes
 * events and comments, waits when the client reads slower than events come, and tells when the
 * client has gone.
 */
export class SseResponse {
  private finished = false;
  private readonly gone: Promise<void>;

  constructor(private readonly raw: ServerResponse) {
    this.gone = new Promise((resolve) => raw.once('close', () => resolve()));
    raw.once('close', () => {
      this.finished = true;
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
    void this.write(`retry: ${retryMs}\n\n`);
  }

  /** True once the client disconnected or the response ended. */
  get closed(): boolean {
    return this.finished || this.raw.destroyed || this.raw.writableEnded;
  }

  /** Resolves when the client disconnects (or the response ends). */
  whenClosed(): Promise<void> {
    return this.gone;
  }

  /** One event; `data` is written as one line, so it must hold no line break (JSON never does). */
  send(event: { id?: string; type: string; data: string }): Promise<void> {
    const id = event.id === undefined ? '' : `id: ${event.id}\n`;
    return this.write(`${id}event: ${event.type}\ndata: ${event.data.replaceAll(/\r?\n/g, ' ')}\n\n`);
  }

  /** A comment line: clients ignore it; it keeps proxies and load balancers from closing an idle stream. */
  comment(text: string): Promise<void> {
    return this.write(`: ${text}\n\n`);
  }

  end(): void {
    if (!this.raw.writableEnded) this.raw.end();
    this.finished = true;
  }

  /** Writes, and when the socket's buffer is full waits until it drains or the client goes. */
  private async write(chunk: string): Promise<void> {
    if (this.closed) return;
    if (this.raw.write(chunk)) return;
    await Promise.race([new Promise<void>((resolve) => this.raw.once('drain', () => resolve())), this.gone]);
  }
}
