import type { SwaggerTransformObject } from '@fastify/swagger';
import { jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import type { OpenAPIV3 } from 'openapi-types';
import { archiveMediaTypes } from '../contract/datasets.ts';
import { imageMediaTypes } from '../contract/predict.ts';

const binary: OpenAPIV3.SchemaObject = { type: 'string', format: 'binary' };

/**
 * The OpenAPI document from the routes' zod schemas, plus what no zod schema states: the upload
 * bodies of predict and of a data set's or a base's upload (streamed, so they have no body schema
 * to validate), the zip of the model download and the Location headers of 201 (jobs, experiments,
 * bases) and 202.
 */
export const completeOpenApi: SwaggerTransformObject = (input) => {
  const document = jsonSchemaTransformObject(input) as OpenAPIV3.Document;
  const predict = document.paths['/jobs/{id}/predict']?.post;
  if (predict) {
    predict.requestBody = {
      required: true,
      content: {
        'multipart/form-data': {
          schema: {
            type: 'object',
            additionalProperties: binary,
            description: 'one or more image files, any field names',
          },
        },
        ...Object.fromEntries(imageMediaTypes.map((type) => [type, { schema: binary }])),
      },
    };
  }
  const upload = document.paths['/datasets']?.post;
  if (upload) {
    upload.requestBody = {
      required: true,
      content: {
        'multipart/form-data': {
          schema: {
            type: 'object',
            additionalProperties: true,
            description:
              'the archive as a file part (any field name) and the options (see the query parameters) as fields',
          },
        },
        ...Object.fromEntries(
          [...archiveMediaTypes, 'application/octet-stream'].map((type) => [type, { schema: binary }]),
        ),
      },
    };
    const accepted = upload.responses['202'];
    if (accepted && !('$ref' in accepted))
      accepted.headers = { Location: { description: 'the new data set: /datasets/<id>', schema: { type: 'string' } } };
  }
  const baseUpload = document.paths['/bases']?.post;
  if (baseUpload) {
    baseUpload.requestBody = {
      required: true,
      content: {
        'multipart/form-data': {
          schema: {
            type: 'object',
            additionalProperties: true,
            description: 'the zip as a file part (any field name) and, optionally, name as a field',
          },
        },
        ...Object.fromEntries(
          ['application/zip', 'application/octet-stream'].map((type) => [type, { schema: binary }]),
        ),
      },
    };
  }
  const download = document.paths['/jobs/{id}/model']?.get;
  if (download) {
    download.responses['200'] = {
      description: 'the model as a zip archive (Content-Disposition names the file)',
      content: { 'application/zip': { schema: binary } },
    };
  }
  for (const [path, what] of [
    ['/jobs', 'job'],
    ['/experiments', 'experiment'],
    ['/bases', 'base'],
  ] as const) {
    const created = document.paths[path]?.post?.responses['201'];
    if (created && !('$ref' in created))
      created.headers = { Location: { description: `the new ${what}: ${path}/<id>`, schema: { type: 'string' } } };
  }
  return document;
};
