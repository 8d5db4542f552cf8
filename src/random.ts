/**
 * A small seeded generator (mulberry32): shuffling and augmentation must repeat exactly for a
 * given job seed, which Math.random can't do.
 */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = foldTo32Bits(seed);
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, bound). */
  below(bound: number): number {
    return Math.floor(this.next() * bound);
  }

  /** A fresh 31-bit seed, for handing to TensorFlow.js ops that take one. */
  seed(): number {
    return this.below(0x7fffffff);
  }

  /** The numbers 0..count-1 in a random order (Fisher–Yates). */
  permutation(count: number): Uint32Array {
    const order = new Uint32Array(count);
    for (let i = 0; i < count; i++) order[i] = i;
    for (let i = count - 1; i > 0; i--) {
      const j = this.below(i + 1);
      const swap = order[i] as number;
      order[i] = order[j] as number;
      order[j] = swap;
    }
    return order;
  }

  /** The generator's position, so a checkpoint can resume the exact sequence. */
  get position(): number {
    return this.state;
  }

  /**
   * The generator of one sample of a batch: a sequence of its own for each (seed, sample), so
   * whoever draws for samples 32..63 of a batch (a replica training that slice) draws what a
   * single thread drawing the whole batch would.
   */
  static forSample(seed: number, sample: number): SeededRandom {
    // murmur3's finaliser over the two: neighbouring samples start far apart in mulberry32's cycle.
    let h = (seed ^ Math.imul(sample + 1, 0x9e3779b1)) | 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return SeededRandom.fromPosition(h ^ (h >>> 16));
  }

  /** A generator that continues the sequence of the one whose `position` this was. */
  static fromPosition(position: number): SeededRandom {
    const random = new SeededRandom(0);
    random.state = position | 0;
    return random;
  }
}

/** Any safe integer (job seeds may be negative or above 2^32) folded into 32 bits without losing its high part. */
function foldTo32Bits(seed: number): number {
  const high = Math.floor(seed / 4294967296);
  return (seed ^ Math.imul(high, 0x9e3779b1)) | 0;
}

export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}
