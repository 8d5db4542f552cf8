/** GreaterEqual override for a float32 tensor against one value (../value-comparison.ts). */
import { GreaterEqual } from '@tensorflow/tfjs-core';
import { valueComparisonOverride } from '../value-comparison.ts';

export const greaterEqualOverride = valueComparisonOverride(GreaterEqual, (kernels) => kernels.greater_equal_value);
