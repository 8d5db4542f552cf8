// @ts-check
/**
 * "Try the model": images dropped or chosen are classified by the open job's model, each shown
 * beside what the model saw; and the model's zip to download.
 * @import { Prediction } from '../contract/predict.ts'
 */
import * as api from './api.js';
import { $, element, showError } from './dom.js';
import { describePreprocessing, percent } from './format.js';
import { state } from './state.js';

export function wirePredictions() {
  const zone = $('dropzone');
  const input = $('predict-input', HTMLInputElement);
  input.addEventListener('change', () => {
    void predict(input.files ?? []).finally(() => (input.value = ''));
  });
  for (const type of ['dragenter', 'dragover']) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add('over');
    });
  }
  for (const type of ['dragleave', 'drop']) zone.addEventListener(type, () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    void predict(event.dataTransfer?.files ?? []);
  });
  $('download-model').addEventListener('click', () => void downloadModel());
}

/** @param {Iterable<File>} files */
async function predict(files) {
  const images = [...files].filter((file) => file.type === '' || file.type.startsWith('image/'));
  const errorLine = $('predict-error');
  errorLine.hidden = true;
  const id = state.job?.id;
  if (!id || images.length === 0) return;
  const data = new FormData();
  images.forEach((file, index) => data.append(`image${index}`, file, file.name));
  const answer = await api.predict(id, data);
  if (!answer.ok) {
    showError(errorLine, answer.body.error);
    return;
  }
  $('predictions').prepend(
    ...answer.body.predictions.flatMap((prediction, index) => {
      const image = images[index];
      return image ? [predictionItem(prediction, image)] : [];
    }),
  );
}

/**
 * @param {Prediction} prediction
 * @param {File} image  the upload it is about
 */
function predictionItem(prediction, image) {
  const explanation = prediction.explanation;
  return element(
    'li',
    { 'data-testid': 'prediction', 'data-label': String(prediction.label), 'data-class-name': prediction.className },
    element(
      'figure',
      {},
      element('img', { src: URL.createObjectURL(image), alt: image.name }),
      element('figcaption', { text: 'uploaded' }),
    ),
    ...(explanation
      ? [
          element(
            'figure',
            {},
            element('img', { src: explanation.input, alt: 'what the model saw', 'data-testid': 'model-input' }),
            element('figcaption', { 'data-testid': 'preprocessing', text: describePreprocessing(explanation) }),
          ),
        ]
      : []),
    element(
      'div',
      {},
      element('div', {
        className: 'best',
        'data-testid': 'prediction-top',
        text: `${prediction.className} (${percent(prediction.probability)})`,
      }),
      ...(prediction.blank
        ? [
            element('div', {
              className: 'error',
              'data-testid': 'prediction-blank',
              text: 'blank image: this is a guess',
            }),
          ]
        : []),
      element(
        'ol',
        {},
        ...prediction.top.map((entry) => element('li', { text: `${entry.className}: ${percent(entry.probability)}` })),
      ),
    ),
  );
}

/** Saves the model zip under the name the server gives it. */
async function downloadModel() {
  const errorLine = $('predict-error');
  errorLine.hidden = true;
  const id = state.job?.id;
  if (!id) return;
  try {
    const { blob, name } = await api.downloadModel(id);
    const link = element('a', { href: URL.createObjectURL(blob), download: name });
    document.body.append(link);
    link.click();
    link.remove();
  } catch (error) {
    showError(errorLine, `the model could not be downloaded: ${error instanceof Error ? error.message : error}`);
  }
}
