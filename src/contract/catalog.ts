import { z } from 'zod';
import { uploadedDataset } from './datasets.ts';
import { deviceDescription } from './device.ts';
import { builtInBaseNames, datasetNames, imageKinds, modelNames } from './names.ts';

const baseInfo = z
  .object({
    name: z.enum(builtInBaseNames).meta({ description: 'what initFrom takes to start from this base' }),
    description: z.string(),
    source: z.string().meta({ description: 'where its weights come from, their licence and form' }),
    lastLayer: z
      .string()
      .meta({ description: 'the last layer it holds weights for; the layers after it start afresh' }),
    inputRange: z
      .tuple([z.number(), z.number()])
      .meta({ description: "the range its first layer was trained on; the network's first layer maps images to it" }),
  })
  .meta({ id: 'BaseInfo' });

const modelInfo = z
  .object({
    name: z.enum(modelNames),
    description: z.string(),
    defaultWeightDecay: z.number(),
    params: z
      .record(z.enum(datasetNames), z.number().int())
      .meta({ description: 'trainable parameter count when trained on each data set' }),
    bases: z
      .array(baseInfo)
      .meta({ description: 'the pretrained bases built into this server that it can start from' }),
  })
  .meta({ id: 'ModelInfo' });
export const modelCatalog = z.object({ models: z.array(modelInfo) }).meta({ id: 'ModelCatalog' });
export type ModelCatalog = z.infer<typeof modelCatalog>;

const datasetInfo = z
  .object({
    id: z
      .string()
      .meta({ description: "what POST /jobs takes as dataset: a built-in data set's name, an uploaded one's id" }),
    name: z.string(),
    builtIn: z.boolean().meta({ description: 'false for a data set a client uploaded (POST /datasets)' }),
    shape: z.object({ height: z.number().int(), width: z.number().int(), channels: z.number().int() }),
    classNames: z.array(z.string()),
    trainSize: z.number().int(),
    testSize: z.number().int(),
    augmentByDefault: z.boolean(),
    imageKind: z
      .enum(imageKinds)
      .meta({ description: 'how predict prepares uploads by default: strokes (MNIST-like) or natural (photographs)' }),
    availableLocally: z.boolean().meta({ description: 'true when training needs no download' }),
  })
  .meta({ id: 'DatasetInfo' });
export const datasetCatalog = z
  .object({
    datasets: z.array(datasetInfo).meta({
      description: "every data set a job can train on now: the built-in ones and the client's own that are ready",
    }),
    uploads: z
      .array(uploadedDataset.omit({ report: true }))
      .meta({ description: "the client's own data sets that are processing or failed, newest first" }),
  })
  .meta({ id: 'DatasetCatalog' });
export type DatasetCatalog = z.infer<typeof datasetCatalog>;

export const health = z
  .object({
    status: z.enum(['ok', 'unavailable']),
    redis: z.enum(['up', 'down']),
    backend: z.string().meta({ description: 'the TensorFlow.js backend this process runs models on' }),
    device: deviceDescription.meta({
      description: 'what that backend computes on: the GPU adapter for webgpu, else the CPU',
    }),
  })
  .meta({ id: 'Health' });
export type Health = z.infer<typeof health>;
