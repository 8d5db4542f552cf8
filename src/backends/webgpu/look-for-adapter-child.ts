/**
 * The child of look-for-adapter.ts: finds the adapter the request in argv[2] asks for and prints
 * the outcome as one JSON line; whatever Dawn writes to stderr goes to the parent's pipe.
 */
import { findAdapter, NoAdapterError, type DeviceRequest } from './device.ts';
import type { LookOutcome } from './look-for-adapter.ts';

const request = JSON.parse(process.argv[2] ?? '{}') as DeviceRequest;
let outcome: LookOutcome;
try {
  outcome = { found: (await findAdapter(request)).description };
} catch (error) {
  if (!(error instanceof NoAdapterError)) throw error;
  outcome = { missing: error.message };
}
process.stdout.write(`${JSON.stringify(outcome)}\n`, () =>
  // Dawn's instance would keep the process alive.
  process.exit(0),
);
