/**
 * `npm run bench -- --profile`: where one training step's time goes, per phase and per kernel.
 *
 * The step is the trainer's own (TrainingStep: what the trainer runs whole, this runs through its
 * seams, images / gradients / apply, to time each phase), with the trainer's gatherBatch and augmentBatch.
 * Two passes over the same stream of batches: one times the phases with the clock, the other runs
 * under tf.profile, whose per-kernel times include none of the JavaScript around the kernels, so
 * the two side by side show how much of a phase is framework overhead.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { JobSettings } from '../src/contract/job-request.ts';
import type { Dataset } from '../src/datasets/dataset.ts';
import { SeededRandom } from '../src/random.ts';
import { augmentBatch } from '../src/training/augment.ts';
import { firstImages, gatherBatch } from '../src/training/batches.ts';
import { TrainingStep } from '../src/training/training-step.ts';

const phases = ['gather', 'augment', 'normalise', 'forward', 'backward', 'optimizer', 'loss sum', 'loss read'] as const;
type Phase = (typeof phases)[number];

/** The grouping: data, forward, backward, optimizer, logging and host reads. */
const groupOf: Record<Phase, string> = {
  gather: 'data',
  augment: 'data',
  normalise: 'data',
  forward: 'forward',
  backward: 'backward',
  optimizer: 'optimizer',
  'loss sum': 'logging',
  'loss read': 'logging',
};

const phaseNote: Record<Phase, string> = {
  gather: 'copy the batch bytes out of the data set (gatherBatch)',
  augment: 'random crop, and mirror for natural images, on bytes (augmentBatch)',
  normalise: 'bytes to float32 tensor',
  forward: 'layers in turn (trainingForward) + softmax cross-entropy, recording the tape',
  backward: 'gradients from the tape',
  optimizer: 'weight decay + momentum update',
  'loss sum': 'add the loss to the log window (stays on the backend)',
  'loss read': 'read the window back to the host, every logEvery batches',
};

/**
 * While the tape records, the engine keeps what each kernel's gradient needs by copying it with
 * the Identity kernel (engine.saveTensorsForBackwardMode; the wasm backend's Identity copies),
 * from inside that kernel's own run: its time is part of that kernel's too, so sums leave it out.
 */
const runsInsideAnother = (kernel: string) => kernel === 'Identity';

/** Called at the end of each phase, in order; a step skips none, so each mark closes one phase. */
type Mark = (phase: Phase) => void;

/**
 * The trainer's loop, one step per call, with a mark after each phase. Every phase that leaves
 * tensors behind ends by awaiting data() of one of them: the wasm, cpu and native backends run a
 * kernel before the op returns, but an asynchronous one would otherwise bill its work to a later
 * phase. Only the forward/backward seam can't await (it is inside variableGrads), so it relies on
 * the backend being synchronous; the bench runs on those.
 */
class ProfiledLoop {
  private readonly random: SeededRandom;
  private readonly trainingStep: TrainingStep;
  /** The smallest variable's index: its gradient, or itself, is the cheapest to await. */
  private readonly smallest: number;
  private order: Uint32Array;
  private cursor = 0;
  private batch = 0;
  private windowLoss: tf.Scalar = tf.scalar(0);

  constructor(
    private readonly model: tfl.LayersModel,
    private readonly dataset: Dataset,
    private readonly settings: JobSettings,
  ) {
    this.random = new SeededRandom(settings.seed);
    this.trainingStep = new TrainingStep(model, dataset.shape, dataset.classNames.length, settings);
    const { variables } = this.trainingStep;
    if (variables.length === 0) throw new Error('the model has no trainable weights');
    this.smallest = variables.reduce(
      (best, variable, index) => (variable.size < (variables[best] as tf.Variable).size ? index : best),
      0,
    );
    this.order = this.random.permutation(this.trainSplit().count);
  }

  private trainSplit() {
    return firstImages(this.dataset.train, this.dataset.shape, this.settings.trainLimit);
  }

