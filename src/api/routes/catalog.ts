import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { health, modelCatalog } from '../../contract/catalog.ts';
import { errorBody } from '../../contract/errors.ts';
import { datasetNames, modelNames, type DatasetName } from '../../contract/names.ts';
import { datasets } from '../../datasets/index.ts';
// The models' facts, not the models: answering GET /models builds no network and loads no TensorFlow.js.
import { basesOf } from '../../bases/built-in.ts';
import { modelFacts } from '../../models/catalog.ts';
import { parameterCount } from '../../models/parameter-count.ts';
import type { ApiDependencies } from '../dependencies.ts';

/** Answers every route behind API keys and the rate limit may give. */
const guarded = { 401: errorBody, 429: errorBody };

export const catalogRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (app, { redis, backend, device }) => {
  app.get(
    '/models',
    {
      schema: {
        summary: 'The models, their parameter counts per data set and their pretrained bases',
        response: { 200: modelCatalog, ...guarded },
      },
    },
    async () => ({
      models: modelNames.map((name) => {
        const model = modelFacts[name];
        return {
          name,
          description: model.description,
          defaultWeightDecay: model.defaultWeightDecay,
          params: Object.fromEntries(
            datasetNames.map((dataset) => [dataset, parameterCount(model, datasets[dataset])]),
          ) as Record<DatasetName, number>,
          bases: basesOf(name).map(({ name: base, description, source, lastLayer, inputRange }) => ({
            name: base,
            description,
            source,
            lastLayer,
            inputRange: [...inputRange] as [number, number],
          })),
        };
      }),
    }),
  );

  app.get(
    '/health',
    {
      schema: {
        summary: 'Whether the service and Redis are up',
        response: { 200: health, 503: health.extend({ error: errorBody.shape.error }) },
      },
    },
    async (_request, reply) => {
      const redisUp = await redis.ping().then(
        (answer) => answer === 'PONG',
        () => false,
      );
      if (redisUp) return { status: 'ok' as const, redis: 'up' as const, backend, device };
      return reply.code(503).send({
        status: 'unavailable' as const,
        redis: 'down' as const,
        backend,
        device,
        error: 'Redis is unreachable',
      });
    },
  );
};
