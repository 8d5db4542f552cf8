import { z } from 'zod';

/** The processor a TensorFlow.js backend computes on, as a job's result and /health name it. */
export const deviceDescription = z
  .object({
    kind: z.enum(['cpu', 'gpu']),
    name: z.string().meta({ description: "the adapter's description (e.g. 'NVIDIA H200'), or the CPU model" }),
    vendor: z.string().nullable(),
    architecture: z.string().nullable(),
    fallback: z.boolean().meta({ description: 'a software GPU adapter (SwiftShader): correct but slow' }),
  })
  .meta({ id: 'Device' });
export type DeviceDescription = z.infer<typeof deviceDescription>;
