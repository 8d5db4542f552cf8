import type { TransitionOutcome } from '../store/lifecycle.ts';
import type { ApiDependencies } from './dependencies.ts';

/** Cancels a queued or running job: a queued one leaves the queue now; a running one is stopped by its worker, which watches the state. */
export async function cancelJob(
  { store, queue }: Pick<ApiDependencies, 'store' | 'queue'>,
  id: string,
): Promise<TransitionOutcome> {
  const outcome = await store.lifecycle.cancel(id);
  if (outcome.ok && outcome.previous === 'queued') await queue.remove(id).catch(() => undefined);
  return outcome;
}
