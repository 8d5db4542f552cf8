import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import type { ErrorBody, ErrorDetail } from '../contract/errors.ts';
import { HttpError } from './http-error.ts';

/** Fastify's own error codes and the contract's status for each. */
const frameworkStatuses: Record<string, number> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 413,
  FST_REQ_FILE_TOO_LARGE: 413,
  FST_FILES_LIMIT: 413,
  FST_PARTS_LIMIT: 413,
  FST_FIELDS_LIMIT: 413,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 415,
  FST_INVALID_MULTIPART_CONTENT_TYPE: 415,
  FST_ERR_CTP_EMPTY_JSON_BODY: 400,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 400,
  FST_PROTO_VIOLATION: 400,
};

const frameworkMessages: Record<number, string> = {
  413: 'the request body or an uploaded file is over its size limit',
  415: 'unsupported media type',
};

/**
 * Turns every failure into the contract's `{ error, details? }` body: validation problems become
 * 400 with one detail per field, and anything that failed because Redis is away becomes 503 so
 * that clients know to retry rather than to fix their request.
 */
export function installErrorHandler(app: FastifyInstance, redis: Redis): void {
  app.setErrorHandler<FastifyError | HttpError>((error, request, reply) => {
    if (error instanceof HttpError) {
      return reply.code(error.statusCode).send(body(error.message, error.details));
    }
    if (hasZodFastifySchemaValidationErrors(error)) {
      const details = error.validation.flatMap((issue): ErrorDetail[] => {
        const path = (issue.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.');
        const unknownKeys = issue.params.keys;
        if (issue.keyword === 'unrecognized_keys' && Array.isArray(unknownKeys)) {
          return unknownKeys.map((key) => ({
            path: path ? `${path}.${String(key)}` : String(key),
            message: 'unknown field',
          }));
        }
        return [{ path, message: issue.message ?? 'is invalid' }];
      });
      const where = error.validationContext ?? 'request';
      return reply.code(400).send(body(`the ${where} is invalid: ${details.map(describe).join('; ')}`, details));
    }
    const status = frameworkStatuses[error.code] ?? error.statusCode ?? 500;
    if (status < 500) {
      return reply.code(status).send(body(frameworkMessages[status] ?? sentence(error.message)));
    }
    if (redisUnreachable(redis)) {
      request.log.warn({ err: error }, 'Redis unreachable');
      return reply.code(503).send(body('Redis is unreachable; try again shortly'));
    }
    request.log.error({ err: error }, 'request failed');
    return reply.code(500).send(body('internal error; the server log has the details'));
  });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send(body(`no route ${request.method} ${request.url.split('?')[0]}`));
  });
}

/**
 * Whether Redis can't be reached now. The socket is the first to know that Redis went away: a
 * request that ran into a connection Redis had just closed fails while ioredis still says `ready`,
 * so the status alone would answer that request 500 instead of 503.
 */
function redisUnreachable(redis: Redis): boolean {
  return redis.status !== 'ready' || !redis.stream?.writable;
}

function body(error: string, details?: ErrorDetail[]): ErrorBody {
  return details && details.length > 0 ? { error, details } : { error };
}

function describe(detail: ErrorDetail): string {
  return detail.path ? `${detail.path}: ${detail.message}` : detail.message;
}

function sentence(message: string): string {
  return message.replace(/^Body /, 'the body ');
}
