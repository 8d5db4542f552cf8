import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import type { Explanation, Prediction, PreprocessRequest } from '../contract/predict.ts';
import { normalisedImages } from '../datasets/normalise.ts';
import { loadArtifact, type LoadedArtifact } from '../models/artifact.ts';
import { ImageError, prepareUpload, type PreparedImage } from '../images/prepare-image.ts';
import { HttpError } from './http-error.ts';
import { ModelCallQueue } from './model-call-queue.ts';

const topCount = 5;

/**
 * Classifies uploads with trained models, keeping the most recently used few in memory: loading
 * a model costs far more than a prediction.
 */
export class Predictor {
  private readonly cache = new Map<string, Promise<LoadedArtifact>>();
  private readonly modelCalls = new ModelCallQueue();

  constructor(
    private readonly artifactsDir: string,
    private readonly cacheSize: number,
    private readonly maxPixels: number,
  ) {}

  /** One prediction per upload, in order, from one call of the model on all of them, in its turn (see ModelCallQueue). */
  async predict(
    jobId: string,
    uploads: readonly Buffer[],
    options: { preprocess: PreprocessRequest; explain: boolean },
  ): Promise<Prediction[]> {
    const { model, metadata } = await this.model(jobId);
    const mode = options.preprocess === 'auto' ? metadata.imageKind : options.preprocess;
    const inputs = await Promise.all(
      uploads.map((upload, index) =>
        prepareUpload(
          upload,
          metadata.shape,
          this.maxPixels,
          uploads.length > 1 ? `file ${index + 1}` : 'the upload',
          mode,
        ).catch((error: unknown) => {
          if (error instanceof ImageError) throw new HttpError(error.reason === 'tooLarge' ? 413 : 400, error.message);
          throw error;
        }),
      ),
    );
    const joined = new Uint8Array(inputs.reduce((size, input) => size + input.pixels.byteLength, 0));
    inputs.reduce((offset, input) => (joined.set(input.pixels, offset), offset + input.pixels.byteLength), 0);
    const rows = await this.modelCalls.inTurn(async () => {
      const probabilities = tf.tidy(() =>
        tf.softmax(model.predict(normalisedImages(joined, inputs.length, metadata.shape)) as tf.Tensor2D),
      );
      try {
        return (await probabilities.array()) as number[][];
      } finally {
        probabilities.dispose();
      }
    });
    return Promise.all(
      rows.map(async (row, index) => {
        const ranked = row
          .map((probability, label) => ({ label, className: metadata.classNames[label] ?? String(label), probability }))
          .sort((a, b) => b.probability - a.probability)
          .slice(0, topCount);
        const best = ranked[0] as (typeof ranked)[number];
        const input = inputs[index] as PreparedImage;
        return {
          ...best,
          top: ranked,
          blank: input.blank,
          ...(options.explain ? { explanation: await explained(input, metadata.shape) } : {}),
        };
      }),
    );
  }

  private model(jobId: string): Promise<LoadedArtifact> {
    const cached = this.cache.get(jobId);
    if (cached) {
      this.cache.delete(jobId);
      this.cache.set(jobId, cached);
      return cached;
    }
    const loading = loadArtifact(this.artifactsDir, jobId);
    loading.catch(() => this.cache.delete(jobId));
    this.cache.set(jobId, loading);
    for (const [evictedId, evicted] of this.cache) {
      if (this.cache.size <= this.cacheSize) break;
      this.cache.delete(evictedId);
      release(evicted);
    }
    return loading;
  }

  /** Drops a job's model from memory (its job was deleted). */
  forget(jobId: string): void {
    const cached = this.cache.get(jobId);
    this.cache.delete(jobId);
    if (cached) release(cached);
  }

  dispose(): void {
    for (const loading of this.cache.values()) release(loading);
    this.cache.clear();
  }
}

/** Frees a model once it has loaded (a load that failed holds nothing). */
function release(loading: Promise<LoadedArtifact>): void {
  loading.then(
    ({ model }) => model.dispose(),
    () => undefined,
  );
}

async function explained(input: PreparedImage, shape: LoadedArtifact['metadata']['shape']): Promise<Explanation> {
  const image = sharp(input.pixels, {
    raw: { width: shape.width, height: shape.height, channels: shape.channels as 1 | 3 },
  });
  // Without the colour space, sharp would write one channel of raw bytes as an RGB PNG.
  const png = await (shape.channels === 1 ? image.toColourspace('b-w') : image).png().toBuffer();
  return {
    preprocess: input.mode,
    inverted: input.inverted,
    crop: input.crop,
    input: `data:image/png;base64,${png.toString('base64')}`,
  };
}
