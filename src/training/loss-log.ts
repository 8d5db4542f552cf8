import * as tf from '@tensorflow/tfjs-core';
import type { TrainingPosition } from './checkpoint.ts';

/**
 * The losses a run has summed but not yet logged: the log window in progress, summed on the
 * backend (reading the loss every batch stalls it) and read back only when a log line is due, the
 * epoch's sum of the windows closed so far, and how many log lines were written.
 */
export class LossLog {
  private window: tf.Scalar = tf.scalar(0);
  private windowBatches = 0;
  private epochSum = 0;

  constructor(private lines: number) {}

  /** The epoch's summed loss so far (the windows closed in it). */
  get epochLoss(): number {
    return this.epochSum;
  }

  get logLines(): number {
    return this.lines;
  }

  /** Starts an epoch, empty or, resumed, where `continued` left it. */
  startEpoch(continued: TrainingPosition | null): void {
    this.window.dispose();
    this.window = tf.scalar(continued?.windowLoss ?? 0);
    this.windowBatches = continued?.windowBatches ?? 0;
    this.epochSum = continued?.epochLoss ?? 0;
  }

  /** Adds a batch's loss, which it takes over, to the window. */
  add(loss: tf.Scalar): void {
    const summed = tf.add<tf.Scalar>(this.window, loss);
    tf.dispose([this.window, loss]);
    this.window = summed;
    this.windowBatches++;
  }

  /** Reads the window back, adds it to the epoch's sum and empties it; returns its mean loss. */
  async closeWindow(): Promise<number> {
    const sum = (await this.window.data())[0] as number;
    const mean = sum / this.windowBatches;
    this.epochSum += sum;
    this.window.dispose();
    this.window = tf.scalar(0);
    this.windowBatches = 0;
    return mean;
  }

  lineWritten(): void {
    this.lines++;
  }

  /** Its part of a checkpoint's position. */
  async position(): Promise<Pick<TrainingPosition, 'epochLoss' | 'windowLoss' | 'windowBatches' | 'logLines'>> {
    return {
      epochLoss: this.epochSum,
      windowLoss: (await this.window.data())[0] as number,
      windowBatches: this.windowBatches,
      logLines: this.lines,
    };
  }

  dispose(): void {
    this.window.dispose();
  }
}
