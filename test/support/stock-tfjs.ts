import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Extracts a model archive with Info-ZIP's `unzip` (another zip implementation than ours, which
 * checks every entry's CRC as it goes) into a new folder under `parent`, and lists its files.
 */
export async function extractArchive(archive: Buffer, parent = tmpdir()): Promise<{ folder: string; files: string[] }> {
  const folder = await mkdtemp(path.join(parent, 'model-archive-'));
  const zip = path.join(folder, 'model.zip');
  await writeFile(zip, archive);
  const extracted = path.join(folder, 'extracted');
  await run('unzip', ['-q', zip, '-d', extracted]);
  const { stdout } = await run('unzip', ['-Z1', zip]);
  return { folder: extracted, files: stdout.split('\n').filter(Boolean).sort() };
}

/** Softmax probabilities from the extracted model, loaded by stock TensorFlow.js in a plain Node process. */
export async function stockTfjsProbabilities(folder: string, inputs: readonly Uint8Array[]): Promise<number[][]> {
  const script = path.join(import.meta.dirname, 'stock-tfjs-predict.mjs');
  const child = execFile(process.execPath, [script, folder], { maxBuffer: 64 * 1024 * 1024 });
  const output = new Promise<string>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`stock TensorFlow.js exited ${code}: ${stderr}`)),
    );
  });
  child.stdin?.end(JSON.stringify({ inputs: inputs.map((input) => [...input]) }));
  return (JSON.parse(await output) as { probabilities: number[][] }).probabilities;
}
