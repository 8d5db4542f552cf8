/**
 * Downloads one file atomically: it streams into a temporary file beside the destination and is
 * renamed into place only once complete and verified, so an interrupted or corrupt download never
 * leaves a file that a later run would take for a good copy.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { DatasetError } from './dataset.ts';

export interface DownloadOptions {
  /** Expected MD5 of the file as served, lower-case hex; the download is rejected if it differs. */
  readonly md5?: string;
  readonly onStatus?: (line: string) => void;
}

export async function downloadFile(url: string, destPath: string, options: DownloadOptions = {}): Promise<void> {
  const { md5, onStatus } = options;
  const dir = dirname(destPath);
  const byHand = `To supply it by hand, download ${url} elsewhere and put it in ${dir}/ as ${basename(destPath)}.`;
  await mkdir(dir, { recursive: true });
  // Same folder as the destination so that rename() stays on one file system and is atomic.
  const tempPath = `${destPath}.${randomBytes(6).toString('hex')}.part`;
  onStatus?.(`downloading ${url}`);
  try {
    let response: Response;
    try {
      response = await fetch(url);
    } catch (err) {
      throw new DatasetError(`Could not download ${url}: ${describeNetworkError(err)}. ${byHand}`);
    }
    if (!response.ok || response.body === null) {
      // Cancelling frees the connection without reading an error page nobody will look at.
      await response.body?.cancel();
      throw new DatasetError(`Could not download ${url}: HTTP ${response.status} ${response.statusText}. ${byHand}`);
    }

    const hash = createHash('md5');
    let size = 0;
    try {
      await pipeline(
        Readable.fromWeb(response.body as WebReadableStream<Uint8Array>),
        async function* (chunks: AsyncIterable<Uint8Array>) {
          for await (const chunk of chunks) {
            hash.update(chunk);
            size += chunk.length;
            yield chunk;
          }
        },
        createWriteStream(tempPath),
      );
    } catch (err) {
      throw new DatasetError(`Could not download ${url}: ${describeNetworkError(err)}. ${byHand}`);
    }

    const actual = hash.digest('hex');
    if (md5 !== undefined && actual !== md5.toLowerCase()) {
      throw new DatasetError(
        `Checksum mismatch for ${url}: expected MD5 ${md5}, got ${actual} (${size} bytes); the download was discarded. ` +
          `Retry, or use another mirror. ${byHand}`,
      );
    }
    await rename(tempPath, destPath);
    onStatus?.(`downloaded ${url} (${formatSize(size)}${md5 === undefined ? '' : ', MD5 verified'})`);
  } finally {
    // After a successful rename there is nothing left to remove; force ignores that.
    await rm(tempPath, { force: true });
  }
}

/** fetch() reports every network failure as "fetch failed"; the useful part is in `cause`. */
function describeNetworkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause: unknown = err.cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return `${err.message} (${code === undefined ? cause.message : `${code}: ${cause.message}`})`;
  }
  return err.message;
}

function formatSize(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(1)} MB` : `${(bytes / 1024).toFixed(1)} kB`;
}
