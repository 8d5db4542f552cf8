import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { API_KEY_RULE, commaSeparated, ConfigError, isAcceptableApiKey, type Config } from '../config.ts';
import type { ApiDependencies } from './dependencies.ts';
import { HttpError } from './http-error.ts';
import { checkRateLimit } from './rate-limit.ts';

/** Who sent a request: a client of an API key, or (without keys) an address. */
interface ApiClient {
  /** The owner recorded on the client's jobs: a hash of its key; null when authentication is off. */
  readonly owner: string | null;
  /** What the rate limit counts by: the owner, or the remote address without keys. */
  readonly rateKey: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    apiClient: ApiClient | null;
  }
}

/**
 * The API keys from API_KEYS and API_KEYS_FILE together (none: authentication is off). Read at
 * start-up, so an unreadable file or a weak key stops the service; messages never quote a key.
 */
export function loadApiKeys(config: Pick<Config, 'API_KEYS' | 'API_KEYS_FILE'>): string[] {
  const keys = commaSeparated(config.API_KEYS ?? '');
  if (config.API_KEYS_FILE !== undefined) {
    let text: string;
    try {
      text = readFileSync(config.API_KEYS_FILE, 'utf8');
    } catch (error) {
      throw new ConfigError(
        `API_KEYS_FILE: can't read ${config.API_KEYS_FILE} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    text.split(/\r?\n/).forEach((line, index) => {
      const key = line.trim();
      if (key === '' || key.startsWith('#')) return;
      if (!isAcceptableApiKey(key)) {
        throw new ConfigError(`API_KEYS_FILE: the key on line ${index + 1} must be ${API_KEY_RULE}`);
      }
      keys.push(key);
    });
  }
  return [...new Set(keys)];
}

/** A client's id: a hash of its key, so that neither Redis nor a log line ever holds the key. */
function clientId(key: string): string {
  return createHash('sha256').update(`tfjs-trainer api key\0${key}`).digest('hex').slice(0, 32);
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Checks a presented key against every configured one in constant time (no early exit, fixed-length digests). */
export class KeyRing {
  private readonly digests: readonly { digest: Buffer; owner: string }[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map((key) => ({ digest: digest(key), owner: clientId(key) }));
  }

  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /** The owner id of the presented key, or null when it matches none. */
  match(presented: string): string | null {
    const candidate = digest(presented);
    let found: string | null = null;
    for (const { digest: known, owner } of this.digests) {
      if (timingSafeEqual(candidate, known) && found === null) found = owner;
    }
    return found;
  }
}

/**
 * Paths anyone may read: health, the API documentation, and the dashboard (its page at / and its
 * modules under /dashboard/, which then call the API with a key). An explicit list: a route added
 * later is protected unless added here.
 */
function isPublic(request: FastifyRequest, path: string): boolean {
  if (path === '/health' || path === '/openapi.json' || path === '/docs' || path.startsWith('/docs/')) return true;
  const dashboard = path === '/' || path.startsWith('/dashboard/');
  return dashboard && (request.method === 'GET' || request.method === 'HEAD');
}

const eventsPath = /^\/jobs\/[^/]+\/events$/;

/** The bearer token of the request: the Authorization header, or `access_token` on the event stream only. */
function presentedKey(request: FastifyRequest, path: string): string | null {
  const header = request.headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    return match?.[1] ?? '';
  }
  if (request.method === 'GET' && eventsPath.test(path)) {
    const token = new URLSearchParams(request.url.slice(path.length + 1)).get('access_token');
    if (token !== null) return token;
  }
  return null;
}

/**
 * Takes `access_token` out of the event stream's query once it has been read, so that the route's
 * strict query schema (the contract's) validates the rest, and no handler ever sees the key.
 */
function dropAccessToken(request: FastifyRequest, path: string): void {
  const query = request.query;
  if (eventsPath.test(path) && typeof query === 'object' && query !== null && 'access_token' in query) {
    delete (query as Record<string, unknown>).access_token;
  }
}

/** Whether HOST is a loopback address or name, which no other machine can connect to. */
function listensOnLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function unauthorized(message: string): HttpError {
  return new HttpError(401, message);
}

/**
 * API keys and the per-client rate limit, for every route registered after it. With keys, each
 * request but the public ones needs `Authorization: Bearer <key>` (or `?access_token=` on
 * GET /jobs/:id/events, for EventSource clients); `request.apiClient` says who it is. Without
 * keys, everyone is one client per address, and a warning at start-up says so.
 */
export const securityPlugin = fastifyPlugin<ApiDependencies & { keys: KeyRing }>(
  async (app, { keys, config, redis }) => {
    if (!keys.enabled && listensOnLoopback(config.HOST)) {
      // Only this machine can reach it (the default, and the demo): nothing to warn a newcomer about.
      app.log.info(
        { host: config.HOST },
        'no API keys configured (API_KEYS or API_KEYS_FILE): only this machine can reach the API; set keys before listening on another address',
      );
    } else if (!keys.enabled) {
      app.log.warn(
        { host: config.HOST },
        'no API keys configured (API_KEYS or API_KEYS_FILE): the API is open to anyone who can reach it; keep it on a trusted network or set keys',
      );
    }
    app.decorateRequest('apiClient', null);

    app.addHook('onRequest', async (request, reply) => {
      const path = request.url.split('?')[0] ?? '/';
      const open = isPublic(request, path);
      let owner: string | null = null;
      if (keys.enabled && !open) {
        const presented = presentedKey(request, path);
        if (presented === null) {
          reply.header('www-authenticate', 'Bearer');
          throw unauthorized('authentication required: send the header Authorization: Bearer <API key>');
        }
        owner = keys.match(presented);
        if (owner === null) {
          reply.header('www-authenticate', 'Bearer error="invalid_token"');
          throw unauthorized('the API key is not valid');
        }
      }
      if (request.method === 'GET') dropAccessToken(request, path);
      const client: ApiClient = { owner, rateKey: owner ?? `ip:${request.ip}` };
      request.apiClient = client;
      if (path !== '/health' && config.RATE_LIMIT_PER_MINUTE > 0) {
        const outcome = await checkRateLimit(redis, config.KEY_PREFIX, client.rateKey, config.RATE_LIMIT_PER_MINUTE);
        if (!outcome.allowed) {
          reply.header('retry-after', String(outcome.retryAfterSeconds));
          throw new HttpError(
            429,
            `too many requests: at most ${config.RATE_LIMIT_PER_MINUTE} a minute per client; retry after ${outcome.retryAfterSeconds} s`,
          );
        }
      }
    });
  },
);

/** The owner to record on, and to filter by for, this request's jobs; null when authentication is off. */
export function ownerOf(request: FastifyRequest): string | null {
  return request.apiClient?.owner ?? null;
}
