import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorBody } from '../../contract/errors.ts';
import { jobIdParams } from '../../contract/job.ts';
import { modelArchive } from '../../models/model-archive.ts';
import { assertCompletedJob, usingArtifact } from '../completed-job.ts';
import type { ApiDependencies } from '../dependencies.ts';
import { jobNotFound } from '../http-error.ts';

export const modelDownloadRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (app, { store, config }) => {
  app.get(
    '/jobs/:id/model',
    {
      schema: {
        summary: 'Download the model a completed job trained, as a zip for stock TensorFlow.js',
        description:
          'application/zip: model.json and weights.bin (TensorFlow.js layers format), metadata.json (class names, input shape, normalisation, preprocessing), ' +
          'custom-layers.mjs (registers the layers TensorFlow.js lacks) and a README.',
        params: jobIdParams,
        // A zip: sent as bytes, never serialised; the OpenAPI document describes it (openapi.ts).
        response: {
          200: z.custom<Buffer>((value) => Buffer.isBuffer(value)),
          401: errorBody,
          404: errorBody,
          409: errorBody,
          429: errorBody,
          503: errorBody,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      await assertCompletedJob(store, request, id, 'the model download needs');
      const job = await store.get(id);
      if (!job) throw jobNotFound(id);
      const archive = await usingArtifact(request, id, () => modelArchive(config.ARTIFACTS_DIR, id, job.request.model));
      return reply
        .header('content-type', 'application/zip')
        .header('content-disposition', `attachment; filename="${job.request.model}-${job.request.dataset}-${id}.zip"`)
        .send(archive);
    },
  );
};
