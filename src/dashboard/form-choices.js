// @ts-check
/**
 * What the job form offers for the model chosen: the "Start from" choices, and the placeholders and
 * default labels of the fields that `auto` or the model's recipe decide. Pure functions of the
 * API's answers (no DOM), tested in the fast tier.
 * @import { ModelCatalog } from '../contract/catalog.ts'
 * @import { Base } from '../contract/bases.ts'
 * @import { JobSummary } from '../contract/job.ts'
 */

/** The model select's value that lets the server pick: the request's default. */
export const autoModel = 'auto';

/** Only MobileNetV2 takes an input size (it resizes inside the network). */
export const takesInputSize = (/** @type {string} */ model) => model === 'mobilenetv2';

/**
 * One option of the "Start from" select; `group` is its optgroup's label, or null for none.
 * @typedef {{ value: string, text: string, group: string | null }} StartChoice
 */

/**
 * What a job of `model` can start from: nothing, the model's built-in bases (GET /models), the
 * client's bases of that network (GET /bases) and its completed jobs of that model. With auto, the
 * network isn't known until the server picks it, so auto picks the start too.
 * @param {string} model  the model select's value
 * @param {ModelCatalog['models']} models
 * @param {readonly Base[]} bases
 * @param {readonly JobSummary[]} jobs  newest first
 * @param {(id: string) => string} datasetName
 * @returns {StartChoice[]}
 */
export function startChoices(model, models, bases, jobs, datasetName) {
  if (model === autoModel) return [{ value: '', text: 'picked by auto', group: null }];
  const builtIn = models.find((entry) => entry.name === model)?.bases ?? [];
  return [
    { value: '', text: 'from scratch', group: null },
    ...builtIn.map((base) => ({ value: base.name, text: base.name, group: 'Built in' })),
    ...bases
      .filter((base) => base.network === model)
      .map((base) => ({
        value: base.id,
        text: `${base.name} (${base.input.height}×${base.input.width}×${base.input.channels})`,
        group: 'Your bases',
      })),
    ...jobs
      .filter((job) => job.state === 'completed' && job.request.model === model)
      .map((job) => ({
        value: job.id,
        text: `job ${job.id.slice(0, 8)} on ${datasetName(job.request.dataset)}${job.result ? ` (${(job.result.testAccuracy * 100).toFixed(1)}%)` : ''}`,
        group: 'Completed jobs',
      })),
  ];
}

/**
 * The placeholders of the fields left empty, and the labels of the selects' default options: what
 * the server will use. Under auto it is auto's to say; a named model's recipe decides batch size and
 * learning rate (GET /models doesn't give them, so they are not guessed here).
 * @param {string} model
 * @param {string} optimizer  the optimizer select's value: '' for the default
 */
export function fieldDefaults(model, optimizer) {
  if (model === autoModel)
    return {
      epochs: 'auto',
      batchSize: 'auto',
      learningRate: 'auto',
      weightDecay: 'auto',
      inputSize: 'auto',
      optimizer: 'picked by auto',
      trainLayers: 'picked by auto',
      augment: 'picked by auto',
    };
  const adam = optimizer === 'adam' || optimizer === 'adamw';
  return {
    epochs: '10',
    batchSize: 'model default',
    learningRate: adam ? '0.001' : 'model default',
    weightDecay: optimizer === 'adamw' ? '0.01' : 'model default',
    inputSize: "data set's size",
    optimizer: 'SGD (default)',
    trainLayers: 'all (default)',
    augment: 'data set default',
  };
}
