import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { archiveFormatOfFile } from '../../archives/archive.ts';
import { datasetCatalog } from '../../contract/catalog.ts';
import {
  archiveMediaTypes,
  datasetIdParams,
  datasetUploadOptions,
  uploadedDataset,
  type DatasetUploadOptions,
  type UploadedDataset,
} from '../../contract/datasets.ts';
import { errorBody } from '../../contract/errors.ts';
import { datasetNames } from '../../contract/names.ts';
import { deleted } from '../../contract/no-content.ts';
import { datasets } from '../../datasets/index.ts';
import { datasetOptions } from '../../datasets/load-options.ts';
import { datasetFolder } from '../../datasets/uploaded/stored.ts';
import { enqueueDataset } from '../../queue/dataset-queue.ts';
import { datasetOwnerOf, mayUseDataset } from '../dataset-facts.ts';
import type { ApiDependencies } from '../dependencies.ts';
import { receiveArchive } from '../archive-upload.ts';
import { HttpError } from '../http-error.ts';

const guarded = { 401: errorBody, 429: errorBody, 503: errorBody };
const uploadsFolder = 'uploads';

const uploadDescription = `Uploads a data set: an archive (zip, tar or tar.gz) laid out as \`<class>/<image>\`, or with \`train/\`, \`test/\` (and optionally \`val/\`) folders each holding class folders.
Body: multipart/form-data with the archive as a file (any field name) and the options as form fields, or the raw archive with Content-Type ${archiveMediaTypes.join(' | ')} (or application/octet-stream) and the options as query parameters.
Answers 202 at once: a worker processes it (state \`processing\`, with progress), then it is \`ready\` (with its report) or \`failed\` (with error.message). Train on it with POST /jobs {"dataset": "<id>"}.`;

const datasetNotFound = (id: string) =>
  new HttpError(404, `no uploaded data set with id ${id} (GET /datasets lists yours and the built-in ones)`);

