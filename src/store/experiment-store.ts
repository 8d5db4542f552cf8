import type { Redis } from 'ioredis';
import type { EarlyTermination, Experiment, ExperimentMetric, ExperimentRun, ExperimentSummary, GridValue } from '../contract/experiment.ts';
import { finalStates, jobStates, type EpochSummary, type JobState, type JobSummary } from '../contract/job.ts';
import type { WebhookDelivery, WebhookRequest } from '../contract/webhook.ts';
import { ExperimentKeys, JobKeys } from './keys.ts';
import { indexPage } from './pages.ts';
import { decodeSummary, decodeWebhook, encodeFields } from './records.ts';
import { defineScripts, runScript } from './scripts.ts';
import { appendWebhookDelivery, readWebhookTarget, type WebhookRecords, type WebhookTarget } from './webhook-record.ts';

/** What an experiment is created with; its runs' jobs already exist. */
export interface NewExperiment {
  readonly name: string | null;
  readonly base: Readonly<Record<string, unknown>>;
  readonly grid: Readonly<Record<string, readonly GridValue[]>>;
  readonly metric: ExperimentMetric;
  readonly earlyTermination: EarlyTermination | null;
  /** One per combination, in grid order: its job and the values the grid gave it. */
  readonly runs: readonly { readonly id: string; readonly values: Readonly<Record<string, GridValue>> }[];
  readonly createdAt: Date;
  /** The client that created it; undefined without API keys. */
  readonly owner?: string;
  /** Called once every run has ended (webhooks/). */
  readonly webhook?: WebhookRequest;
}

/**
 * Experiments' records in Redis, beside the jobs they group: what was asked (base, grid, metric)
 * and which job each run is. Their runs' states, progress and results are read from the jobs
 * themselves whenever an experiment is read, so there is nothing to keep in step; a run whose job
 * was deleted is left out.
 */
export class ExperimentStore implements WebhookRecords {
  readonly keys: ExperimentKeys;
  private readonly jobKeys: JobKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = new ExperimentKeys(prefix);
    this.jobKeys = new JobKeys(prefix);
    defineScripts(redis);
  }

  async create(id: string, experiment: NewExperiment): Promise<void> {
    const fields = encodeFields({
      name: experiment.name ?? '',
      owner: experiment.owner ?? '',
      base: experiment.base,
      grid: experiment.grid,
      metric: experiment.metric,
      earlyTermination: experiment.earlyTermination,
      runs: experiment.runs,
      createdAt: experiment.createdAt.toISOString(),
      ...(experiment.webhook ? { webhookUrl: experiment.webhook.url, webhookSecret: experiment.webhook.secret, webhookDeliveries: [] } : {}),
    });
    const keys = [this.keys.sequence(), this.keys.experiment(id), this.keys.index(), ...(experiment.owner === undefined ? [] : [this.keys.index(experiment.owner)])];
    await runScript(this.redis, 'createExperiment', keys, [id, JSON.stringify(fields)]);
  }

  /** The experiment's rule for stopping weak runs, null when it has none (or there is no such experiment). */
  async earlyTermination(id: string): Promise<EarlyTermination | null> {
    return parseRule(await this.redis.hget(this.keys.experiment(id), 'earlyTermination'));
  }

  /** The accuracy after epoch `epoch` of each run that has reached it (validation when it validates): what a rung is judged by. */
  async rungValues(id: string, epoch: number): Promise<number[]> {
    const runs = await this.redis.hget(this.keys.experiment(id), 'runs');
    const planned = JSON.parse(runs ?? '[]') as NewExperiment['runs'];
    const entries = await Promise.all(planned.map(({ id: jobId }) => this.redis.lindex(this.jobKeys.epochs(jobId), epoch - 1)));
    return entries.flatMap((entry) => {
      if (entry === null) return [];
      const summary = JSON.parse(entry) as EpochSummary;
      return [summary.validationAccuracy ?? summary.testAccuracy];
    });
  }

  /** The experiment's webhook with its secret and deliveries so far; null when it has none (or is unknown). */
  async webhookTarget(id: string): Promise<WebhookTarget | null> {
    return readWebhookTarget(this.redis, this.keys.experiment(id));
  }

  async recordWebhookDelivery(id: string, delivery: WebhookDelivery): Promise<boolean> {
    return appendWebhookDelivery(this.redis, this.keys.experiment(id), delivery);
  }

  /** The client that created it ('' for none), or null when there is no such experiment. */
  async owner(id: string): Promise<string | null> {
    return this.redis.hget(this.keys.experiment(id), 'owner');
  }

  async get(id: string): Promise<Experiment | null> {
    const record = await this.redis.hgetall(this.keys.experiment(id));
    return record.id ? this.assemble(record) : null;
  }

  /** Newest first; `cursor` is the sequence number to continue below; with `owner`, that client's only. */
  async list(options: { limit: number; cursor?: string; owner?: string }): Promise<{ experiments: ExperimentSummary[]; next: string | null }> {
    const { ids, next } = await indexPage(this.redis, this.keys.index(options.owner), options.limit, options.cursor);
    const found = await Promise.all(ids.map((id) => this.get(id)));
    const experiments = found.filter((experiment): experiment is Experiment => experiment !== null).map(({ runs: _runs, ...summary }) => summary);
    return { experiments, next };
  }

  private async assemble(record: Record<string, string>): Promise<Experiment> {
    const planned = JSON.parse(record.runs ?? '[]') as NewExperiment['runs'];
    const jobs = await Promise.all(planned.map(async ({ id }) => decodeSummary(await this.redis.hgetall(this.jobKeys.job(id)))));
    const runs = planned.flatMap(({ id, values }, index): ExperimentRun[] => {
      const job: JobSummary | null | undefined = jobs[index];
      return job ? [{ id, values: { ...values }, state: job.state, progress: job.progress, result: job.result }] : [];
    });
    const metric = record.metric === 'testLoss' ? 'testLoss' : 'testAccuracy';
    const counts = Object.fromEntries(jobStates.map((state) => [state, runs.filter((run) => run.state === state).length])) as Record<JobState, number>;
    return {
      id: record.id ?? '',
      name: record.name || null,
      base: JSON.parse(record.base ?? '{}') as Record<string, unknown>,
      grid: JSON.parse(record.grid ?? '{}') as Record<string, GridValue[]>,
      metric,
      earlyTermination: parseRule(record.earlyTermination),
      createdAt: record.createdAt ?? '',
      runs,
      counts,
      ended: runs.every((run) => finalStates.includes(run.state)),
      best: bestRun(runs, metric),
      ...(record.webhookUrl ? { webhook: decodeWebhook(record.webhookUrl, record.webhookDeliveries) } : {}),
    };
  }
}

function parseRule(field: string | null | undefined): EarlyTermination | null {
  return field ? (JSON.parse(field) as EarlyTermination | null) : null;
}

/** The completed run with the highest test accuracy or the lowest test loss; of equals, the first in grid order. */
function bestRun(runs: readonly ExperimentRun[], metric: ExperimentMetric): ExperimentRun | null {
  const better = (a: number, b: number) => (metric === 'testAccuracy' ? a > b : a < b);
  let best: ExperimentRun | null = null;
  for (const run of runs) {
    if (run.state !== 'completed' || !run.result) continue;
    if (!best?.result || better(run.result[metric], best.result[metric])) best = run;
  }
  return best;
}
