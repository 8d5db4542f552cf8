import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

/** A local HTTP server standing in for a download mirror: its base URL and every path asked of it. */
export interface Mirror {
  readonly url: string;
  readonly requests: string[];
}

export type Respond = (path: string, res: ServerResponse) => void;

export interface TestScratch {
  tempDir(): Promise<string>;
  startMirror(respond: Respond): Promise<Mirror>;
}

/**
 * Temporary folders and local mirrors for one test file, removed and closed after its tests.
 * Call it at the top of the file, where node:test's `after` applies to the whole file.
 */
export function testScratch(prefix: string): TestScratch {
  const dirs: string[] = [];
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    await Promise.all(closers.map((close) => close()));
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });
  return {
    async tempDir() {
      const dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
      dirs.push(dir);
      return dir;
    },
    async startMirror(respond) {
      const requests: string[] = [];
      const server = createServer((req, res) => {
        requests.push(req.url ?? '');
        respond(req.url ?? '', res);
      });
      await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
      closers.push(async () => {
        server.closeAllConnections();
        await new Promise((done) => server.close(done));
      });
      const { port } = server.address() as AddressInfo;
      return { url: `http://127.0.0.1:${port}`, requests };
    },
  };
}

/** Answers each path (or name) with its file from `files`, and 404 for any other. */
export function serveFiles(files: ReadonlyMap<string, Uint8Array>): Respond {
  return (path, res) => {
    const body = files.get(path);
    if (body === undefined) res.writeHead(404).end();
    else res.writeHead(200, { 'content-length': body.length }).end(body);
  };
}
