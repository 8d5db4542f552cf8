import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/**
 * The job store's Lua scripts, one file each in ./scripts, as BullMQ keeps its own: a file is
 * named `<name>-<number of keys>.lua` (plain `<name>.lua` when the number of keys varies; it is
 * then given first at each call), and its header says what each KEYS[i] and ARGV[i] holds and
 * what it answers. They are read once, when this module loads, from beside this file, which tsx
 * runs as it is (there is no build step) and the Docker image copies with the rest of src/.
 */
const folder = new URL('./scripts/', import.meta.url);

interface Script {
  /** The command ioredis defines for it on each connection. */
  readonly command: string;
  /** Undefined: the number of keys varies. */
  readonly numberOfKeys: number | undefined;
  readonly lua: string;
}

function load(file: string): Script {
  const match = /^([a-z]+(?:-[a-z]+)*)(?:-(\d+))?\.lua$/.exec(file);
  if (!match?.[1]) throw new Error(`a script file is named <name>-<number of keys>.lua or <name>.lua, not ${file}`);
  const words = match[1].split('-');
  return {
    command: `trainer${words.map((word) => word.charAt(0).toUpperCase() + word.slice(1)).join('')}`,
    numberOfKeys: match[2] === undefined ? undefined : Number(match[2]),
    lua: readFileSync(new URL(file, folder), 'utf8'),
  };
}

const scripts = {
  create: load('create.lua'),
  transition: load('transition-4.lua'),
  remove: load('remove.lua'),
  append: load('append-3.lua'),
  rewind: load('rewind-4.lua'),
  createDataset: load('create-dataset-5.lua'),
  finishDataset: load('finish-dataset-3.lua'),
  deleteDataset: load('delete-dataset-5.lua'),
  setDatasetProgress: load('set-dataset-progress-1.lua'),
  createBase: load('create-base-5.lua'),
  deleteBase: load('delete-base-5.lua'),
  createExperiment: load('create-experiment.lua'),
  recordWebhookDelivery: load('record-webhook-delivery-1.lua'),
} as const;

export type ScriptName = keyof typeof scripts;

type ScriptCommand = (...keysThenArguments: (string | number)[]) => Promise<unknown>;

/** Defines every script on the connection (ioredis then runs each by its hash, loading it on first use). */
export function defineScripts(redis: Redis): void {
  for (const { command, numberOfKeys, lua } of Object.values(scripts)) {
    redis.defineCommand(command, numberOfKeys === undefined ? { lua } : { numberOfKeys, lua });
  }
}

/** Runs a script defined on `redis` with its KEYS and ARGV, each in the order its file's header lists them. */
export function runScript(
  redis: Redis,
  name: ScriptName,
  keys: readonly string[],
  args: readonly string[],
): Promise<unknown> {
  const { command, numberOfKeys } = scripts[name];
  const run = (redis as unknown as Record<string, ScriptCommand | undefined>)[command];
  if (!run) throw new Error(`the ${name} script is not defined on this connection`);
  if (numberOfKeys === undefined) return run.call(redis, keys.length, ...keys, ...args);
  if (keys.length !== numberOfKeys)
    throw new Error(`the ${name} script takes ${numberOfKeys} keys, not ${keys.length}`);
  return run.call(redis, ...keys, ...args);
}
