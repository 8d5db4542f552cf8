/**
 * The models and data sets this server implements. The request schema accepts exactly these, and
 * the model and data set registries are typed by them, so a name can't be offered without code.
 */
export const modelNames = ['lenet5', 'alexnet'] as const;
export type ModelName = (typeof modelNames)[number];

export const datasetNames = ['mnist', 'cifar10'] as const;
export type DatasetName = (typeof datasetNames)[number];
