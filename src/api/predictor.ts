import * as tf from '@tensorflow/tfjs-core';
import type { Prediction } from '../contract/predict.ts';
import { normalisedImages } from '../datasets/normalise.ts';
import { loadArtifact, type LoadedArtifact } from '../models/artifact.ts';
import { toModelInput } from './image-input.ts';

const topCount = 5;

/**
 * Classifies uploads with trained models, keeping the most recently used few in memory: loading
 * a model costs far more than a prediction.
 */
export class Predictor {
  private readonly cache = new Map<string, Promise<LoadedArtifact>>();

  constructor(
    private readonly artifactsDir: string,
    private readonly cacheSize: number,
    private readonly maxPixels: number,
  ) {}

  async predict(jobId: string, uploads: readonly Buffer[]): Promise<Prediction[]> {
    const { model, metadata } = await this.model(jobId);
    const inputs = await Promise.all(
      uploads.map((upload, index) => toModelInput(upload, metadata.shape, this.maxPixels, uploads.length > 1 ? `file ${index + 1}` : 'the upload')),
    );
    const joined = new Uint8Array(inputs.reduce((size, input) => size + input.byteLength, 0));
    inputs.reduce((offset, input) => (joined.set(input, offset), offset + input.byteLength), 0);
    const probabilities = tf.tidy(() => tf.softmax(model.predict(normalisedImages(joined, inputs.length, metadata.shape)) as tf.Tensor2D));
    const rows = (await probabilities.array()) as number[][];
    probabilities.dispose();
    return rows.map((row) => {
      const ranked = row
        .map((probability, label) => ({ label, className: metadata.classNames[label] ?? String(label), probability }))
        .sort((a, b) => b.probability - a.probability)
        .slice(0, topCount);
      const best = ranked[0] as (typeof ranked)[number];
      return { ...best, top: ranked };
    });
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
      evicted.then(({ model }) => model.dispose(), () => undefined);
    }
    return loading;
  }

  dispose(): void {
    for (const loading of this.cache.values()) loading.then(({ model }) => model.dispose(), () => undefined);
    this.cache.clear();
  }
}
