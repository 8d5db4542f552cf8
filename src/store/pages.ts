import type { Redis } from 'ioredis';

/**
 * One page of a sorted-set index scored by sequence number, newest first: up to `limit` ids below
 * `cursor` (the sequence number an earlier page answered as `next`; none: from the newest), and
 * the cursor of the page after it (null on the last page).
 */
export async function indexPage(
  redis: Redis,
  key: string,
  limit: number,
  cursor?: string,
): Promise<{ ids: string[]; next: string | null }> {
  const max = cursor === undefined ? '+inf' : `(${cursor}`;
  const entries = await redis.zrevrangebyscore(key, max, '-inf', 'WITHSCORES', 'LIMIT', 0, limit + 1);
  const page: { id: string; sequence: string }[] = [];
  for (let i = 0; i + 1 < entries.length; i += 2)
    page.push({ id: entries[i] as string, sequence: entries[i + 1] as string });
  const shown = page.slice(0, limit);
  return { ids: shown.map(({ id }) => id), next: page.length > limit ? (shown.at(-1)?.sequence ?? null) : null };
}
