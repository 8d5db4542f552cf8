/**
 * The models and data sets this server implements. The request schema accepts exactly these, and
 * the model and data set registries are typed by them, so a name can't be offered without code.
 */
export const modelNames = ['lenet5', 'alexnet', 'resnet20', 'mobilenetv2'] as const;
export type ModelName = (typeof modelNames)[number];

/**
 * Pretrained starting points built into the server, by the network they fit: `initFrom` takes
 * their names (src/models/bases/ has what each holds and where it comes from).
 */
export const builtInBaseNames = ['imagenet'] as const;
export type BuiltInBaseName = (typeof builtInBaseNames)[number];

export const datasetNames = ['mnist', 'cifar10'] as const;
export type DatasetName = (typeof datasetNames)[number];

export function isBuiltInDataset(name: string): name is DatasetName {
  return (datasetNames as readonly string[]).includes(name);
}

/**
 * What a data set's images look like, which decides how predict brings an upload to their form:
 * `strokes`, centred strokes on a plain background (MNIST: size-normalised into a 20×20 box and
 * centred by mass); `natural`, photographs filling the frame (CIFAR-10). A data set declares its kind.
 */
export const imageKinds = ['strokes', 'natural'] as const;
export type ImageKind = (typeof imageKinds)[number];
