/**
 * Looks for the adapter a request asks for in a short child process (look-for-adapter-child.ts),
 * before this process opens Dawn. Dawn and the Vulkan loader write their complaints straight to
 * file descriptor 2 ("XDG_RUNTIME_DIR is invalid…", "Vulkan shaderUniform*ArrayDynamicIndexing
 * required…") on every host without a usable GPU; nothing in this process can catch that, so
 * `auto` asks a child, whose stderr is a pipe, and logs what it said at debug level.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Logger } from 'pino';
import type { DeviceDescription } from '../../contract/device.ts';
import { NoAdapterError, type DeviceRequest } from './device.ts';

/** What the child prints on its stdout, one JSON line. */
export type LookOutcome = { readonly found: DeviceDescription } | { readonly missing: string };

const child = path.resolve(import.meta.dirname, 'look-for-adapter-child.ts');
// Absolute, so the child loads TypeScript however this process was started (as in worker/pool.ts).
const typeScriptLoader = import.meta.resolve('tsx');

/** Longer than Dawn takes to list the adapters of any host seen so far; a child that hangs means no GPU here. */
const timeoutMs = 30_000;

/** Resolves with the adapter `request` would open, or rejects with a NoAdapterError saying why there is none. */
export async function lookForAdapter(request: DeviceRequest, logger: Logger): Promise<DeviceDescription> {
  const looking = spawn(process.execPath, ['--import', typeScriptLoader, child, JSON.stringify(request)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: timeoutMs,
  });
  let stdout = '';
  let stderr = '';
  looking.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  looking.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    looking.once('error', reject);
    looking.once('close', (exitCode, exitSignal) => resolve([exitCode, exitSignal]));
  });
  if (stderr.trim() !== '') logger.debug({ stderr: stderr.trim() }, 'what Dawn said while looking for a GPU adapter');
  const line = stdout.split('\n').find((text) => text.startsWith('{'));
  if (code !== 0 || line === undefined)
    throw new NoAdapterError(`looking for a GPU adapter failed (${signal ?? `exit code ${code}`}): ${stderr.trim()}`);
  const outcome = JSON.parse(line) as LookOutcome;
  if ('missing' in outcome) throw new NoAdapterError(outcome.missing);
  return outcome.found;
}
