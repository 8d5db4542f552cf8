import { z } from 'zod';

/** Shortest webhook secret: the receiver trusts whoever knows it, so it must not be guessable. */
const minSecretLength = 16;

/** A webhook as POST /jobs names it. The server's URL rules (allow-list, address ranges) are checked after this shape. */
export const webhookRequest = z
  .strictObject({
    url: z
      .url({ protocol: /^https?$/, error: 'webhook.url must be an absolute http or https URL' })
      .max(2048, { error: 'webhook.url must be at most 2048 characters' })
      .meta({
        description:
          'where the job is POSTed when it ends; the server may require its host to be on an allow-list and refuses private addresses unless it allows them',
      }),
    secret: z
      .string()
      .min(minSecretLength, `webhook.secret must be at least ${minSecretLength} characters`)
      .max(256)
      .meta({ description: 'signs every delivery (Webhook-Signature); kept by the server and never shown again' }),
  })
  .meta({ id: 'WebhookRequest' });
export type WebhookRequest = z.infer<typeof webhookRequest>;

const webhookDelivery = z
  .object({
    webhookId: z.string().meta({ description: 'the Webhook-Id header: the same for every attempt of one delivery' }),
    attempt: z.number().int().positive(),
    at: z.iso.datetime().meta({ description: 'when the attempt started' }),
    ok: z.boolean().meta({ description: 'the receiver answered 2xx' }),
    statusCode: z.number().int().nullable().meta({
      description: "the receiver's HTTP status; null when it gave none (timeout, connection error, refused URL)",
    }),
    error: z.string().nullable().meta({ description: 'why the attempt failed; null when it succeeded' }),
  })
  .meta({ id: 'WebhookDelivery' });
export type WebhookDelivery = z.infer<typeof webhookDelivery>;

/** A job's webhook as GET /jobs/:id shows it: never its secret. */
export const jobWebhook = z
  .object({
    url: z.string(),
    secretSet: z.literal(true).meta({ description: 'a secret signs the deliveries; it is never shown' }),
    deliveries: z.array(webhookDelivery).meta({ description: 'every delivery attempt so far, oldest first' }),
  })
  .meta({ id: 'JobWebhook' });
export type JobWebhook = z.infer<typeof jobWebhook>;
