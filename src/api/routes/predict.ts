import type { MultipartFile } from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { errorBody } from '../../contract/errors.ts';
import { jobIdParams } from '../../contract/job.ts';
import { imageMediaTypes, predictQuery, predictResponse } from '../../contract/predict.ts';
import { assertCompletedJob, usingArtifact } from '../completed-job.ts';
import { HttpError, multipartFailure } from '../http-error.ts';
import type { ApiDependencies } from '../dependencies.ts';

export const predictRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (app, { store, predictor, config }) => {
  // In this plugin's scope only: a raw image arrives as a Buffer, multipart bodies are streamed in
  // the handler, and any other media type (JSON and text included) is refused with 415.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser([...imageMediaTypes], { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.post(
    '/jobs/:id/predict',
    {
      // Bounds a raw image; multipart bodies are streamed and bounded per file by @fastify/multipart.
      bodyLimit: config.MAX_UPLOAD_BYTES,
      schema: {
        summary: 'Classify images with the model a completed job trained',
        description: `Body: multipart/form-data with one or more image files (any field name), or one raw image with Content-Type ${imageMediaTypes.join(' | ')}.`,
        params: jobIdParams,
        querystring: predictQuery,
        response: {
          200: predictResponse,
          400: errorBody,
          401: errorBody,
          404: errorBody,
          429: errorBody,
          409: errorBody,
          413: errorBody,
          415: errorBody,
          503: errorBody,
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      await assertCompletedJob(store, request, id, 'predictions need');
      const uploads = await readUploads(request, config.MAX_UPLOAD_FILES);
      if (uploads.length === 0)
        throw new HttpError(400, 'send one or more image files (multipart/form-data) or one raw image body');
      const { preprocess, explain } = request.query;
      const predictions = await usingArtifact(request, id, () =>
        predictor.predict(id, uploads, { preprocess, explain: explain === '1' || explain === 'true' }),
      );
      return { predictions };
    },
  );
};

async function readUploads(request: FastifyRequest, maxFiles: number): Promise<Buffer[]> {
  if (!request.isMultipart()) return Buffer.isBuffer(request.body) ? [request.body] : [];
  const uploads: Buffer[] = [];
  try {
    for await (const part of request.parts()) {
      if (part.type !== 'file') continue;
      assertImageType(part, uploads.length + 1);
      uploads.push(await part.toBuffer());
    }
  } catch (error) {
    throw multipartFailure(error, `too many files: send at most ${maxFiles} files in one request`);
  }
  return uploads;
}

/** Clients that don't know a file's type send application/octet-stream; its bytes decide then. */
function assertImageType(part: MultipartFile, position: number): void {
  const type = part.mimetype.toLowerCase();
  if (type.startsWith('image/') || type === 'application/octet-stream') return;
  throw new HttpError(
    415,
    `file ${position} (${part.filename || part.fieldname}) has media type ${type}, not an image`,
  );
}
