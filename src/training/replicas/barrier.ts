import { Control, type StepMemory } from './step-memory.ts';

/** How long one wait blocks before it looks again whether the group is stopping or a replica failed. */
const recheckMs = 1000;

export class ReplicasStoppedError extends Error {
  override readonly name = 'ReplicasStoppedError';
}

/**
 * Blocks this thread until `control[index]` reaches `target` (a replica thread's wait; the main
 * thread's event loop must not block, it uses `Barrier.wait`). Throws once the group stops.
 */
export function waitUntil(memory: StepMemory, index: number, target: number): void {
  for (;;) {
    const current = Atomics.load(memory.control, index);
    if (current >= target) return;
    if (memory.stopped) throw new ReplicasStoppedError('the replica group stopped');
    Atomics.wait(memory.control, index, current, recheckMs);
  }
}

/**
 * Where all replicas meet between the phases of a step. It counts arrivals from the start and
 * never resets: the n-th barrier is passed once n × replicas have arrived, so no replica can
 * race another's reset. Each replica adds the time it waits to its `waited` entry.
 */
export class Barrier {
  private passed = 0;

  constructor(
    private readonly memory: StepMemory,
    private readonly replica: number,
  ) {}

  /** A replica thread's wait: blocks. */
  waitSync(): void {
    const target = this.arrive();
    if (target === null) return;
    const started = performance.now();
    waitUntil(this.memory, Control.arrived, target);
    this.addWaited(started);
  }

  /**
   * The main thread's wait: its event loop goes on meanwhile, so a replica's failure (`failure`,
   * settled when one throws or ends) is heard and ends the wait with `failed()`'s error.
   */
  async wait(failure: Promise<void>, failed: () => Error | null): Promise<void> {
    const target = this.arrive();
    if (target === null) return;
    const started = performance.now();
    const { control } = this.memory;
    for (;;) {
      const current = Atomics.load(control, Control.arrived);
      if (current >= target) break;
      const error = failed();
      if (error) throw error;
      const waiting = Atomics.waitAsync(control, Control.arrived, current, recheckMs);
      if (waiting.async) await Promise.race([waiting.value, failure]);
    }
    this.addWaited(started);
  }

  private addWaited(since: number): void {
    this.memory.waited[this.replica] = (this.memory.waited[this.replica] ?? 0) + performance.now() - since;
  }

  /** Counts this replica in; the arrival count to wait for, or null when it was the last to arrive. */
  private arrive(): number | null {
    this.passed++;
    const target = this.passed * this.memory.layout.replicas;
    const arrived = Atomics.add(this.memory.control, Control.arrived, 1) + 1;
    if (arrived < target) return target;
    Atomics.notify(this.memory.control, Control.arrived);
    return null;
  }
}
