import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { guardedLookup, refusedAddressCode, urlRefusal, type WebhookUrlPolicy } from './url-policy.ts';

/** One delivery, whatever it reports (a job now; an experiment later): what is sent, where, and signed with what. */
export interface WebhookMessage {
  readonly url: string;
  readonly secret: string;
  /** JSON text, sent and signed exactly as it is. */
  readonly body: string;
  /** The Webhook-Id header: the same for every attempt of this delivery, so that a receiver can tell a retry from a new event. */
  readonly id: string;
}

/** `retry`: whether another attempt may succeed (not for a URL the policy refuses). */
export type DeliveryOutcome =
  { ok: true; statusCode: number } | { ok: false; statusCode: number | null; error: string; retry: boolean };

/**
 * The Webhook-Signature header, Stripe's scheme: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
 * "<t>.<body>" with the secret>`. The time is signed with the body, so a receiver that refuses
 * old timestamps can't be fooled by a delivery recorded and replayed later.
 */
function webhookSignature(secret: string, body: string, unixSeconds: number): string {
  return `t=${unixSeconds},v1=${createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex')}`;
}

/**
 * One attempt at a delivery: POSTs the body, signed, and says how the receiver answered. 2xx is a
 * success; redirects are not followed (they would lead the request past the URL rules). The
 * attempt ends after `timeoutMs` whatever the receiver does, and never throws.
 */
export async function deliverWebhook(
  message: WebhookMessage,
  options: { readonly timeoutMs: number; readonly policy: WebhookUrlPolicy },
): Promise<DeliveryOutcome> {
  const refusal = await urlRefusal(message.url, options.policy);
  if (refusal) return { ok: false, statusCode: null, error: `the URL is refused: ${refusal}`, retry: false };
  const url = new URL(message.url);
  const send = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve) => {
    const request = send(
      url,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(message.body),
          'user-agent': 'tfjs-trainer-webhooks',
          'webhook-id': message.id,
          'webhook-signature': webhookSignature(message.secret, message.body, Math.floor(Date.now() / 1000)),
        },
        lookup: guardedLookup(options.policy),
        // A connection of its own, closed after the answer: no pooled socket outlives the attempt.
        agent: false,
        signal: AbortSignal.timeout(options.timeoutMs),
      },
      (response) => {
        const statusCode = response.statusCode ?? 0;
        // Only the status counts; the rest of the answer is read and dropped (the timeout bounds it).
        response.on('error', () => undefined);
        response.resume();
        resolve(
          statusCode >= 200 && statusCode < 300
            ? { ok: true, statusCode }
            : { ok: false, statusCode, error: `the receiver answered ${statusCode}`, retry: true },
        );
      },
    );
    request.on('error', (error: NodeJS.ErrnoException) => {
      const timedOut = error.name === 'AbortError';
      resolve({
        ok: false,
        statusCode: null,
        error: timedOut ? `no answer within ${options.timeoutMs} ms` : `${error.code ?? error.name}: ${error.message}`,
        retry: error.code !== refusedAddressCode,
      });
    });
    request.end(message.body);
  });
}
