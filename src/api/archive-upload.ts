import { createWriteStream } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyRequest } from 'fastify';
import { archiveBaseName, archiveMediaTypes } from '../contract/datasets.ts';
import { hasStatus, HttpError, multipartFailure } from './http-error.ts';

/** The most bytes one upload may have, and the setting that says so (named in the 413). */
export interface UploadLimit {
  readonly maxBytes: number;
  readonly setting: string;
}

/**
 * An uploaded archive (a data set's, a base's) written to `file`, with the fields that came beside
 * it: form fields with multipart, the query string with a raw body. The caller removes `file`
 * when this throws.
 */
export async function receiveArchive(
  request: FastifyRequest,
  file: string,
  { maxBytes, setting }: UploadLimit,
): Promise<{ fields: Record<string, unknown>; fileName: string | null }> {
  const tooLarge = () =>
    new HttpError(413, `the archive is over ${maxBytes} bytes, the most one upload may have (${setting})`);
  if (!request.isMultipart()) {
    const body = request.body as Readable | undefined;
    if (!body || typeof body.pipe !== 'function') {
      throw new HttpError(
        415,
        `send the archive as multipart/form-data or as a raw body with Content-Type ${archiveMediaTypes.join(', ')}`,
      );
    }
    await writeBounded(body, file, maxBytes, tooLarge);
    return { fields: request.query as Record<string, unknown>, fileName: null };
  }
  const fields: Record<string, unknown> = {};
  let fileName: string | null = null;
  let files = 0;
  try {
    for await (const part of request.parts({ limits: { fileSize: maxBytes, files: 1 } })) {
      if (part.type === 'field') {
        fields[part.fieldname] = part.value;
        continue;
      }
      files += 1;
      fileName = part.filename ? archiveBaseName(part.filename) || null : null;
      await writeBounded(part.file, file, maxBytes, tooLarge);
      if (part.file.truncated) throw tooLarge();
    }
  } catch (error) {
    throw multipartFailure(error, 'send one archive per upload');
  }
  if (files === 0) throw new HttpError(400, 'the multipart body holds no file: send the archive as a file part');
  return { fields, fileName };
}

/**
 * Streams `source` into `file`, refusing it (tooLarge) past `maxBytes`; a stream cut off midway
 * rejects, and the caller removes the file. Past the limit the rest is read and dropped, up to
 * four times the limit, so the client hears the 413 instead of a connection reset mid-upload.
 */
async function writeBounded(source: Readable, file: string, maxBytes: number, tooLarge: () => Error): Promise<void> {
  let bytes = 0;
  const bound = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (bytes > 4 * maxBytes) callback(tooLarge());
      else callback(null, bytes > maxBytes ? undefined : chunk);
    },
  });
  try {
    await pipeline(source, bound, createWriteStream(file));
  } catch (error) {
    if (error instanceof HttpError || hasStatus(error)) throw error;
    throw new HttpError(400, `the upload was cut off before its end (${(error as Error).message})`);
  }
  if (bytes > maxBytes) throw tooLarge();
}
