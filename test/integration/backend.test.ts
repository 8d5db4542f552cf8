/**
 * TensorFlow.js's backend is global to the process, so the in-process cases run in a fixed order
 * (cpu, wasm, tensorflow, auto) and the checks that need a fresh process run in child processes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { pino, type Logger } from 'pino';
import { BackendError, startBackend } from '../../src/backends/select.ts';
import { softwareGpuEnvironment } from '../support/software-gpu.ts';

const run = promisify(execFile);
const projectRoot = new URL('../..', import.meta.url);

interface LogLine {
  level: number;
  msg: string;
  backend?: string;
  tried?: string[];
  error?: string;
}

/** A pino logger at debug level whose lines are collected, parsed, for assertions. */
function collectingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}

const INFO = 30;
const WARN = 40;
const DEBUG = 20;

/** Whether either native package can really be imported here, asked in a child so this process stays clean. */
async function nativeImportable(): Promise<boolean> {
  try {
    await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "await import('@tensorflow/tfjs-node-gpu').catch(() => import('@tensorflow/tfjs-node'));",
      ],
      { cwd: projectRoot, timeout: 60_000 },
    );
    return true;
  } catch {
    return false;
  }
}

/** Runs startBackend(choice) in a fresh Node process and reports what it returned, threw and logged. */
async function startInChild(
  choice: string,
  environment: Record<string, string> = {},
  options: Record<string, string> = {},
): Promise<{ backend?: string; current?: string; error?: { name: string; message: string }; lines: LogLine[] }> {
  const script = `
    const { pino } = await import('pino');
    const tf = await import('@tensorflow/tfjs-core');
    const { startBackend } = await import(new URL('./src/backends/select.ts', ${JSON.stringify(projectRoot.href)}).href);
    const lines = [];
    const logger = pino({ level: 'debug' }, { write: (line) => lines.push(JSON.parse(line)) });
    const report = { lines };
    try {
      report.backend = await startBackend(${JSON.stringify(choice)}, logger, ${JSON.stringify(options)});
      report.current = tf.getBackend();
      const { stopBackend } = await import(new URL('./src/backends/select.ts', ${JSON.stringify(projectRoot.href)}).href);
      await stopBackend();
    } catch (error) {
      report.error = { name: error.name, message: error.message };
    }
    process.stdout.write('\\nREPORT ' + JSON.stringify(report) + '\\n');
  `;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: projectRoot,
    env: { ...process.env, ...environment },
    timeout: 60_000,
    maxBuffer: 10 * 1024 * 1024,
  });
  const line = stdout.split('\n').find((text) => text.startsWith('REPORT '));
  assert.ok(line, `the child reported: ${stdout}`);
  return JSON.parse(line.slice('REPORT '.length)) as Awaited<ReturnType<typeof startInChild>>;
}

function assertNamesBothPackages(message: string): void {
  assert.match(message, /@tensorflow\/tfjs-node-gpu/);
  assert.match(message, /@tensorflow\/tfjs-node(?!-gpu)/);
}

function assertRunsOnLine(lines: readonly LogLine[], backend: string): void {
  const info = lines.filter((line) => line.level === INFO);
  assert.equal(info.length, 1, `one info line, got ${JSON.stringify(lines)}`);
  assert.equal(info[0]?.backend, backend);
  assert.match(info[0]?.msg ?? '', new RegExp(`\\b${backend}\\b`));
}

let native = false;
before(async () => {
  native = await nativeImportable();
});

