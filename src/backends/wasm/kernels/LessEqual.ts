/** LessEqual override for a float32 tensor against one value (../value-comparison.ts). */
import { LessEqual } from '@tensorflow/tfjs-core';
import { valueComparisonOverride } from '../value-comparison.ts';

export const lessEqualOverride = valueComparisonOverride(LessEqual, (kernels) => kernels.less_equal_value);
