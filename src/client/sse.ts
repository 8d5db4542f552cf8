/** One Server-Sent Event as the wire format defines it (https://html.spec.whatwg.org/multipage/server-sent-events.html). */
export interface SseMessage {
  /** The `id:` field, when the event had one. */
  readonly id?: string;
  /** The `event:` field; `message` when absent. */
  readonly event: string;
  readonly data: string;
}

export interface SseParseOptions {
  /** Called with the text of each comment line (`: heartbeat`). */
  onComment?(text: string): void;
  /** Called with the `retry:` reconnection delay the server asks for. */
  onRetry?(milliseconds: number): void;
}

/** Parses an event-stream body into its events, as they arrive. */
export async function* parseSse(
  body: AsyncIterable<Uint8Array>,
  options: SseParseOptions = {},
): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  let buffer = '';
  let id: string | undefined;
  let event = '';
  let data: string[] = [];
  let pendingCarriageReturn = false;

  function* lines(text: string): Generator<string> {
    buffer += text;
    let start = 0;
    for (let i = 0; i < buffer.length; i++) {
      const char = buffer[i];
      if (char === '\n' && pendingCarriageReturn) {
        // The \n of a \r\n whose \r ended the last line.
        start = i + 1;
        pendingCarriageReturn = false;
        continue;
      }
      pendingCarriageReturn = false;
      if (char === '\r' || char === '\n') {
        yield buffer.slice(start, i);
        if (char === '\r') {
          if (buffer[i + 1] === '\n') i++;
          else if (i + 1 === buffer.length) pendingCarriageReturn = true;
        }
        start = i + 1;
      }
    }
    buffer = buffer.slice(start);
  }

  function* dispatch(line: string): Generator<SseMessage> {
    if (line === '') {
      if (data.length > 0)
        yield { ...(id === undefined ? {} : { id }), event: event || 'message', data: data.join('\n') };
      event = '';
      data = [];
      return;
    }
    if (line.startsWith(':')) {
      options.onComment?.(line.slice(1).trimStart());
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
    else if (field === 'id' && !value.includes('\0')) id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) options.onRetry?.(Number(value));
  }

  for await (const chunk of body) {
    for (const line of lines(decoder.decode(chunk, { stream: true }))) yield* dispatch(line);
  }
  for (const line of lines(decoder.decode())) yield* dispatch(line);
  // An event without its closing blank line is incomplete, and dropped, as the standard says.
}
