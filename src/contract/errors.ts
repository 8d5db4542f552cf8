import { z } from 'zod';

const errorDetail = z.object({
  path: z.string(),
  message: z.string(),
});
export type ErrorDetail = z.infer<typeof errorDetail>;

/** The body of every 4xx/5xx answer. */
export const errorBody = z
  .object({
    error: z.string(),
    details: z.array(errorDetail).optional(),
  })
  .meta({ id: 'Error' });
export type ErrorBody = z.infer<typeof errorBody>;
