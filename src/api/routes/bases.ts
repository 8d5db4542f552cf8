import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ArchiveError } from '../../archives/archive.ts';
import { BaseError } from '../../bases/base-error.ts';
import { checkBaseArchive, type CheckedBase } from '../../bases/check-base.ts';
import { uploadsFolder } from '../../bases/orphan-folders.ts';
import { removeStoredBase, storeBase } from '../../bases/stored-base.ts';
import {
  base,
  baseIdParams,
  baseList,
  baseUploadFields,
  type Base,
  type BaseUploadFields,
} from '../../contract/bases.ts';
import { archiveMediaTypes } from '../../contract/datasets.ts';
import { errorBody } from '../../contract/errors.ts';
import { deleted } from '../../contract/no-content.ts';
import { receiveArchive } from '../archive-upload.ts';
import { datasetOwnerOf, mayUseDataset } from '../dataset-facts.ts';
import type { ApiDependencies } from '../dependencies.ts';
import { HttpError } from '../http-error.ts';

const guarded = { 401: errorBody, 429: errorBody, 503: errorBody };

const uploadDescription = `Uploads a base: a pretrained TensorFlow.js layers model that one of this server's networks can start from (POST /jobs with initFrom: "<id>").
Body: multipart/form-data with the archive as a file (any field name) and the name as a form field, or the raw archive with Content-Type application/zip (or application/octet-stream) and the name as a query parameter.
The archive is the zip GET /jobs/:id/model gives, or the folder tensorflowjs_converter --output_format tfjs_layers_model wrote (model.json and its .bin shards), zipped.
Checked at once: 201 with what it is (its network, input, classes), or 400 (413 for size, 415 for no archive) saying why it can't be used.`;

const baseNotFound = (id: string) => new HttpError(404, `no base with id ${id} (GET /bases lists yours)`);

/** Bases are owned exactly as data sets are: by the uploading client's API key, '' without keys. */
const mayUseBase = mayUseDataset;

/**
 * POST /bases, GET /bases, GET and DELETE /bases/:id. An upload is checked in the request (it is
 * a model, seconds at most, unlike a data set's thousands of images), one at a time per API
 * process, as each holds a model in memory.
 */
