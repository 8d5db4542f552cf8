import type { AutoChoice, TrainingRequest } from '../contract/job-request.ts';
import type { ModelName } from '../contract/names.ts';
import type { DatasetFacts } from './dataset-facts.ts';

/** The settings `model: auto` decides; a request's own value for any of them wins. */
type AutoSettings = Required<
  Pick<
    TrainingRequest,
    | 'initFrom'
    | 'trainLayers'
    | 'inputSize'
    | 'optimizer'
    | 'learningRate'
    | 'learningRateSchedule'
    | 'epochs'
    | 'batchSize'
    | 'augment'
    | 'weightDecay'
    | 'labelSmoothing'
  >
> & { readonly model: ModelName };

/** What auto picks, and the lines that say why. */
export interface AutoPick {
  readonly settings: AutoSettings;
  readonly choice: AutoChoice;
}

/** Images a from-scratch recipe sees in all (epochs × training images), so small sets get more epochs. */
const imagesToSee = 72_000;

/** Images the ImageNet base's top sees in all: 4 epochs of 1,500 photographs reached 0.91 (docs/performance.md). */
const imagesToFineTune = 6_000;

/** Grey images this small take LeNet-5's route even when not strokes: the optical digits' guessed kind is natural (their ink fills the frame). */
const smallGreySide = 32;

/** Photographs this small, this many: enough to train a CIFAR ResNet from scratch, cheaper per image than MobileNetV2 at 96 pixels. */
const smallPhotoSide = 48;
const manyPhotos = 20_000;

/** The input size MobileNetV2 from ImageNet runs at: measured as good as 224 for its frozen blocks' features, at 5 times the speed (docs/performance.md). */
const imagenetInputSize = 96;

function count(n: number): string {
  return n.toLocaleString('en-GB');
}

function epochsFor(trainSize: number, images: number, least: number, most: number): number {
  return Math.min(most, Math.max(least, Math.round(images / trainSize)));
}

/**
 * The rule of `model: auto` (docs/guides/datasets-and-fine-tuning.md gives it in words):
 * - strokes (handwriting, digits, glyphs on a plain background), or grey images of at most 32
 *   pixels a side whatever their kind: LeNet-5 from scratch with Adam,
 *   a warm-up, cosine decay, label smoothing and shifts (never mirrors), for as many epochs as
 *   show it about 72,000 images;
 * - many small photographs (20,000 or more, at most 48 pixels a side): ResNet-20 from scratch with
 *   SGD, a warm-up, cosine decay, crops and mirrors;
 * - other photographs: MobileNetV2 from ImageNet at 96 pixels, its last stages and classifier
 *   trained with Adam for about 6,000 images, the ImageNet blocks kept as they are.
 */
export function autoPick(dataset: DatasetFacts): AutoPick {
  const { shape, trainSize, imageKind } = dataset;
  const size = `${shape.height}×${shape.width}×${shape.channels}`;
  const seen = `${count(trainSize)} training images of ${size}`;
  const side = Math.max(shape.height, shape.width);
  if (imageKind === 'strokes' || (shape.channels === 1 && side <= smallGreySide)) {
    const epochs = epochsFor(trainSize, imagesToSee, 10, 60);
    return {
      settings: {
        model: 'lenet5',
        initFrom: null,
        trainLayers: 'all',
        inputSize: null,
        optimizer: 'adam',
        learningRate: 0.003,
        learningRateSchedule: { type: 'cosine', warmupEpochs: 2, minLearningRate: 0 },
        epochs,
        batchSize: 64,
        augment: true,
        weightDecay: 0,
        labelSmoothing: 0.1,
      },
      choice: {
        reasons: [
          `lenet5 from scratch: the data set's images are ${imageKind === 'strokes' ? 'strokes' : `grey and at most ${smallGreySide} pixels a side`} (${seen}), which a small convolutional network learns well and ImageNet's colour photographs don't help`,
          `adam at 0.003 with 2 warm-up epochs, cosine decay over ${epochs} epochs (${epochs * trainSize > imagesToSee ? 'at least 10' : `about ${count(imagesToSee)} images seen in all: a small set needs more than 10`}) and label smoothing 0.1`,
          imageKind === 'strokes'
            ? 'augment: shifted by up to 4 pixels, never mirrored (a mirrored glyph is another glyph)'
            : 'augment: shifted by up to 4 pixels and mirrored half the time (the images are not strokes; upload with imageKind strokes to keep glyphs unmirrored)',
        ],
      },
    };
  }
  if (side <= smallPhotoSide && trainSize >= manyPhotos) {
    const epochs = epochsFor(trainSize, imagesToSee, 10, 30);
    return {
      settings: {
        model: 'resnet20',
        initFrom: null,
        trainLayers: 'all',
        inputSize: null,
        optimizer: 'sgd',
        learningRate: 0.1,
        learningRateSchedule: { type: 'cosine', warmupEpochs: 1, minLearningRate: 0 },
        epochs,
        batchSize: 64,
        augment: true,
        weightDecay: 5e-4,
        labelSmoothing: 0.1,
      },
      choice: {
        reasons: [
          `resnet20 from scratch: many small photographs (${seen}: at least ${count(manyPhotos)}, at most ${smallPhotoSide} pixels a side), enough for a CIFAR ResNet to learn its own features, at a fraction of MobileNetV2's cost per image at 96 pixels`,
          `sgd at 0.1 (momentum 0.9, weight decay 5e-4) with a warm-up epoch, cosine decay over ${epochs} epochs and label smoothing 0.1`,
          'augment: random 4-pixel crops and mirrors',
        ],
      },
    };
  }
  const recipe = imagenetRecipe(trainSize);
  return {
    settings: { model: 'mobilenetv2', initFrom: 'imagenet', ...recipe },
    choice: {
      reasons: [
        `mobilenetv2 from its ImageNet base: photographs (${seen}), too few to learn features as good as those ImageNet's 1.28 million photographs taught`,
        `inputSize ${imagenetInputSize}: the ImageNet blocks' features measured as good there as at 224 pixels, at a fifth of the cost`,
        `trainLayers top: the ImageNet blocks (0-10) kept as they are, blocks 11-16 and the classifier trained, with adam at 0.001 and cosine decay over ${recipe.epochs} epochs (about ${count(imagesToFineTune)} images seen)`,
        'augment: random 4-pixel crops and mirrors',
      ],
    },
  };
}

/**
 * What a job that starts from the ImageNet base gets for every setting it doesn't give, whether
 * auto chose the base or the request named it: measured to reach 0.91 on 1,500 photographs of
 * three classes in 4 epochs (docs/performance.md).
 */
export function imagenetRecipe(trainSize: number): Omit<AutoSettings, 'model' | 'initFrom'> {
  return {
    trainLayers: 'top',
    inputSize: imagenetInputSize,
    optimizer: 'adam',
    learningRate: 0.001,
    learningRateSchedule: { type: 'cosine', warmupEpochs: 0, minLearningRate: 0 },
    epochs: epochsFor(trainSize, imagesToFineTune, 3, 10),
    batchSize: 32,
    augment: true,
    weightDecay: 4e-5,
    labelSmoothing: 0,
  };
}
