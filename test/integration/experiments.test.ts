/**
 * Experiments (POST /experiments and the routes after it) against a real service on real Redis.
 * Everything but the one test that trains runs on API-only services (ROLE=api), where runs stay
 * queued: validation, limits, ownership, paging and cancel are exact there, not racy.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ErrorBody } from '../../src/contract/errors.ts';
import type { Experiment, ExperimentList } from '../../src/contract/experiment.ts';
import type { Job, JobList } from '../../src/contract/job.ts';
import { clientOf, endedExperiment } from '../support/jobs.ts';
import { startLoggedTestService } from '../support/logged-service.ts';
import { request, startTestService, type TestService } from '../support/service.ts';

const tiny = { model: 'lenet5', dataset: 'mnist', epochs: 1, batchSize: 32, trainLimit: 64, testLimit: 64 };

let apiOnly: TestService;

before(async () => {
  apiOnly = await startTestService({ ROLE: 'api', MAX_EXPERIMENT_RUNS: '6', MAX_TRAINING_IMAGES_PER_JOB: '100000' });
});

after(async () => {
  await apiOnly?.close();
});

const post = <T = Experiment>(on: TestService, json: unknown, headers: Record<string, string> = {}) =>
  request<T>(`${on.url}/experiments`, { method: 'POST', json, headers });
const jobsOf = async (on: TestService) => (await request<JobList>(`${on.url}/jobs?limit=100`)).body.jobs;

/** A 400 in the contract's shape whose sentence matches `sentence` and whose details name `paths`. */
function assertRefused(answer: { status: number; body: unknown }, sentence: RegExp, paths: string[]): ErrorBody {
  assert.equal(answer.status, 400, JSON.stringify(answer.body));
  const body = answer.body as ErrorBody;
  assert.match(body.error, sentence);
  assert.deepEqual(body.details?.map((detail) => detail.path).sort(), [...paths].sort(), JSON.stringify(body));
  return body;
}

