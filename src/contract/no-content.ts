import { z } from 'zod';

/** A DELETE's 204: no body, and `type: null` so that the OpenAPI document lists no content for it. */
export const deleted = z.null().meta({ description: 'deleted', type: 'null' });