describe('startBackend, in this process', () => {
  it("'cpu' makes cpu the current backend and says so", async () => {
    const { logger, lines } = collectingLogger();
    assert.equal(await startBackend('cpu', logger), 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
    assertRunsOnLine(lines, 'cpu');
    assert.deepEqual(lines.find((line) => line.level === INFO)?.tried, []);
    const sum = tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4]));
    assert.deepEqual([...sum.dataSync()], [4, 6]);
    sum.dispose();
  });

  it("'wasm' makes wasm the current backend, with the training kernel registered", async () => {
    const { logger, lines } = collectingLogger();
    assert.equal(await startBackend('wasm', logger), 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    assertRunsOnLine(lines, 'wasm');
    assert.notEqual(tf.getKernel('Conv2DBackpropFilter', 'wasm'), undefined, 'wasm can train convolutions');
    const product = tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]]));
    assert.deepEqual([...product.dataSync()], [11]);
    product.dispose();
  });

  it("'tensorflow' starts the native backend where it is installed, else fails naming both packages", async () => {
    const { logger, lines } = collectingLogger();
    const previous = tf.getBackend();
    if (native) {
      assert.equal(await startBackend('tensorflow', logger), 'tensorflow');
      assert.equal(tf.getBackend(), 'tensorflow');
      assertRunsOnLine(lines, 'tensorflow');
      return;
    }
    await assert.rejects(startBackend('tensorflow', logger), (error: unknown) => {
      assert.ok(error instanceof BackendError, `expected a BackendError, got ${String(error)}`);
      assert.equal(error.name, 'BackendError');
      assertNamesBothPackages(error.message);
      assert.match(error.message, /TRAINER_BACKEND=tensorflow/);
      return true;
    });
    assert.equal(tf.getBackend(), previous, 'an explicit choice that fails does not fall back or change the backend');
    assert.equal(lines.filter((line) => line.level === INFO).length, 0, 'no "runs on" line');
    const debug = lines.filter((line) => line.level === DEBUG);
    assert.equal(debug.length, 1);
    assert.equal(debug[0]?.backend, 'tensorflow');
  });

  it("'auto' takes tensorflow where it is installed, else wasm (no hardware GPU here), logging what it tried", async () => {
    const { logger, lines } = collectingLogger();
    const expected = native ? 'tensorflow' : 'wasm';
    await startBackend('cpu', pino({ level: 'silent' }));
    assert.equal(await startBackend('auto', logger), expected);
    assert.equal(tf.getBackend(), expected);
    assertRunsOnLine(lines, expected);
    const tried = lines.find((line) => line.level === INFO)?.tried ?? [];
    if (native) {
      assert.deepEqual(tried, []);
    } else {
      assert.equal(tried.length, 2);
      assert.match(tried[0] ?? '', /^tensorflow: /);
      assertNamesBothPackages(tried[0] ?? '');
      assert.match(tried[1] ?? '', /^webgpu: /);
    }
  });
});

describe('startBackend, in a fresh process', () => {
  it("'auto' takes tensorflow where it is installed, else wasm", async () => {
    const report = await startInChild('auto');
    const expected = native ? 'tensorflow' : 'wasm';
    assert.equal(report.error, undefined);
    assert.equal(report.backend, expected);
    assert.equal(report.current, expected);
    assertRunsOnLine(report.lines, expected);
  });

  it("'auto' passes over a software GPU adapter, saying why, and takes the next backend", async () => {
    const report = await startInChild('auto', softwareGpuEnvironment());
    const expected = native ? 'tensorflow' : 'wasm';
    assert.equal(report.backend, expected);
    if (native) return;
    const tried = report.lines.find((line) => line.level === INFO)?.tried ?? [];
    assert.match(tried[1] ?? '', /^webgpu: the only WebGPU adapter is a software one \(SwiftShader/);
  });

  it("'webgpu' takes the software adapter when asked for by name, and names it", async () => {
    const report = await startInChild('webgpu', softwareGpuEnvironment());
    assert.equal(report.error, undefined);
    assert.equal(report.backend, 'webgpu');
    assert.equal(report.current, 'webgpu');
    const info = report.lines.find((line) => line.level === INFO);
    assert.match(info?.msg ?? '', /webgpu backend \(SwiftShader/);
    assert.ok(report.lines.some((line) => line.level === WARN && /software GPU adapter/.test(line.msg)));
  });

  it("'webgpu' without any Vulkan driver is a BackendError saying what a GPU host needs", async () => {
    const report = await startInChild('webgpu', {
      VK_ICD_FILENAMES: '/nonexistent/icd.json',
      VK_DRIVER_FILES: '/nonexistent/icd.json',
    });
    assert.equal(report.backend, undefined);
    assert.equal(report.error?.name, 'BackendError');
    assert.match(
      report.error?.message ?? '',
      /TRAINER_BACKEND=webgpu\): webgpu: no WebGPU adapter found: .*Vulkan.*libvulkan1/,
    );
  });

  it("'webgpu' with WEBGPU_ADAPTER naming no adapter lists the ones there are", async () => {
    const missing = await startInChild('webgpu', softwareGpuEnvironment(), { webgpuAdapter: 'NoSuchGPU' });
    assert.equal(missing.error?.name, 'BackendError');
    assert.match(missing.error?.message ?? '', /no WebGPU adapter matches WEBGPU_ADAPTER=NoSuchGPU: .*SwiftShader/);
  });

  it("'tensorflow' is a BackendError naming both packages where neither is installed", async () => {
    const report = await startInChild('tensorflow');
    if (native) {
      assert.equal(report.backend, 'tensorflow');
      assert.equal(report.current, 'tensorflow');
      return;
    }
    assert.equal(report.backend, undefined);
    assert.equal(report.error?.name, 'BackendError');
    assertNamesBothPackages(report.error?.message ?? '');
    assert.equal(report.lines.filter((line) => line.level === INFO).length, 0);
  });
});