describe('POST /experiments', () => {
  it('makes one queued job per combination, in nested-loop order, each saying whose run it is', async () => {
    const before = (await jobsOf(apiOnly)).length;
    const answer = await post(apiOnly, {
      name: 'lr × batch',
      base: { ...tiny, seed: 3 },
      grid: { learningRate: [0.1, 0.01], batchSize: [16, 32] },
    });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    const experiment = answer.body;
    assert.equal(answer.headers.get('location'), `/experiments/${experiment.id}`);
    assert.equal(experiment.name, 'lr × batch');
    assert.equal(experiment.metric, 'testAccuracy');
    assert.deepEqual(
      experiment.runs.map((run) => run.values),
      [
        { learningRate: 0.1, batchSize: 16 },
        { learningRate: 0.1, batchSize: 32 },
        { learningRate: 0.01, batchSize: 16 },
        { learningRate: 0.01, batchSize: 32 },
      ],
    );
    assert.deepEqual(experiment.counts, { queued: 4, running: 0, completed: 0, failed: 0, cancelled: 0 });
    assert.equal(experiment.ended, false);
    assert.equal(experiment.best, null);
    for (const run of experiment.runs) {
      assert.equal(run.state, 'queued');
      assert.equal(run.result, null);
      assert.equal(run.progress.batchesPerEpoch, 64 / Number(run.values.batchSize));
      const job = (await request<Job>(`${apiOnly.url}/jobs/${run.id}`)).body;
      assert.equal(job.experimentId, experiment.id);
      assert.deepEqual(
        [job.request.learningRate, job.request.batchSize, job.request.seed, job.request.trainLimit],
        [run.values.learningRate, run.values.batchSize, 3, 64],
      );
    }
    assert.equal((await jobsOf(apiOnly)).length, before + 4);
    assert.deepEqual(
      (await request<Experiment>(`${apiOnly.url}/experiments/${experiment.id}`)).body,
      experiment,
      'GET shows what POST answered',
    );
    const single = await request<Job>(`${apiOnly.url}/jobs`, { method: 'POST', json: tiny });
    assert.equal('experimentId' in single.body, false, 'a job submitted on its own names no experiment');
  });

  it('refuses the whole experiment when one combination is invalid, naming it and its problem', async () => {
    const before = (await jobsOf(apiOnly)).length;
    const unknownDataset = await post(apiOnly, {
      base: tiny,
      grid: { model: ['lenet5', 'alexnet'], dataset: ['mnist', 'imagenet'] },
    });
    assertRefused(
      unknownDataset,
      /^the experiment is invalid: run 2 of 4 \(model=lenet5, dataset=imagenet\): grid\.dataset: dataset must be one of/,
      ['grid.dataset'],
    );
    // A check of POST /jobs beyond the schema: the server's limit on training images, here from the base and the grid together.
    const tooMany = await post(apiOnly, { base: { ...tiny, trainLimit: 60_000 }, grid: { epochs: [1, 2] } });
    assertRefused(
      tooMany,
      /run 2 of 2 \(epochs=2\): grid\.epochs: epochs × trainLimit \(2 × 60000 = 120000 training images\) is over this server's limit of 100000/,
      ['grid.epochs'],
    );
    const baseProblem = await post(apiOnly, { base: { model: 'lenet5' }, grid: { learningRate: [0.1] } });
    assertRefused(baseProblem, /run 1 of 1 \(learningRate=0\.1\): base\.dataset/, ['base.dataset']);
    assert.equal((await jobsOf(apiOnly)).length, before, 'nothing was created');
  });

  it('refuses grids it cannot run: too many runs, no field, a field it does not vary, an empty list, an unknown metric', async () => {
    assertRefused(
      await post(apiOnly, { base: tiny, grid: { seed: [1, 2, 3, 4, 5, 6, 7] } }),
      /the grid makes 7 runs, over this server's limit of 6 per experiment/,
      ['grid'],
    );
    assertRefused(await post(apiOnly, { base: tiny, grid: {} }), /grid: the grid varies at least one field/, ['grid']);
    assertRefused(
      await post(apiOnly, { base: tiny, grid: { seed: [1], logEvery: [1, 10] } }),
      /grid\.logEvery: unknown field/,
      ['grid.logEvery'],
    );
    assertRefused(
      await post(apiOnly, { base: tiny, grid: { seed: [] } }),
      /grid\.seed: give each field of the grid at least one value/,
      ['grid.seed'],
    );
    assertRefused(
      await post(apiOnly, { base: tiny, grid: { seed: [1] }, metric: 'f1' }),
      /metric must be one of: testAccuracy, testLoss/,
      ['metric'],
    );
    assertRefused(
      await post(apiOnly, { base: { ...tiny, colour: 'red' }, grid: { seed: [1] } }),
      /base\.colour: unknown field/,
      ['base.colour'],
    );
  });

  it('creates all runs or none when the queue has no room for them all, also when experiments arrive together', async () => {
    const limited = await startTestService({ ROLE: 'api', MAX_QUEUED_JOBS: '6' });
    try {
      assert.equal((await post(limited, { base: tiny, grid: { seed: [1, 2, 3, 4] } })).status, 201);
      const refused = await post<ErrorBody>(limited, { base: tiny, grid: { seed: [5, 6, 7] } });
      assert.equal(refused.status, 429, JSON.stringify(refused.body));
      assert.match(
        refused.body.error,
        /these 3 jobs would put the queue over its 6 jobs queued or running; none was created/,
      );
      assert.equal((await jobsOf(limited)).length, 4);
      // Room for 2 more: two experiments of 2 at once; whichever the queue refuses leaves no job behind.
      const together = await Promise.all(
        [1, 2].map((seed) => post(limited, { base: tiny, grid: { seed: [seed, seed + 10] } })),
      );
      const made = together.filter((answer) => answer.status === 201);
      assert.ok(
        together.every((answer) => answer.status === 201 || answer.status === 429),
        JSON.stringify(together.map((answer) => answer.status)),
      );
      const jobs = await jobsOf(limited);
      assert.equal(jobs.length, 4 + 2 * made.length);
      const listed = (await request<ExperimentList>(`${limited.url}/experiments`)).body.experiments;
      assert.equal(listed.length, 1 + made.length, 'a refused experiment is not recorded');
      const runIds = new Set(
        (
          await Promise.all(
            listed.map(async ({ id }) => (await request<Experiment>(`${limited.url}/experiments/${id}`)).body.runs),
          )
        )
          .flat()
          .map((run) => run.id),
      );
      assert.deepEqual(
        new Set(jobs.map((job) => job.id)),
        runIds,
        'every job is a run of an experiment that was created',
      );
    } finally {
      await limited.close();
    }
  });
});

