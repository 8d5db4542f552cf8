import { z } from 'zod';
import { modelNames } from './names.ts';

/**
 * POST /bases fields: form fields with multipart, query parameters with a raw zip (both arrive as
 * strings). Every one optional.
 */
export const baseUploadFields = z.strictObject({
  name: z
    .string()
    .trim()
    .min(1)
    .max(100)
    .optional()
    .meta({ description: "what lists show; default: the archive's file name, else 'base'" }),
});
// No schema id: @fastify/swagger can't resolve a query string given as a reference.
export type BaseUploadFields = z.output<typeof baseUploadFields>;

/** A base a client uploaded: a pretrained TF.js layers model that one of this server's networks can start from. */
export const base = z
  .object({
    id: z.string().meta({ description: 'what a job names to start from it' }),
    name: z.string(),
    network: z.enum(modelNames).meta({
      description:
        'the network whose every layer but the classifier the base holds, same names and weight shapes: a job starting from it trains this model',
    }),
    input: z
      .object({ height: z.number().int(), width: z.number().int(), channels: z.number().int() })
      .meta({ description: "the base's image input, [null, height, width, channels] in its model.json" }),
    classes: z.number().int().nullable().meta({
      description:
        "units of the base's classifier layer (the network's last): a job with as many classes starts from it too, others get a new classifier; null: the base has none",
    }),
    coveredLayers: z.array(z.string()).meta({
      description:
        "the network's layers (with weights) the base gives weights for, by name; layers the network leaves unnamed as conv2d, conv2d_1, … by class and order",
    }),
    bytes: z.number().int().meta({
      description:
        "bytes it occupies on disk (model.json and weights), counted against the client's storage limit with its data sets",
    }),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'Base' });
export type Base = z.infer<typeof base>;

export const baseList = z
  .object({ bases: z.array(base).meta({ description: "the client's own bases, newest first" }) })
  .meta({ id: 'BaseList' });
export type BaseList = z.infer<typeof baseList>;

/** Any id is looked up: one that names no base of the client's is a 404. */
export const baseIdParams = z.strictObject({ id: z.string().min(1).max(100) });
