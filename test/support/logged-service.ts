import { Writable } from 'node:stream';
import { startTestService, type TestService } from './service.ts';

export interface LoggedTestService extends TestService {
  /** Every log line the service wrote so far, as written (JSON text). */
  readonly lines: string[];
}

/** Like startTestService, with the service's log (level info unless given) kept in memory for the test to read. */
export async function startLoggedTestService(environment: Record<string, string> = {}): Promise<LoggedTestService> {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      lines.push(
        ...String(chunk)
          .split('\n')
          .filter((line) => line !== ''),
      );
      callback();
    },
  });
  const service = await startTestService({ LOG_LEVEL: 'info', ...environment }, sink);
  return { ...service, lines };
}
