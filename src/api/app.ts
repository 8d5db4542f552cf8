import fastifyMultipart from '@fastify/multipart';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { KeyRing, securityPlugin } from './auth.ts';
import type { ApiDependencies } from './dependencies.ts';
import { installErrorHandler } from './error-handler.ts';
import { dashboardPlugin } from '../dashboard/plugin.ts';
import { metricsPlugin } from './metrics.ts';
import { completeOpenApi } from './openapi.ts';
import { baseRoutes } from './routes/bases.ts';
import { catalogRoutes } from './routes/catalog.ts';
import { datasetRoutes } from './routes/datasets.ts';
import { eventRoutes } from './routes/events.ts';
import { experimentRoutes } from './routes/experiments.ts';
import { jobRoutes } from './routes/jobs.ts';
import { modelDownloadRoutes } from './routes/model-download.ts';
import { predictRoutes } from './routes/predict.ts';

/** The HTTP API: every route validated and serialised by the contract's zod schemas. */
export async function buildApp(dependencies: ApiDependencies, logger: Logger): Promise<FastifyInstance> {
  const { config } = dependencies;
  const app = Fastify({ loggerInstance: logger as FastifyBaseLogger, bodyLimit: config.BODY_LIMIT_BYTES });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandler(app, dependencies.redis);

  await app.register(fastifySwagger, {
    openapi: {
      info: {
        title: 'Training-job service',
        description:
          'Trains LeNet-5 and AlexNet on MNIST, CIFAR-10 or your own uploaded images with TensorFlow.js, fine-tunes trained models, and serves predictions.',
        version: '1.0.0',
      },
    },
    transform: jsonSchemaTransform,
    transformObject: completeOpenApi,
  });
  await app.register(fastifyMultipart, {
    limits: {
      fileSize: config.MAX_UPLOAD_BYTES,
      files: config.MAX_UPLOAD_FILES,
      fields: 16,
      parts: config.MAX_UPLOAD_FILES + 16,
    },
  });

  // Before the routes: API keys and the rate limit apply to every route registered after it.
  await app.register(securityPlugin, { ...dependencies, keys: new KeyRing(dependencies.apiKeys) });
  // First: its request-counting hook applies to the routes registered after it.
  await app.register(metricsPlugin, dependencies);
  await app.register(jobRoutes, dependencies);
  await app.register(eventRoutes, dependencies);
  await app.register(experimentRoutes, dependencies);
  await app.register(predictRoutes, dependencies);
  await app.register(modelDownloadRoutes, dependencies);
  await app.register(catalogRoutes, dependencies);
  await app.register(datasetRoutes, dependencies);
  await app.register(baseRoutes, dependencies);
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  await app.register(dashboardPlugin);
  return app;
}
