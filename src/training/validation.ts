import { heldOutImages } from '../contract/progress.ts';
import type { JobSettings } from '../contract/job-request.ts';
import type { Dataset, ImageShape, ImageSplit } from '../datasets/dataset.ts';
import { SeededRandom } from '../random.ts';
import { gatherBatch } from './batches.ts';

/** Drawn apart from the job's seed, so holding images out doesn't change the order they train in. */
const validationSeedSalt = 0x5eed_0a1d;

/**
 * The training images a job trains on and the ones it validates on: `validationSplit` of them held
 * out (heldOutImages in all, shared among the classes by their sizes with the largest remainders,
 * each class's chosen by the job's seed), or the data set's own validation split, or none.
 */
export function splitForValidation(
  train: ImageSplit,
  dataset: Pick<Dataset, 'shape' | 'val'>,
  settings: Pick<JobSettings, 'validationSplit' | 'seed'>,
): { train: ImageSplit; validation: ImageSplit | null } {
  const { validationSplit } = settings;
  if (validationSplit === null) return { train, validation: null };
  if (validationSplit === 'dataset') {
    if (!dataset.val || dataset.val.count === 0)
      throw new Error("validationSplit is 'dataset', but this data set has no validation split");
    return { train, validation: dataset.val };
  }
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < train.count; i++) {
    const label = train.labels[i] as number;
    const members = byClass.get(label);
    if (members) members.push(i);
    else byClass.set(label, [i]);
  }
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  const total = heldOutImages(train.count, validationSplit);
  const exact = classes.map((label) => ((byClass.get(label) as number[]).length * total) / train.count);
  const shares = exact.map(Math.floor);
  const byRemainder = classes
    .map((_, index) => index)
    .sort(
      (a, b) => (exact[b] as number) - (shares[b] as number) - ((exact[a] as number) - (shares[a] as number)) || a - b,
    );
  const left = total - shares.reduce((sum, share) => sum + share, 0);
  for (const index of byRemainder.slice(0, left)) shares[index] = (shares[index] as number) + 1;
  const random = new SeededRandom(settings.seed ^ validationSeedSalt);
  const held = new Set<number>();
  classes.forEach((label, index) => {
    const members = byClass.get(label) as number[];
    const order = random.permutation(members.length);
    for (let k = 0; k < (shares[index] as number); k++) held.add(members[order[k] as number] as number);
  });
  const kept: number[] = [];
  const out: number[] = [];
  for (let i = 0; i < train.count; i++) (held.has(i) ? out : kept).push(i);
  return { train: subset(train, dataset.shape, kept), validation: subset(train, dataset.shape, out) };
}

function subset(split: ImageSplit, shape: ImageShape, indices: readonly number[]): ImageSplit {
  const { images, labels } = gatherBatch(split, shape, indices);
  return { images, labels: Uint8Array.from(labels), count: indices.length };
}
