import { z } from 'zod';
import { ConfigError } from './config.ts';
import type { ReplicaFault } from './training/replicas/replica-group.ts';

/**
 * Faults the tests inject into a real service process through its environment. Kept apart from
 * src/config.ts, whose schema is the documented settings: no operator sets these, and they are
 * no part of the configuration reference.
 */
const hooks = z.object({
  /** The second replica of every job throws (`throw:<batch>`) or its thread exits (`exit:<batch>`) at that batch. */
  TEST_REPLICA_FAULT: z
    .string()
    .regex(/^(throw|exit):[1-9]\d*$/, 'must be throw:<batch> or exit:<batch>')
    .transform((value): ReplicaFault => {
      const [kind, batch] = value.split(':');
      return { kind: kind === 'exit' ? 'exit' : 'throw', batch: Number(batch) };
    })
    .optional(),
});

export interface TestHooks {
  readonly replicaFault: ReplicaFault | null;
}

/** What a process runs with when no test asked for a fault. */
export const noTestHooks: TestHooks = { replicaFault: null };

/** The test hooks `env` sets, checked like the settings: a malformed one stops the process with a ConfigError. */
export function loadTestHooks(env: NodeJS.ProcessEnv = process.env): TestHooks {
  const parsed = hooks.safeParse({ TEST_REPLICA_FAULT: env.TEST_REPLICA_FAULT?.trim() || undefined });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid test hook: ${problems.join('; ')}`);
  }
  return { replicaFault: parsed.data.TEST_REPLICA_FAULT ?? null };
}