  async step(mark: Mark): Promise<void> {
    const { batchSize, augment, logEvery } = this.settings;
    const step = this.trainingStep;
    const split = this.trainSplit();
    if (this.cursor + batchSize > split.count) {
      this.order = this.random.permutation(split.count);
      this.cursor = 0;
    }
    const indices = this.order.subarray(this.cursor, this.cursor + batchSize);
    this.cursor += batchSize;
    this.batch++;

    const { images, labels } = gatherBatch(split, this.dataset.shape, indices);
    mark('gather');
    const pixels = augment
      ? augmentBatch(images, labels.length, this.dataset.shape, this.dataset.imageKind, this.random)
      : images;
    mark('augment');
    const xs = step.images(pixels, labels.length);
    await xs.data();
    mark('normalise');

    const { loss, grads } = step.gradients(xs, labels, () => mark('forward'));
    xs.dispose();
    await (grads[this.smallest] as tf.Tensor).data();
    mark('backward');

    step.apply(grads);
    tf.dispose(grads);
    await (step.variables[this.smallest] as tf.Variable).data();
    mark('optimizer');

    const summed = tf.add<tf.Scalar>(this.windowLoss, loss);
    tf.dispose([this.windowLoss, loss]);
    this.windowLoss = summed;
    mark('loss sum');
    if (this.batch % logEvery === 0) {
      await this.windowLoss.data();
      this.windowLoss.dispose();
      this.windowLoss = tf.scalar(0);
    }
    mark('loss read');
  }

  dispose(): void {
    this.windowLoss.dispose();
    this.trainingStep.dispose();
  }
}

export interface ProfileRuns {
  /** Steps run first and not measured: the first calls compile and allocate. */
  readonly warmupSteps: number;
  /** Steps timed per phase. */
  readonly timedSteps: number;
  /** Steps run under tf.profile for the kernel table. */
  readonly kernelSteps: number;
}

export interface PhaseRow {
  readonly phase: Phase;
  readonly group: string;
  readonly note: string;
  readonly msPerStep: number;
  /** Time inside kernels in this phase, from the tf.profile pass. */
  readonly kernelMsPerStep: number;
  readonly kernelsPerStep: number;
}

export interface KernelRow {
  readonly kernel: string;
  readonly group: string;
  readonly callsPerStep: number;
  readonly msPerStep: number;
  /** Input shapes of this kernel's slowest call, to tell layers apart. */
  readonly slowestInputs: string;
}

export interface TrainingProfile {
  readonly title: string;
  readonly backend: string;
  readonly timedSteps: number;
  readonly kernelSteps: number;
  readonly stepMs: number;
  readonly imagesPerSecond: number;
  readonly phases: readonly PhaseRow[];
  readonly kernels: readonly KernelRow[];
  /** Wall time per step of the tf.profile pass, which is slower than the timed pass. */
  readonly profiledStepMs: number;
  /** Ops with a custom gradient, whose time is that of the kernels they call (in `kernels`) plus their own JavaScript. */
  readonly composites: readonly { readonly name: string; readonly callsPerStep: number; readonly msPerStep: number }[];
}