export const baseRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (app, { baseStore, config }) => {
  // In this plugin's scope only: a raw archive arrives as the request stream; JSON or text bodies are refused with 415.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser([...archiveMediaTypes, 'application/octet-stream'], (_request, payload, done) =>
    done(null, payload),
  );
  const uploads = path.join(config.BASES_DIR, uploadsFolder);
  const limits = {
    maxEntries: config.MAX_DATASET_FILES,
    maxUnpackedBytes: config.MAX_DATASET_UNPACKED_BYTES,
    maxModelBytes: config.MAX_BASE_UPLOAD_BYTES,
  };
  let checking: Promise<unknown> = Promise.resolve();
  const checkInTurn = (file: string): Promise<CheckedBase> => {
    const turn = checking.then(() => checkBaseArchive(file, limits));
    checking = turn.catch(() => undefined);
    return turn;
  };

  const ownBase = async (request: FastifyRequest, id: string): Promise<Base> => {
    const found = await baseStore.get(id);
    if (!found || !mayUseBase(request, await baseStore.owner(id))) throw baseNotFound(id);
    return found;
  };

  app.post(
    '/bases',
    {
      schema: {
        summary: 'Upload a pretrained model (a TensorFlow.js layers model zip) to start jobs from',
        description: uploadDescription,
        querystring: baseUploadFields,
        response: { 201: base, 400: errorBody, 413: errorBody, 415: errorBody, ...guarded },
      },
    },
    async (request, reply) => {
      const owner = datasetOwnerOf(request);
      const id = randomUUID();
      await mkdir(uploads, { recursive: true });
      const partial = path.join(uploads, `${id}.part`);
      let created: Base;
      try {
        const received = await receiveArchive(request, partial, {
          maxBytes: config.MAX_BASE_UPLOAD_BYTES,
          setting: 'MAX_BASE_UPLOAD_BYTES',
        });
        const fields = parseFields(received.fields);
        const checked = await checkInTurn(partial).catch(refusal);
        const description = await storeBase(
          config.BASES_DIR,
          { id, name: fields.name ?? received.fileName ?? 'base', owner, createdAt: new Date() },
          checked,
        );
        created = {
          id,
          name: description.name,
          network: description.network,
          input: description.input,
          classes: description.classes,
          coveredLayers: description.coveredLayers.map((layer) => layer.name),
          bytes: description.bytes,
          createdAt: description.createdAt,
        };
        const outcome = await baseStore
          .create(created, owner, {
            perOwnerBytes: config.MAX_DATASET_BYTES_PER_CLIENT,
            totalBytes: config.MAX_DATASET_BYTES,
          })
          .catch(async (error: unknown) => {
            await removeStoredBase(config.BASES_DIR, id);
            throw error;
          });
        if (outcome !== 'created') {
          await removeStoredBase(config.BASES_DIR, id);
          const [whose, setting, limit] =
            outcome === 'owner'
              ? ['your data sets and bases', 'MAX_DATASET_BYTES_PER_CLIENT', config.MAX_DATASET_BYTES_PER_CLIENT]
              : ["this server's data sets and bases", 'MAX_DATASET_BYTES', config.MAX_DATASET_BYTES];
          throw new HttpError(
            413,
            `the base takes ${created.bytes} bytes, which would put ${whose} over the storage limit of ${limit} bytes (${setting}); delete data sets or bases you no longer need`,
          );
        }
      } finally {
        await rm(partial, { force: true });
      }
      request.log.info({ baseId: id, network: created.network }, 'base uploaded');
      return reply.code(201).header('location', `/bases/${id}`).send(created);
    },
  );

  app.get(
    '/bases',
    { schema: { summary: 'Your uploaded bases, newest first', response: { 200: baseList, ...guarded } } },
    async (request) => ({ bases: await baseStore.list(datasetOwnerOf(request)) }),
  );

  app.get(
    '/bases/:id',
    {
      schema: {
        summary: 'An uploaded base: its network, input, classes and the layers it gives weights for',
        params: baseIdParams,
        response: { 200: base, 404: errorBody, ...guarded },
      },
    },
    async (request) => ownBase(request, request.params.id),
  );

  app.delete(
    '/bases/:id',
    {
      schema: {
        summary: 'Delete an uploaded base and its files (409 while a queued or running job starts from it)',
        params: baseIdParams,
        response: { 204: deleted, 404: errorBody, 409: errorBody, ...guarded },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      await ownBase(request, id);
      const outcome = await baseStore.remove(id);
      if (outcome.kind === 'missing') throw baseNotFound(id);
      if (outcome.kind === 'inUse')
        throw new HttpError(
          409,
          `base ${id} is used by job ${outcome.jobId}, which is queued or running; cancel it or wait for it to end`,
        );
      await removeStoredBase(config.BASES_DIR, id);
      request.log.info({ baseId: id }, 'base deleted');
      return reply.code(204).send(null);
    },
  );
};

/** A check's refusal as the answer it gets: the archive code's and the checker's errors are the client's to fix. */
function refusal(error: unknown): never {
  if (error instanceof BaseError) throw new HttpError(error.statusCode, error.message);
  if (error instanceof ArchiveError) throw new HttpError(400, error.message);
  throw error;
}

function parseFields(fields: Record<string, unknown>): BaseUploadFields {
  const parsed = baseUploadFields.safeParse(fields);
  if (parsed.success) return parsed.data;
  const details = parsed.error.issues.map((issue) => ({
    path: issue.path.join('.') || '(fields)',
    message: issue.message,
  }));
  throw new HttpError(
    400,
    `the fields are invalid: ${details.map((detail) => `${detail.path}: ${detail.message}`).join('; ')}`,
    details,
  );
}
