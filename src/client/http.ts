import type { z } from 'zod';
import { errorBody } from '../contract/errors.ts';
import { ApiError, UnreachableError } from './errors.ts';

/** How long an ordinary request may take before it counts as unanswered. */
const requestTimeoutMs = 30_000;
/** Uploads of many images and model downloads of hundreds of MB (AlexNet) take longer. */
export const uploadTimeoutMs = 300_000;

interface JsonRequest {
  readonly method?: 'GET' | 'POST' | 'DELETE';
  /** Sent as JSON. */
  readonly json?: unknown;
  /** Sent as it is (a form, an archive's bytes), with `contentType` when given. */
  readonly body?: BodyInit;
  readonly contentType?: string;
  readonly timeoutMs?: number;
}

/** The service at one base URL, with its API key when it wants one: requests, and answers checked against the contract. */
export class Http {
  readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly apiKey?: string,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  /** Sends the request; an error answer throws ApiError, an answer the schema refuses too. */
  async json<T>(path: string, schema: z.ZodType<T>, request: JsonRequest = {}): Promise<T> {
    const method = request.method ?? 'GET';
    const response = await this.fetch(path, {
      method,
      ...bodyOf(request),
      signal: AbortSignal.timeout(request.timeoutMs ?? requestTimeoutMs),
    });
    if (!response.ok) throw await errorFrom(response);
    return parseAnswer(response, schema, `${method} ${path}`);
  }

  /** fetch with the API key; no answer at all throws UnreachableError, saying why in a few words. */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    try {
      const headers = new Headers(init.headers);
      if (this.apiKey) headers.set('authorization', `Bearer ${this.apiKey}`);
      return await fetch(`${this.baseUrl}${path}`, { ...init, headers });
    } catch (error) {
      throw new UnreachableError(`cannot reach the server at ${this.baseUrl} (${reason(error)})`);
    }
  }
}

/** The answer's JSON as the schema reads it; an ApiError when it is not what the API describes. */
export async function parseAnswer<T>(response: Response, schema: z.ZodType<T>, what: string): Promise<T> {
  const text = await response.text();
  let value: unknown;
  try {
    value = text ? JSON.parse(text) : null;
  } catch {
    value = undefined;
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success)
    throw new ApiError(response.status, { error: `the server's answer to ${what} is not what the API describes` });
  return parsed.data;
}

/** The error answer as an ApiError: the contract's body, or the status line when it is some other page (a proxy's). */
export async function errorFrom(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => '');
  try {
    const body = errorBody.safeParse(JSON.parse(text));
    if (body.success) return new ApiError(response.status, body.data);
  } catch {
    // Not JSON: the status line says what there is to say.
  }
  return new ApiError(response.status, { error: `HTTP ${response.status} ${response.statusText}`.trim() });
}

function bodyOf(request: JsonRequest): Pick<RequestInit, 'body' | 'headers'> {
  if (request.json !== undefined)
    return { body: JSON.stringify(request.json), headers: { 'content-type': 'application/json' } };
  if (request.body === undefined) return {};
  return { body: request.body, ...(request.contentType ? { headers: { 'content-type': request.contentType } } : {}) };
}

/** Why fetch failed, in a few words: undici hides the system error in `cause`. */
function reason(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))
    return 'no answer in time';
  const cause = error instanceof Error ? (error.cause as { code?: string; message?: string } | undefined) : undefined;
  const known: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ENOTFOUND: 'unknown host',
    EAI_AGAIN: 'name lookup failed',
    ECONNRESET: 'connection reset',
    ETIMEDOUT: 'connection timed out',
    EHOSTUNREACH: 'host unreachable',
  };
  if (cause?.code) return known[cause.code] ?? cause.code;
  return cause?.message ?? (error instanceof Error ? error.message : String(error));
}
