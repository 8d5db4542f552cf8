import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { startService } from './service.ts';
import { loadTestHooks } from './test-hooks.ts';

/** Entry point: `npm start` (API and worker), or ROLE=api / ROLE=worker for one of them. */
async function main(): Promise<void> {
  let config;
  let hooks;
  const notices: string[] = [];
  try {
    config = loadConfig(process.env, { notice: (line) => notices.push(line) });
    hooks = loadTestHooks();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config);
  for (const line of notices) logger.info(line);
  let service;
  try {
    service = await startService(config, logger, hooks);
  } catch (error) {
    logger.fatal((error as Error).message);
    process.exit(1);
  }
  if (service.url) logger.info(`API listening on ${service.url}`);
  const running = service;
  let stopping = false;
  // The first signal lets running jobs checkpoint after their current batch and go back to the
  // queue; a second one (an impatient operator) exits at once, leaving them to be taken over.
  const shutdown = async (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without waiting for running jobs');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    await running.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

await main();
