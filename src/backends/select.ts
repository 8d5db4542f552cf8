import * as tf from '@tensorflow/tfjs-core';
import type { Logger } from 'pino';
import type { BackendChoice } from '../config.ts';
import { backendDevice } from './device.ts';
import { registerTrainingGradients } from './gradients/register.ts';

export type ConcreteBackend = Exclude<BackendChoice, 'auto'>;

/**
 * How to bring up each backend: import its package, then register what this service adds to it,
 * from one list per backend in that backend's folder (wasm/register.ts, its kernels in
 * wasm/kernels/, one file each). A backend joins with an entry here, its folder beside wasm/, and
 * a place in `autoOrder`. The gradient overrides (gradients/register.ts) are no backend's.
 *
 * The native ones are installed by hand where wanted (their install downloads libtensorflow), so
 * on most hosts they are absent, or present without their library: importing is the only reliable test.
 */
const loaders: Record<ConcreteBackend, (options: LoadOptions) => Promise<void>> = {
  async tensorflow() {
    const failures: string[] = [];
    for (const name of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      try {
        await import(name);
        return;
      } catch (error) {
        failures.push(`${name}: ${firstLine(error)}`);
      }
    }
    throw new Error(failures.join('; '));
  },
  // Single-threaded on purpose. tfjs-backend-wasm 4.22 reports no thread support under Node
  // (WASM_HAS_MULTITHREAD_SUPPORT is false there, tensorflow/tfjs#3830), so it loads the SIMD
  // binary. Forcing the threaded-SIMD binary needs three patches of globals (the flag, the worker
  // script it passes as a Blob URL, which Node's Worker can't load, and os.cpus(), since the C++
  // side caps threads at half the logical cores: 1 on a 2-core host, whatever setThreadsCount
  // asks). Measured with those patches on 2 cores: a LeNet-5 step 1.5x slower (every small kernel
  // pays the thread pool's hand-off; dense layers never use it), AlexNet 8% faster.
  async wasm() {
    await import('@tensorflow/tfjs-backend-wasm');
    const { registerWasmKernels } = await import('./wasm/register.ts');
    registerWasmKernels();
    // The gradient overrides hold on any backend; wasm and webgpu register them, cpu and tensorflow
    // keep TF.js's own gradients (the same values) as they always have.
    registerTrainingGradients();
  },
  // A hardware adapter only under `auto`: SwiftShader trains LeNet-5 some 300 times slower than wasm.
  // `auto` looks in a child process first, so that a host without a GPU doesn't print Dawn's
  // complaints on stderr; asked for by name, webgpu opens Dawn here and they are the diagnosis.
  async webgpu({ explicit, webgpuAdapter, webgpuMaxBufferBytes, logger }) {
    const request = { adapterName: webgpuAdapter, allowFallback: explicit, maxBufferBytes: webgpuMaxBufferBytes };
    if (!explicit) {
      const { lookForAdapter } = await import('./webgpu/look-for-adapter.ts');
      await lookForAdapter(request, logger);
    }
    const { startWebGpu } = await import('./webgpu/start.ts');
    await startWebGpu(request);
    // ReLU's without its Cast; the loss's goes unused, as webgpu has no fused loss kernel.
    registerTrainingGradients();
  },
  async cpu() {
    await import('@tensorflow/tfjs-backend-cpu');
  },
};

export interface BackendOptions {
  /** Part of the WebGPU adapter's name to train on (WEBGPU_ADAPTER); unset: Dawn's choice of the fastest. */
  readonly webgpuAdapter?: string | undefined;
  /** The largest buffer to ask the GPU for (WEBGPU_MAX_BUFFER_MIB); unset: all it offers. */
  readonly webgpuMaxBufferBytes?: number | undefined;
}

interface LoadOptions extends BackendOptions {
  /** Asked for by name rather than through `auto`. */
  readonly explicit: boolean;
  readonly logger: Logger;
}

const autoOrder: readonly ConcreteBackend[] = ['tensorflow', 'webgpu', 'wasm', 'cpu'];

export class BackendError extends Error {
  override readonly name = 'BackendError';
}

/**
 * Makes the chosen backend TensorFlow.js's current one and returns its name. `auto` takes the
 * fastest that works here; an explicit choice that can't start is an error, not a silent fallback.
 */
export async function startBackend(
  choice: BackendChoice,
  logger: Logger,
  options: BackendOptions = {},
): Promise<ConcreteBackend> {
  const candidates = choice === 'auto' ? autoOrder : [choice];
  const failures: string[] = [];
  let noGpu = false;
  for (const backend of candidates) {
    try {
      await loaders[backend]({ ...options, explicit: choice !== 'auto', logger });
      if (!(await tf.setBackend(backend))) throw new Error('it failed to initialise');
      await tf.ready();
      const device = backendDevice();
      logger.info(
        { backend, device, tried: failures },
        `TensorFlow.js runs on the ${backend} backend (${device.name})${noGpu ? ': no usable GPU was found' : ''}`,
      );
      if (device.fallback)
        logger.warn(`${device.name} is a software GPU adapter: correct, but far slower than TRAINER_BACKEND=wasm`);
      return backend;
    } catch (error) {
      noGpu ||= backend === 'webgpu';
      failures.push(`${backend}: ${firstLine(error)}`);
      logger.debug({ backend, error: firstLine(error) }, 'backend unavailable');
    }
  }
  throw new BackendError(`no TensorFlow.js backend could start (TRAINER_BACKEND=${choice}): ${failures.join('; ')}`);
}

/** Releases the GPU device, whose Dawn instance otherwise keeps the process alive. */
export async function stopBackend(): Promise<void> {
  const { stopWebGpu } = await import('./webgpu/start.ts');
  stopWebGpu();
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}