describe('GET /experiments and POST /experiments/:id/cancel', () => {
  it('lists experiments newest first, in pages, without their runs', async () => {
    const own = await startTestService({ ROLE: 'api' });
    try {
      const ids: string[] = [];
      for (const seed of [1, 2, 3]) ids.push((await post(own, { base: tiny, grid: { seed: [seed] } })).body.id);
      const first = await request<ExperimentList>(`${own.url}/experiments?limit=2`);
      assert.equal(first.status, 200);
      assert.deepEqual(
        first.body.experiments.map((experiment) => experiment.id),
        [ids[2], ids[1]],
      );
      assert.equal('runs' in (first.body.experiments[0] ?? {}), false);
      assert.deepEqual(first.body.experiments[0]?.counts, {
        queued: 1,
        running: 0,
        completed: 0,
        failed: 0,
        cancelled: 0,
      });
      assert.ok(first.body.next);
      const second = await request<ExperimentList>(`${own.url}/experiments?limit=2&cursor=${first.body.next}`);
      assert.deepEqual(second.body, {
        experiments: [(await request<Experiment>(`${own.url}/experiments/${ids[0]}`)).body].map(
          ({ runs: _runs, ...summary }) => summary,
        ),
        next: null,
      });
      assert.equal((await request(`${own.url}/experiments?limit=0`)).status, 400);
      assert.equal((await request(`${own.url}/experiments?cursor=x`)).status, 400);
    } finally {
      await own.close();
    }
  });

  it('cancel ends every unfinished run and answers the experiment; unknown ids are 404', async () => {
    const created = (await post(apiOnly, { base: tiny, grid: { seed: [1, 2, 3] } })).body;
    const alone = (await request<Job>(`${apiOnly.url}/jobs/${created.runs[0]?.id}/cancel`, { method: 'POST' })).body;
    assert.equal(alone.state, 'cancelled', 'a run may be cancelled on its own');
    const answer = await request<Experiment>(`${apiOnly.url}/experiments/${created.id}/cancel`, { method: 'POST' });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(answer.body.counts, { queued: 0, running: 0, completed: 0, failed: 0, cancelled: 3 });
    assert.equal(answer.body.ended, true);
    for (const run of answer.body.runs)
      assert.equal((await request<Job>(`${apiOnly.url}/jobs/${run.id}`)).body.state, 'cancelled');
    const again = await request<Experiment>(`${apiOnly.url}/experiments/${created.id}/cancel`, { method: 'POST' });
    assert.equal(again.status, 200, 'cancelling an ended experiment changes nothing');
    for (const path of ['/experiments/no-such-id', '/experiments/no-such-id/cancel']) {
      const missing = await request<ErrorBody>(`${apiOnly.url}${path}`, {
        method: path.endsWith('cancel') ? 'POST' : 'GET',
      });
      assert.equal(missing.status, 404);
      assert.equal(missing.body.error, 'no experiment with id no-such-id');
    }
  });

  it("DELETE answers 409 while runs are queued, and once they ended deletes the experiment and its runs' jobs", async () => {
    const created = (await post(apiOnly, { base: tiny, grid: { seed: [1, 2] } })).body;
    const refused = await request<ErrorBody>(`${apiOnly.url}/experiments/${created.id}`, { method: 'DELETE' });
    assert.equal(refused.status, 409);
    assert.match(
      refused.body.error,
      /has 2 runs queued or running; cancel it first \(POST \/experiments\/.+\/cancel\), then delete it/,
    );
    assert.equal((await request(`${apiOnly.url}/jobs/${created.runs[0]?.id}`)).status, 200, 'nothing was deleted');

    assert.equal((await request(`${apiOnly.url}/experiments/${created.id}/cancel`, { method: 'POST' })).status, 200);
    const deleted = await request(`${apiOnly.url}/experiments/${created.id}`, { method: 'DELETE' });
    assert.equal(deleted.status, 204);
    assert.equal((await request(`${apiOnly.url}/experiments/${created.id}`)).status, 404);
    for (const run of created.runs)
      assert.equal((await request(`${apiOnly.url}/jobs/${run.id}`)).status, 404, 'its runs are gone too');
    const listed = (await request<ExperimentList>(`${apiOnly.url}/experiments?limit=100`)).body.experiments.map(
      (experiment) => experiment.id,
    );
    assert.ok(!listed.includes(created.id), 'nor listed');
    assert.equal(
      (await request<ErrorBody>(`${apiOnly.url}/experiments/${created.id}`, { method: 'DELETE' })).status,
      404,
    );
  });

  it("with API keys, an experiment is its creator's: another client gets 404 and lists none of it", async () => {
    const keys = ['experiment-key-aaaaaaaa', 'experiment-key-bbbbbbbb'];
    const secured = await startTestService({ ROLE: 'api', API_KEYS: keys.join(',') });
    const as = (key: string) => ({ authorization: `Bearer ${key}` });
    try {
      assert.equal((await post(secured, { base: tiny, grid: { seed: [1] } })).status, 401);
      const mine = await post(secured, { base: tiny, grid: { seed: [1, 2] } }, as(keys[0] as string));
      assert.equal(mine.status, 201);
      const id = mine.body.id;
      const other = as(keys[1] as string);
      assert.equal((await request(`${secured.url}/experiments/${id}`, { headers: other })).status, 404);
      assert.equal(
        (await request(`${secured.url}/experiments/${id}/cancel`, { method: 'POST', headers: other })).status,
        404,
      );
      assert.equal(
        (await request(`${secured.url}/experiments/${id}`, { method: 'DELETE', headers: other })).status,
        404,
      );
      assert.deepEqual((await request<ExperimentList>(`${secured.url}/experiments`, { headers: other })).body, {
        experiments: [],
        next: null,
      });
      assert.equal(
        (await request(`${secured.url}/jobs/${mine.body.runs[0]?.id}`, { headers: other })).status,
        404,
        "its runs are the creator's jobs",
      );
      const listed = await request<ExperimentList>(`${secured.url}/experiments`, { headers: as(keys[0] as string) });
      assert.deepEqual(
        listed.body.experiments.map((experiment) => experiment.id),
        [id],
      );
      assert.equal(
        (await request<Experiment>(`${secured.url}/experiments/${id}`, { headers: as(keys[0] as string) })).body.runs
          .length,
        2,
      );
    } finally {
      await secured.close();
    }
  });
});

