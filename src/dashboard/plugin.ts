import { readFile } from 'node:fs/promises';
import type { FastifyPluginAsync } from 'fastify';

const folder = new URL('./', import.meta.url);
const read = (file: string) => readFile(new URL(file, folder), 'utf8');

/**
 * The web dashboard at GET /: index.html with style.css and app.js (an ES module) from this
 * folder put inline, so the page is one document at the one path that stays public when API keys
 * are switched on. No build step: the files are read as they are. The page uses the public HTTP
 * API only. Hidden from the OpenAPI document, which describes the API alone; every other path
 * still reaches the app's 404 handler.
 */
export const dashboardPlugin: FastifyPluginAsync = async (app) => {
  app.get('/', { schema: { hide: true } }, async (_request, reply) => {
    const [html, css, script] = await Promise.all([read('index.html'), read('style.css'), read('app.js')]);
    const page = html
      .replace(/<link rel="stylesheet" href="style\.css"\s*\/?>/, () => `<style>\n${css}</style>`)
      .replace(
        /<script type="module" src="app\.js"><\/script>/,
        () => `<script type="module">\n${script.replaceAll('</script', '<\\/script')}</script>`,
      );
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(page);
  });
};