/** Profiles `runs` steps of the trainer's loop on a freshly built `model`, which it disposes. */
export async function profileTraining(
  title: string,
  model: tfl.LayersModel,
  dataset: Dataset,
  settings: JobSettings,
  runs: ProfileRuns,
): Promise<TrainingProfile> {
  const loop = new ProfiledLoop(model, dataset, settings);
  try {
    for (let i = 0; i < runs.warmupSteps; i++) await loop.step(() => undefined);

    const phaseMs = new Map<Phase, number>(phases.map((phase) => [phase, 0]));
    const timedStart = performance.now();
    for (let i = 0; i < runs.timedSteps; i++) {
      let last = performance.now();
      await loop.step((phase) => {
        const now = performance.now();
        phaseMs.set(phase, (phaseMs.get(phase) ?? 0) + now - last);
        last = now;
      });
    }
    const stepMs = (performance.now() - timedStart) / runs.timedSteps;

    // The profile lists kernels in the order they ran; counting them at each mark tells which
    // phase each one belongs to.
    const phaseOfKernel: Phase[] = [];
    const engineState = tf.engine().state;
    const profiledStart = performance.now();
    const profile = await tf.profile(async () => {
      for (let i = 0; i < runs.kernelSteps; i++) {
        await loop.step((phase) => {
          while (phaseOfKernel.length < engineState.activeProfile.kernels.length) phaseOfKernel.push(phase);
        });
      }
    });
    const profiledStepMs = (performance.now() - profiledStart) / runs.kernelSteps;

    const kernelMsByPhase = new Map<Phase, number>();
    const kernelCountByPhase = new Map<Phase, number>();
    const byKernel = new Map<
      string,
      { kernel: string; group: string; calls: number; ms: number; slowestMs: number; slowestInputs: string }
    >();
    const composites = new Map<string, { calls: number; ms: number }>();
    const backendName = tf.getBackend();
    profile.kernels.forEach((kernel, index) => {
      const phase = phaseOfKernel[index] ?? 'loss read';
      const ms = typeof kernel.kernelTimeMs === 'number' ? kernel.kernelTimeMs : 0;
      // Ops with a custom gradient (softmax cross-entropy, fused matmul) are listed like kernels,
      // but their time contains the real kernels they call, which are listed too: counting both
      // would count those kernels twice.
      if (tf.getKernel(kernel.name, backendName) === undefined) {
        const composite = composites.get(kernel.name) ?? { calls: 0, ms: 0 };
        composite.calls++;
        composite.ms += ms;
        composites.set(kernel.name, composite);
        return;
      }
      if (!runsInsideAnother(kernel.name)) kernelMsByPhase.set(phase, (kernelMsByPhase.get(phase) ?? 0) + ms);
      kernelCountByPhase.set(phase, (kernelCountByPhase.get(phase) ?? 0) + 1);
      const key = `${groupOf[phase]}/${kernel.name}`;
      const row = byKernel.get(key) ?? {
        kernel: kernel.name,
        group: groupOf[phase],
        calls: 0,
        ms: 0,
        slowestMs: -1,
        slowestInputs: '',
      };
      row.calls++;
      row.ms += ms;
      if (ms > row.slowestMs) {
        row.slowestMs = ms;
        // An optional input that wasn't given (a bias) is listed as null.
        row.slowestInputs = kernel.inputShapes
          .map((shape: number[] | null) => (shape ? `[${shape.join(',')}]` : '–'))
          .join(' ');
      }
      byKernel.set(key, row);
    });

    return {
      title,
      backend: tf.getBackend(),
      timedSteps: runs.timedSteps,
      kernelSteps: runs.kernelSteps,
      stepMs,
      imagesPerSecond: (settings.batchSize * 1000) / stepMs,
      profiledStepMs,
      phases: phases
        .filter((phase) => phase !== 'augment' || settings.augment)
        .map((phase) => ({
          phase,
          group: groupOf[phase],
          note: phaseNote[phase],
          msPerStep: (phaseMs.get(phase) ?? 0) / runs.timedSteps,
          kernelMsPerStep: (kernelMsByPhase.get(phase) ?? 0) / runs.kernelSteps,
          kernelsPerStep: (kernelCountByPhase.get(phase) ?? 0) / runs.kernelSteps,
        })),
      kernels: [...byKernel.values()]
        .map((row) => ({
          kernel: row.kernel,
          group: row.group,
          callsPerStep: row.calls / runs.kernelSteps,
          msPerStep: row.ms / runs.kernelSteps,
          slowestInputs: row.slowestInputs,
        }))
        .sort((a, b) => b.msPerStep - a.msPerStep),
      composites: [...composites].map(([name, row]) => ({
        name,
        callsPerStep: row.calls / runs.kernelSteps,
        msPerStep: row.ms / runs.kernelSteps,
      })),
    };
  } finally {
    loop.dispose();
    model.dispose();
  }
}

