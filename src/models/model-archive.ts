import { readFile } from 'node:fs/promises';
import type * as tf from '@tensorflow/tfjs-core';
import { version_layers } from '@tensorflow/tfjs-layers';
import type { ImageKind } from '../contract/names.ts';
import { zipArchive } from '../storage/zip.ts';
import { readArtifact, type ArtifactMetadata } from './artifact.ts';

/** The archive's files; the README inside and docs/guides/jobs.md name them. */
export const archiveFiles = {
  model: 'model.json',
  weights: 'weights.bin',
  metadata: 'metadata.json',
  customLayers: 'custom-layers.mjs',
  readme: 'README.md',
} as const;

const preprocessingSteps: Readonly<Record<ImageKind, string>> = {
  strokes:
    'MNIST-like: bright strokes on black. Invert a picture with a light background, keep only the ink, crop to it, ' +
    'fit it into a 20×20 box keeping its aspect ratio, and place it in the 28×28 image with its centre of mass at the centre.',
  natural:
    "A photograph: take the largest centred part with the model's aspect ratio, then resize it to the model's size.",
};

/**
 * A completed job's trained model as one zip, for use without this service: TensorFlow.js layers
 * format (model.json and its weights, loaded by stock tf.loadLayersModel), metadata.json (class
 * names and how to prepare an image), the module registering the custom layers, and a README.
 */
export async function modelArchive(artifactsDir: string, jobId: string, model: string): Promise<Buffer> {
  const { metadata, modelTopology, weightSpecs, weights } = await readArtifact(artifactsDir, jobId);
  const modelJson: tf.io.ModelJSON = {
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${version_layers}`,
    convertedBy: null,
    modelTopology,
    weightsManifest: [{ paths: [archiveFiles.weights], weights: weightSpecs }],
  };
  const customLayers = await readFile(new URL('./custom-layers.mjs', import.meta.url));
  return zipArchive([
    { name: archiveFiles.model, data: Buffer.from(JSON.stringify(modelJson)) },
    // Trained float32 weights deflate by under a tenth (LeNet-5's by 8%), and AlexNet's 227 MB would take seconds.
    { name: archiveFiles.weights, data: weights, compress: false },
    {
      name: archiveFiles.metadata,
      data: Buffer.from(`${JSON.stringify(archiveMetadata(metadata, model), null, 2)}\n`),
    },
    { name: archiveFiles.customLayers, data: customLayers },
    { name: archiveFiles.readme, data: Buffer.from(readme(metadata, model)) },
  ]);
}

function archiveMetadata(metadata: ArtifactMetadata, model: string) {
  const { height, width, channels } = metadata.shape;
  return {
    jobId: metadata.jobId,
    model,
    dataset: metadata.dataset,
    classNames: metadata.classNames,
    input: {
      shape: [null, height, width, channels],
      layout: 'NHWC, channels grey (1) or RGB (3)',
      normalisation: { formula: '(x / 255 - 0.5) / 0.5', from: [0, 255], to: [-1, 1] },
      preprocess: metadata.imageKind,
      preprocessSteps: preprocessingSteps[metadata.imageKind],
    },
    output: 'one logit per class, in the order of classNames: apply softmax for probabilities',
  };
}

function readme(metadata: ArtifactMetadata, model: string): string {
  const { height, width, channels } = metadata.shape;
  return `# ${model} trained on ${metadata.dataset} (job ${metadata.jobId})

- \`${archiveFiles.model}\`, \`${archiveFiles.weights}\`: the model in TensorFlow.js layers format.
- \`${archiveFiles.metadata}\`: class names and the input the model expects.
- \`${archiveFiles.customLayers}\`: registers the layers TensorFlow.js lacks (adaptive average pooling,
  seeded dropout); needed for AlexNet, harmless otherwise.

Input: float32 [n, ${height}, ${width}, ${channels}] (NHWC), each byte x of the image as (x / 255 - 0.5) / 0.5.
Prepare images as the service does (preprocess \`${metadata.imageKind}\`): ${preprocessingSteps[metadata.imageKind]}
Output: ${metadata.classNames.length} logits; softmax gives the probabilities of ${metadata.classNames.slice(0, 3).join(', ')}, ….

\`\`\`js
import * as tf from '@tensorflow/tfjs';
import { registerCustomLayers } from './${archiveFiles.customLayers}';

registerCustomLayers(tf);
const model = await tf.loadLayersModel('${archiveFiles.model}'); // a URL beside the weights
const { classNames } = await (await fetch('${archiveFiles.metadata}')).json();
const pixels = tf.browser.fromPixels(canvas, ${channels}).resizeBilinear([${height}, ${width}]); // your image
const input = pixels.toFloat().div(255).sub(0.5).div(0.5).expandDims(0);
const probabilities = tf.softmax(model.predict(input)).dataSync();
console.log(classNames[probabilities.indexOf(Math.max(...probabilities))]);
\`\`\`
`;
}
