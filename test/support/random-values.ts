import { SeededRandom } from '../../src/random.ts';

/** Deterministic values in [-1, 1), independent of any backend, so every backend sees the same inputs. */
export function randomValues(size: number, seed: number): Float32Array {
  const random = new SeededRandom(seed);
  return Float32Array.from({ length: size }, () => random.next() * 2 - 1);
}