describe('an experiment that trains', () => {
  it('with successive halving by the test loss, a run below the best at its rung ends there, completed, saying so; the others train every epoch', async () => {
    const service = await startLoggedTestService();
    try {
      // One worker trains the runs in grid order: the third meets the first rung with two runs there before it.
      const created = await post(service, {
        base: { ...tiny, epochs: 3, trainLimit: 256, seed: 5 },
        grid: { learningRate: [0.05, 0.04, 0.00001] },
        metric: 'testLoss',
        earlyTermination: { type: 'successiveHalving', reductionFactor: 3, minEpochs: 1 },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.deepEqual(created.body.earlyTermination, { type: 'successiveHalving', reductionFactor: 3, minEpochs: 1 });
      const ended = await endedExperiment(service, created.body.id);
      assert.deepEqual(ended.counts, { queued: 0, running: 0, completed: 3, failed: 0, cancelled: 0 });
      const jobs = await Promise.all(ended.runs.map((run) => clientOf(service).job(run.id)));
      assert.deepEqual(
        jobs.map((job) => job.epochs.length),
        [3, 3, 1],
        'the weak third run stopped after the first rung',
      );
      assert.deepEqual(
        jobs.map((job) => job.result?.terminatedAfterEpoch),
        [undefined, undefined, 1],
      );
      assert.equal(jobs[2]?.result?.testAccuracy, jobs[2]?.epochs[0]?.testAccuracy, "its result is its first epoch's");
      // Judged by the experiment's metric: the negated test loss after its first epoch.
      const judged = service.lines
        .map((line) => JSON.parse(line) as { msg?: string; metric?: string; score?: number })
        .filter((line) => line.msg?.startsWith('successive halving ends this run'));
      assert.deepEqual(
        judged.map(({ metric, score }) => ({ metric, score })),
        [{ metric: 'testLoss', score: -(jobs[2]?.epochs[0]?.testLoss ?? Number.NaN) }],
      );
    } finally {
      await service.close();
    }
  });

  it("fills in each run's result as it completes, and names the best run by its metric", async () => {
    const service = await startTestService();
    try {
      const created = await post(service, {
        base: { ...tiny, seed: 11 },
        grid: { learningRate: [0.05, 0.001] },
        metric: 'testLoss',
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const ended = await endedExperiment(service, created.body.id);
      assert.deepEqual(ended.counts, { queued: 0, running: 0, completed: 2, failed: 0, cancelled: 0 });
      const losses = ended.runs.map((run) => run.result?.testLoss ?? Number.NaN);
      assert.ok(losses.every(Number.isFinite), JSON.stringify(losses));
      const best = ended.runs[losses.indexOf(Math.min(...losses))];
      assert.deepEqual(ended.best, best);
      for (const run of ended.runs) {
        const job = await clientOf(service).job(run.id);
        assert.deepEqual(run.result, job.result);
        assert.equal(run.progress.fraction, 1);
      }
    } finally {
      await service.close();
    }
  });
});
