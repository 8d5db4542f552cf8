import { z } from 'zod';
import { imageKinds } from './names.ts';

const classScore = z.object({
  label: z.number().int(),
  className: z.string(),
  probability: z.number().min(0).max(1),
});

/** `auto`: as the training images' kind says; `none`: stretched onto the model's size; or a kind by name. */
const preprocessModes = ['auto', 'none', ...imageKinds] as const;
export type PreprocessRequest = (typeof preprocessModes)[number];

export const predictQuery = z.strictObject({
  preprocess: z
    .enum(preprocessModes)
    .default('auto')
    .meta({
      description:
        "how each upload is brought to the training images' form: auto (the data set's kind), none (a plain resize onto the model's size), " +
        'strokes (MNIST-like: ink found on light or dark paper, fitted into a 20×20 box, centred by mass) or natural (centre crop, then resize)',
    }),
  explain: z
    .enum(['0', '1', 'false', 'true'])
    .default('0')
    .meta({ description: '1 or true: each prediction also says what the model saw (explanation)' }),
});

const cropBox = z
  .object({ left: z.number().int(), top: z.number().int(), width: z.number().int(), height: z.number().int() })
  .meta({ id: 'CropBox', description: 'pixels of the upload, upright as its EXIF orientation says' });

const explanation = z
  .object({
    preprocess: z
      .enum(['none', ...imageKinds])
      .meta({ description: "the preprocessing applied (auto resolved to the data set's kind)" }),
    inverted: z.boolean().meta({ description: 'the background was light and was inverted to dark' }),
    crop: cropBox
      .nullable()
      .meta({ description: 'the part of the upload the model saw; null: all of it (or nothing, when blank)' }),
    input: z.string().meta({ description: "the model's input, as a data:image/png;base64 URL at the model's size" }),
  })
  .meta({ id: 'PredictionExplanation' });
export type Explanation = z.infer<typeof explanation>;

const prediction = classScore
  .extend({
    top: z.array(classScore).meta({ description: 'the five most probable classes, most probable first' }),
    blank: z.boolean().meta({
      description: 'the image is blank or almost blank (or no ink stands out from its paper): the answer is a guess',
    }),
    explanation: explanation.optional().meta({ description: 'with explain=1 only' }),
  })
  .meta({ id: 'Prediction' });
export type Prediction = z.infer<typeof prediction>;

export const predictResponse = z
  .object({ predictions: z.array(prediction).meta({ description: 'one per image, in upload order' }) })
  .meta({ id: 'PredictResponse' });
export type PredictResponse = z.infer<typeof predictResponse>;

/** Media types accepted as a raw predict body, besides multipart/form-data. */
export const imageMediaTypes = ['image/png', 'image/jpeg', 'image/webp', 'image/gif'] as const;
