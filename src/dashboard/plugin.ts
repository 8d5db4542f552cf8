import { readdir, readFile } from 'node:fs/promises';
import type { FastifyPluginAsync } from 'fastify';

const folder = new URL('./', import.meta.url);
const read = (file: string) => readFile(new URL(file, folder), 'utf8');

/**
 * The web dashboard: the page at GET / (index.html with style.css from this folder put inline) and
 * its native ES modules, this folder's .js files, at GET /dashboard/<file>.js. No build step: the
 * files are read as they are, on each request. The page and its modules stay public when API keys
 * are switched on (src/api/auth.ts); the page then calls the public HTTP API with a key. Hidden from
 * the OpenAPI document, which describes the API alone; every other path, under /dashboard/ too,
 * still reaches the app's 404 handler.
 */
export const dashboardPlugin: FastifyPluginAsync = async (app) => {
  app.get('/', { schema: { hide: true } }, async (_request, reply) => {
    const [html, css] = await Promise.all([read('index.html'), read('style.css')]);
    const page = html.replace(/<link rel="stylesheet" href="style\.css"\s*\/?>/, () => `<style>\n${css}</style>`);
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(page);
  });
  const modules = (await readdir(folder)).filter((file) => file.endsWith('.js'));
  for (const file of modules) {
    app.get(`/dashboard/${file}`, { schema: { hide: true } }, async (_request, reply) =>
      reply
        .type('text/javascript; charset=utf-8')
        .header('cache-control', 'no-cache')
        .send(await read(file)),
    );
  }
};
