import type { TrainingPosition } from './checkpoint.ts';

/** Progress writes between log lines, at most this often, so Redis isn't written every batch. */
const progressIntervalMs = 1000;

/**
 * A run's times: training seconds (the epochs' own, evaluation aside), all seconds spent (for the
 * job's time limit), both counting the runs it resumes, and when a progress write or an
 * in-epoch checkpoint is next due.
 */
export class TrainingClock {
  private readonly attemptStarted = performance.now();
  private readonly checkpointMs: number;
  private lastCheckpoint = performance.now();
  private epochStarted = performance.now();
  private epochSecondsBefore = 0;
  private lastProgressWrite = this.epochStarted;
  /** Training seconds of the finished epochs. */
  private trainedSeconds: number;

  /** `checkpointSeconds`: of training between checkpoints within an epoch; 0: none. */
  constructor(
    private readonly resumed: TrainingPosition | undefined,
    private readonly timeoutSeconds: number,
    checkpointSeconds: number,
  ) {
    this.trainedSeconds = resumed?.trainSeconds ?? 0;
    this.checkpointMs = checkpointSeconds * 1000;
  }

  get trainSeconds(): number {
    return this.trainedSeconds;
  }

  activeSeconds(): number {
    return (this.resumed?.activeSeconds ?? 0) + (performance.now() - this.attemptStarted) / 1000;
  }

  /** Whether the run has spent more than the job's timeoutSeconds, counting the runs it resumes. */
  pastTimeLimit(): boolean {
    return this.activeSeconds() > this.timeoutSeconds;
  }

  /** Starts an epoch's clock, at `secondsBefore` for one a resumed run goes on with. */
  startEpoch(secondsBefore: number): void {
    this.epochStarted = performance.now();
    this.epochSecondsBefore = secondsBefore;
    this.lastProgressWrite = this.epochStarted;
  }

  epochSeconds(): number {
    return this.epochSecondsBefore + (performance.now() - this.epochStarted) / 1000;
  }

  /** Adds the epoch's seconds to the training seconds and returns them. */
  finishEpoch(): number {
    const seconds = this.epochSeconds();
    this.trainedSeconds += seconds;
    return seconds;
  }

  progressDue(): boolean {
    return performance.now() - this.lastProgressWrite >= progressIntervalMs;
  }

  progressWritten(): void {
    this.lastProgressWrite = performance.now();
  }

  checkpointDue(): boolean {
    return this.checkpointMs > 0 && performance.now() - this.lastCheckpoint >= this.checkpointMs;
  }

  checkpointed(): void {
    this.lastCheckpoint = performance.now();
  }

  /** Its part of a checkpoint's position. */
  position(): Pick<TrainingPosition, 'trainSeconds' | 'epochSeconds' | 'activeSeconds'> {
    return {
      trainSeconds: this.trainedSeconds,
      epochSeconds: this.epochSeconds(),
      activeSeconds: this.activeSeconds(),
    };
  }
}
