import type { ImageKind } from '../contract/names.ts';

/** The shape of one image, height × width × channels (NHWC, as TensorFlow.js lays it out). */
export interface ImageShape {
  readonly height: number;
  readonly width: number;
  readonly channels: number;
}

/**
 * One split of a data set, held as raw bytes: normalising to float32 happens per batch, so a
 * data set costs one byte per pixel in memory, not four.
 */
export interface ImageSplit {
  /** `count` images, each `height * width * channels` bytes, row-major HWC. */
  readonly images: Uint8Array;
  /** One class index per image. */
  readonly labels: Uint8Array;
  readonly count: number;
}

export interface Dataset {
  readonly name: string;
  readonly shape: ImageShape;
  readonly classNames: readonly string[];
  /** Decides how predict prepares uploads for a model trained on it (see imageKinds). */
  readonly imageKind: ImageKind;
  readonly train: ImageSplit;
  readonly test: ImageSplit;
  /** Its own validation images, when it has them (an upload's val/ folder). */
  readonly val?: ImageSplit;
}

export interface DatasetLoadOptions {
  /** Where downloads are cached and where a user may put the files (`DATA_DIR/<name>/`). */
  readonly dataDir: string;
  /** Where to download from when no local copy exists: a mirror's base URL or the archive's URL, as the data set defines. */
  readonly mirrorUrl?: string;
  /** A file or folder the user named for this data set (e.g. CIFAR10_PATH), searched before DATA_DIR. */
  readonly userPath?: string;
  /** Called with one human-readable line per step (found, downloading, verified…). */
  readonly onStatus?: (line: string) => void;
}

/** What a data set module exports: its fixed facts and how to load it. */
export interface DatasetSource {
  readonly name: string;
  readonly shape: ImageShape;
  readonly classNames: readonly string[];
  readonly imageKind: ImageKind;
  readonly trainSize: number;
  readonly testSize: number;
  /** Whether jobs augment training images unless they say otherwise (the notebook did for CIFAR-10 only). */
  readonly augmentByDefault: boolean;
  /** True when load() with these options would find the files without a download. */
  isAvailableLocally(options: Pick<DatasetLoadOptions, 'dataDir' | 'userPath'>): Promise<boolean>;
  load(options: DatasetLoadOptions): Promise<Dataset>;
}

/** A data set file that is missing, truncated or corrupt; the message names the file and the fix. */
export class DatasetError extends Error {
  override readonly name = 'DatasetError';
}
