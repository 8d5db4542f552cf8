import { UsageError } from './errors.ts';

/** An option whose value is a JSON object (--grid, --base, --early-stopping, …): refused here when it is not one, before anything is sent. */
export function jsonObject(flag: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${flag} must be a JSON object: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new UsageError(`${flag} must be a JSON object, not ${text}`);
  return value as Record<string, unknown>;
}

/** --webhook URL with its secret from $TRAINER_WEBHOOK_SECRET (a flag would show it in process lists): what a job or experiment request names. */
export function webhookOption(
  options: Readonly<Record<string, string>>,
  secret: string | undefined,
): { webhook?: { url: string; secret: string } } {
  const url = options.webhook;
  if (url === undefined) return {};
  if (!secret)
    throw new UsageError(
      '--webhook needs the secret that signs its deliveries in $TRAINER_WEBHOOK_SECRET (never a flag: flags show in process lists)',
    );
  return { webhook: { url, secret } };
}