/** Kernel rows shown before the rest are summed into one line. */
const kernelRowsShown = 20;

export function formatProfile(profile: TrainingProfile): string {
  const ms = (value: number) => (value >= 10 ? value.toFixed(1) : value.toFixed(3));
  const share = (value: number, whole: number) => `${((100 * value) / whole).toFixed(1)}%`;
  const phaseSum = profile.phases.reduce((sum, row) => sum + row.msPerStep, 0);
  const kernelSum = profile.kernels.reduce((sum, row) => sum + (runsInsideAnother(row.kernel) ? 0 : row.msPerStep), 0);
  const lines = [
    `${profile.title}, ${profile.backend}: ${ms(profile.stepMs)} ms per step (${profile.imagesPerSecond.toFixed(0)} images/s) over ${profile.timedSteps} timed steps;`,
    `kernel times from tf.profile over ${profile.kernelSteps} more steps (${ms(profile.profiledStepMs)} ms per step while profiled).`,
    '',
    '| group | phase | ms/step | share of step | kernel ms/step | kernels/step | what |',
    '| --- | --- | ---: | ---: | ---: | ---: | --- |',
    ...profile.phases.map(
      (row) =>
        `| ${row.group} | ${row.phase} | ${ms(row.msPerStep)} | ${share(row.msPerStep, profile.stepMs)} | ${ms(row.kernelMsPerStep)} | ${row.kernelsPerStep.toFixed(0)} | ${row.note} |`,
    ),
    `| | loop (the rest) | ${ms(profile.stepMs - phaseSum)} | ${share(profile.stepMs - phaseSum, profile.stepMs)} | | | batch indices, marks |`,
    `| | **step** | **${ms(profile.stepMs)}** | 100% | **${ms(kernelSum)}** | ${profile.phases.reduce((sum, row) => sum + row.kernelsPerStep, 0).toFixed(0)} | kernels: ${share(kernelSum, profile.profiledStepMs)} of a profiled step, the rest is JavaScript |`,
    '',
    "| kernel | group | calls/step | ms/step | share of kernel time | slowest call's input shapes |",
    '| --- | --- | ---: | ---: | ---: | --- |',
  ];
  for (const row of profile.kernels.slice(0, kernelRowsShown)) {
    const rowShare = runsInsideAnother(row.kernel) ? '(inside others)' : share(row.msPerStep, kernelSum);
    lines.push(
      `| ${row.kernel} | ${row.group} | ${row.callsPerStep.toFixed(0)} | ${ms(row.msPerStep)} | ${rowShare} | ${row.slowestInputs} |`,
    );
  }
  const rest = profile.kernels.slice(kernelRowsShown);
  if (rest.length > 0) {
    const restMs = rest.reduce((sum, row) => sum + (runsInsideAnother(row.kernel) ? 0 : row.msPerStep), 0);
    const restCalls = rest.reduce((sum, row) => sum + row.callsPerStep, 0);
    lines.push(`| ${rest.length} others | | ${restCalls.toFixed(0)} | ${ms(restMs)} | ${share(restMs, kernelSum)} | |`);
  }
  if (profile.composites.length > 0) {
    const composites = profile.composites
      .map((row) => `${row.name} ${ms(row.msPerStep)} ms × ${row.callsPerStep.toFixed(0)}`)
      .join(', ');
    lines.push('', `Not in the table, as their kernels are: ops with a custom gradient, per step: ${composites}.`);
  }
  if (profile.kernels.some((row) => runsInsideAnother(row.kernel))) {
    lines.push(
      "Identity: the engine's copies of what a kernel's gradient will need, made while that kernel runs: its time is inside that kernel's too.",
    );
  }
  return lines.join('\n');
}
