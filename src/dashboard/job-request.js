// @ts-check
/**
 * The body of POST /jobs from the job form's fields: a pure function (no DOM), tested in the fast tier.
 * @import { JobRequestInput } from '../contract/job-request.ts'
 */
import { takesInputSize } from './form-choices.js';

/** The form's number fields, by the request field each one fills. */
export const numberFields = /** @type {const} */ ([
  'epochs',
  'batchSize',
  'learningRate',
  'momentum',
  'weightDecay',
  'seed',
  'trainLimit',
  'testLimit',
  'logEvery',
  'validationSplit',
  'inputSize',
]);

const trainLayerChoices = ['all', 'top', 'head', 'dense'];
const optimizerChoices = ['sgd', 'adam', 'adamw'];

/**
 * The request as sent: what the contract takes, except that a number field may hold text on purpose
 * (so that the server says why it is wrong).
 * @typedef {{ [F in keyof JobRequestInput]?: F extends (typeof numberFields)[number] ? number | string : JobRequestInput[F] }} FormRequest
 */

/**
 * Empty fields are left out (the server fills in their defaults, or `auto` its choices). A number
 * input hands over '' for text it cannot parse: such a field is sent anyway, as text, so the server
 * says why. The input size goes with MobileNetV2 only: the form hides it for the others, and a value
 * left there from before must not make their request fail.
 * @param {{ get(name: string): FormDataEntryValue | null }} data  the form's fields (FormData)
 * @param {ReadonlySet<string>} unparsable  the number fields holding text they cannot parse
 * @returns {FormRequest}
 */
export function requestFromForm(data, unparsable) {
  const text = (/** @type {string} */ name) => String(data.get(name) ?? '').trim();
  /** @type {FormRequest} */
  const body = { model: /** @type {JobRequestInput['model']} */ (text('model')), dataset: text('dataset') };
  for (const name of numberFields) {
    if (name === 'inputSize' && !takesInputSize(body.model ?? '')) continue;
    const raw = text(name);
    if (raw === '' && !unparsable.has(name)) continue;
    body[name] = raw === '' ? 'not a number' : Number(raw);
  }
  const augment = text('augment');
  if (augment === 'true' || augment === 'false') body.augment = augment === 'true';
  const initFrom = text('initFrom');
  if (initFrom) body.initFrom = initFrom;
  const trainLayers = text('trainLayers');
  if (trainLayerChoices.includes(trainLayers))
    body.trainLayers = /** @type {FormRequest['trainLayers']} */ (trainLayers);
  const optimizer = text('optimizer');
  if (optimizerChoices.includes(optimizer)) body.optimizer = /** @type {FormRequest['optimizer']} */ (optimizer);
  return body;
}