/** POST /datasets, GET /datasets, GET and DELETE /datasets/:id: the API stores uploads and records; workers process them. */
export const datasetRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (
  app,
  { datasetStore, datasetQueue, config },
) => {
  // In this plugin's scope only: a raw archive arrives as the request stream; JSON or text bodies are refused with 415.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser([...archiveMediaTypes, 'application/octet-stream'], (_request, payload, done) =>
    done(null, payload),
  );
  const uploads = path.join(config.DATASETS_DIR, uploadsFolder);

  const ownDataset = async (request: FastifyRequest, id: string): Promise<UploadedDataset> => {
    const found = await datasetStore.get(id);
    if (!found || !mayUseDataset(request, await datasetStore.owner(id))) throw datasetNotFound(id);
    return found;
  };

  app.post(
    '/datasets',
    {
      schema: {
        summary: 'Upload your own images as a data set (an archive of class folders)',
        description: uploadDescription,
        querystring: datasetUploadOptions,
        response: { 202: uploadedDataset, 400: errorBody, 413: errorBody, 415: errorBody, ...guarded },
      },
    },
    async (request, reply) => {
      const owner = datasetOwnerOf(request);
      const busy = () =>
        new HttpError(
          429,
          `you have ${config.MAX_DATASETS_PROCESSING_PER_CLIENT} data set upload(s) processing, the most one client may have; wait until it is ready or failed`,
        );
      // Checked again, atomically, when it is recorded: this only spares a refused upload its transfer.
      if ((await datasetStore.processingCount(owner)) >= config.MAX_DATASETS_PROCESSING_PER_CLIENT) throw busy();
      const id = randomUUID();
      await mkdir(uploads, { recursive: true });
      const partial = path.join(uploads, `${id}.part`);
      try {
        const received = await receiveArchive(request, partial, {
          maxBytes: config.MAX_DATASET_UPLOAD_BYTES,
          setting: 'MAX_DATASET_UPLOAD_BYTES',
        });
        const options = parseOptions(received.fields);
        const { size } = await stat(partial);
        if (size === 0) throw new HttpError(400, 'the upload is empty: send a zip, tar or tar.gz archive');
        if ((await archiveFormatOfFile(partial)) === null)
          throw new HttpError(415, 'the upload is not a zip, tar or tar.gz archive');
        const name = options.name ?? received.fileName ?? 'dataset';
        const created = await datasetStore.create(
          id,
          { name, options, archiveBytes: size, createdAt: new Date(), owner },
          config.MAX_DATASETS_PROCESSING_PER_CLIENT,
        );
        if (created === 'busy') throw busy();
        await rename(partial, path.join(uploads, id));
      } catch (error) {
        await rm(partial, { force: true });
        throw error;
      }
      await enqueueDataset(datasetQueue, id);
      request.log.info({ datasetId: id }, 'data set uploaded; queued for processing');
      return reply
        .code(202)
        .header('location', `/datasets/${id}`)
        .send(await ownDataset(request, id));
    },
  );

  const loadOptions = datasetOptions(config, () => undefined);
  app.get(
    '/datasets',
    { schema: { summary: 'The data sets: built-in ones and your own', response: { 200: datasetCatalog, ...guarded } } },
    async (request) => {
      const own = await datasetStore.list(datasetOwnerOf(request));
      const builtIn = await Promise.all(
        datasetNames.map(async (name) => {
          const source = datasets[name];
          return {
            id: name,
            name,
            builtIn: true,
            shape: source.shape,
            classNames: [...source.classNames],
            trainSize: source.trainSize,
            testSize: source.testSize,
            augmentByDefault: source.augmentByDefault,
            imageKind: source.imageKind,
            availableLocally: await source.isAvailableLocally(loadOptions[name]),
          };
        }),
      );
      const ready = own.flatMap(({ id, name, report }) =>
        report
          ? [
              {
                id,
                name,
                builtIn: false,
                shape: report.shape,
                classNames: report.classNames,
                trainSize: report.splits.train.images,
                testSize: report.splits.test.images,
                augmentByDefault: false,
                imageKind: report.imageKind,
                availableLocally: true,
              },
            ]
          : [],
      );
      const others = own.filter((dataset) => dataset.state !== 'ready').map(({ report: _report, ...rest }) => rest);
      return { datasets: [...builtIn, ...ready], uploads: others };
    },
  );

  app.get(
    '/datasets/:id',
    {
      schema: {
        summary:
          'An uploaded data set: its state, progress and, once ready, its report (classes, counts, skipped files, warnings)',
        params: datasetIdParams,
        response: { 200: uploadedDataset, 404: errorBody, ...guarded },
      },
    },
    async (request) => ownDataset(request, request.params.id),
  );

  app.delete(
    '/datasets/:id',
    {
      schema: {
        summary:
          'Delete an uploaded data set and its files (409 while it processes or a queued or running job trains on it)',
        params: datasetIdParams,
        response: { 204: deleted, 404: errorBody, 409: errorBody, ...guarded },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      await ownDataset(request, id);
      const outcome = await datasetStore.remove(id);
      if (outcome.kind === 'missing') throw datasetNotFound(id);
      if (outcome.kind === 'processing')
        throw new HttpError(409, `data set ${id} is still processing; delete it once it is ready or failed`);
      if (outcome.kind === 'inUse')
        throw new HttpError(
          409,
          `data set ${id} is used by job ${outcome.jobId}, which is queued or running; cancel it or wait for it to end`,
        );
      await rm(datasetFolder(config.DATASETS_DIR, id), { recursive: true, force: true });
      request.log.info({ datasetId: id }, 'data set deleted');
      return reply.code(204).send(null);
    },
  );
};

function parseOptions(fields: Record<string, unknown>): DatasetUploadOptions {
  const parsed = datasetUploadOptions.safeParse(fields);
  if (parsed.success) return parsed.data;
  const details = parsed.error.issues.map((issue) => ({
    path: issue.path.join('.') || '(options)',
    message: issue.message,
  }));
  throw new HttpError(
    400,
    `the options are invalid: ${details.map((detail) => `${detail.path}: ${detail.message}`).join('; ')}`,
    details,
  );
}
