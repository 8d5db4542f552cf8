import { z } from 'zod';

const classScore = z.object({
  label: z.number().int(),
  className: z.string(),
  probability: z.number().min(0).max(1),
});

export const prediction = classScore
  .extend({ top: z.array(classScore).meta({ description: 'the five most probable classes, most probable first' }) })
  .meta({ id: 'Prediction' });
export type Prediction = z.infer<typeof prediction>;

export const predictResponse = z
  .object({ predictions: z.array(prediction).meta({ description: 'one per image, in upload order' }) })
  .meta({ id: 'PredictResponse' });
export type PredictResponse = z.infer<typeof predictResponse>;

/** Media types accepted as a raw predict body, besides multipart/form-data. */
export const imageMediaTypes = ['image/png', 'image/jpeg', 'image/webp', 'image/gif'] as const;
