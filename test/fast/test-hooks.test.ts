import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { loadTestHooks } from '../../src/test-hooks.ts';

describe('loadTestHooks', () => {
  it('injects no fault unless TEST_REPLICA_FAULT asks for one (blank is unset)', () => {
    assert.deepEqual(loadTestHooks({}), { replicaFault: null });
    assert.deepEqual(loadTestHooks({ TEST_REPLICA_FAULT: ' ' }), { replicaFault: null });
  });

  it('reads throw:<batch> and exit:<batch> as the fault a replica injects', () => {
    assert.deepEqual(loadTestHooks({ TEST_REPLICA_FAULT: 'throw:15' }), {
      replicaFault: { kind: 'throw', batch: 15 },
    });
    assert.deepEqual(loadTestHooks({ TEST_REPLICA_FAULT: 'exit:7' }), { replicaFault: { kind: 'exit', batch: 7 } });
  });

  for (const value of ['throw', 'crash:3', 'exit:0']) {
    it(`refuses TEST_REPLICA_FAULT=${JSON.stringify(value)} with a ConfigError naming it`, () => {
      assert.throws(
        () => loadTestHooks({ TEST_REPLICA_FAULT: value }),
        (error: unknown) =>
          error instanceof ConfigError && /invalid test hook: TEST_REPLICA_FAULT: must be throw/.test(error.message),
      );
    });
  }

  it('is no setting: the configuration neither lists nor checks it', () => {
    assert.equal('TEST_REPLICA_FAULT' in loadConfig({ TEST_REPLICA_FAULT: 'crash' }), false);
  });
});
