import { pino, type Logger } from 'pino';
import type { Config } from './config.ts';

/** What Fastify's request log line shows of a request; the URL without the value of `access_token`. */
interface LoggedRequest {
  readonly method?: string;
  readonly url?: string;
  readonly host?: string;
  readonly ip?: string;
  readonly socket?: { readonly remotePort?: number };
}

/** Hides the value of every `access_token` query parameter: a bearer key, for EventSource clients. */
function redactAccessTokens(url: string): string {
  return url.replace(/([?&;]access_token=)[^&#;]*/gi, '$1[redacted]');
}

export function createLogger(config: Pick<Config, 'LOG_LEVEL'>, destination?: NodeJS.WritableStream): Logger {
  const options = {
    level: config.LOG_LEVEL,
    // API keys never reach a log line: not from the header, nor from the event stream's query.
    redact: {
      paths: [
        'req.headers.authorization',
        'headers.authorization',
        'req.query.access_token',
        'query.access_token',
        'access_token',
      ],
      censor: '[redacted]',
    },
    // Fastify uses the logger's own `req` serializer in preference to its built-in one.
    serializers: {
      req: (request: LoggedRequest) => ({
        method: request.method,
        url: request.url === undefined ? undefined : redactAccessTokens(request.url),
        host: request.host,
        remoteAddress: request.ip,
        remotePort: request.socket?.remotePort,
      }),
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
