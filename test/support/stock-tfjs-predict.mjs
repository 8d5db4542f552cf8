/**
 * A user of a downloaded model, as docs/guides/jobs.md shows one: plain Node, stock TensorFlow.js
 * from npm and the archive's own custom-layers.mjs, no code of this project. Run with plain `node`
 * (no tsx):
 *
 *   node test/support/stock-tfjs-predict.mjs <extracted archive folder>   < {"inputs": [[…bytes…], …]}
 *
 * It serves the folder on loopback and loads model.json from that URL with tf.loadLayersModel, as
 * a browser would, prepares the given images' bytes as metadata.json says, and prints
 * {"probabilities": [[…], …]} on stdout.
 */
import { readFile } from 'node:fs/promises';
import process from 'node:process';
import { createServer } from 'node:http';
import path from 'node:path';
import { pathToFileURL, URL } from 'node:url';
import '@tensorflow/tfjs-backend-cpu';
import * as tfc from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

const folder = path.resolve(process.argv[2]);
const tf = { ...tfc, ...tfl };
const { registerCustomLayers } = await import(pathToFileURL(path.join(folder, 'custom-layers.mjs')).href);
registerCustomLayers(tf);
await tf.setBackend('cpu');

const server = createServer((request, response) => {
  readFile(path.join(folder, path.basename(new URL(request.url, 'http://x').pathname))).then(
    (bytes) => response.end(bytes),
    () => response.writeHead(404).end(),
  );
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
try {
  const model = await tf.loadLayersModel(`http://127.0.0.1:${server.address().port}/model.json`);
  const metadata = JSON.parse(await readFile(path.join(folder, 'metadata.json'), 'utf8'));
  const [, height, width, channels] = metadata.input.shape;
  let stdin = '';
  for await (const chunk of process.stdin) stdin += chunk;
  const { inputs } = JSON.parse(stdin);
  // tfjs-core alone has no chained ops (x.div): the @tensorflow/tfjs bundle adds them.
  const bytes = tf.tensor4d(inputs.flat(), [inputs.length, height, width, channels]);
  const batch = tf.div(tf.sub(tf.div(bytes, 255), 0.5), 0.5);
  const probabilities = tf.softmax(model.predict(batch)).arraySync();
  process.stdout.write(JSON.stringify({ probabilities }));
} finally {
  server.close();
}
