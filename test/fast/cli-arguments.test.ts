/** The `trainer` command's argument handling, without a server: what each command line asks for, and what it refuses. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../../src/cli/errors.ts';
import { defaultUrl, parseCommandLine } from '../../src/cli/main.ts';
import { trainingOptions } from '../../src/cli/options.ts';

const noEnv = {};

describe('trainer command line', () => {
  it('submit takes every training option and switch, and the server from --url, TRAINER_URL or the default', () => {
    const parsed = parseCommandLine(
      ['submit', '--model', 'alexnet', '--batch-size', '32', '--no-augment', '--json', '--url', 'http://h:1'],
      noEnv,
    );
    assert.notEqual(parsed, 'help');
    if (parsed === 'help') return;
    assert.equal(parsed.command, 'submit');
    assert.deepEqual(parsed.options, { model: 'alexnet', 'batch-size': '32' });
    assert.deepEqual([...parsed.flags], ['no-augment']);
    assert.equal(parsed.json, true);
    assert.equal(parsed.url, 'http://h:1');
    const fromEnv = parseCommandLine(['list'], { TRAINER_URL: 'https://trainer.example' });
    assert.equal(fromEnv !== 'help' && fromEnv.url, 'https://trainer.example');
    const byDefault = parseCommandLine(['watch', 'job-1'], noEnv);
    assert.equal(byDefault !== 'help' && byDefault.url, defaultUrl);
  });

  it('every training option of the list is accepted by submit', () => {
    for (const { flag, value } of trainingOptions) {
      const args = value === 'switch' ? ['submit', `--${flag}`] : ['submit', `--${flag}`, '1'];
      assert.doesNotThrow(() => parseCommandLine(args, noEnv), `--${flag}`);
    }
  });

  it('model takes one job id and -o or --output for the file', () => {
    for (const args of [
      ['model', 'job-1', '-o', 'm.zip'],
      ['model', '--output', 'm.zip', 'job-1'],
    ]) {
      const parsed = parseCommandLine(args, noEnv);
      assert.ok(parsed !== 'help');
      assert.equal(parsed.command, 'model');
      assert.deepEqual(parsed.operands, ['job-1']);
      assert.deepEqual(parsed.options, { output: 'm.zip' });
    }
    const named = parseCommandLine(['model', 'job-1'], noEnv);
    assert.ok(named !== 'help');
    assert.deepEqual(named.options, {}, 'without -o the server names the file');
  });

  it('datasets upload takes the upload options and --wait', () => {
    const invocation = parseCommandLine(
      [
        'datasets',
        'upload',
        'digits.zip',
        '--name',
        'mine',
        '--image-size',
        '32',
        '--colour',
        'rgb',
        '--test-fraction',
        '0.1',
        '--split-seed',
        '4',
        '--image-kind',
        'strokes',
        '--wait',
      ],
      noEnv,
    );
    assert.ok(invocation !== 'help');
    assert.deepEqual(invocation.operands, ['upload', 'digits.zip']);
    assert.deepEqual(invocation.options, {
      name: 'mine',
      'image-size': '32',
      colour: 'rgb',
      'test-fraction': '0.1',
      'split-seed': '4',
      'image-kind': 'strokes',
    });
    assert.deepEqual([...invocation.flags], ['wait']);
  });

  it('bases lists with no operand or list, uploads a zip with --name, shows and deletes by id', () => {
    for (const [args, operands, options] of [
      [['bases'], [], {}],
      [['bases', 'list', '--json'], ['list'], {}],
      [['bases', 'upload', 'net.zip', '--name', 'my net'], ['upload', 'net.zip'], { name: 'my net' }],
      [['bases', 'show', 'b-1'], ['show', 'b-1'], {}],
      [['bases', 'delete', 'b-1'], ['delete', 'b-1'], {}],
    ] as const) {
      const parsed = parseCommandLine(args, noEnv);
      assert.ok(parsed !== 'help');
      assert.equal(parsed.command, 'bases');
      assert.deepEqual([parsed.operands, parsed.options], [operands, options], args.join(' '));
    }
  });

  it('submit takes the network, where it starts, the layers it trains and the input size, and needs no --model', () => {
    const parsed = parseCommandLine(
      ['submit', '--dataset', 'd-1', '--init-from', 'imagenet', '--train-layers', 'top', '--input-size', '96'],
      noEnv,
    );
    assert.ok(parsed !== 'help');
    assert.deepEqual(parsed.options, {
      dataset: 'd-1',
      'init-from': 'imagenet',
      'train-layers': 'top',
      'input-size': '96',
    });
  });

  it('experiment takes submit with --base, --grid, --name, --metric and --follow, and watch, show, cancel or delete with an id', () => {
    const submit = parseCommandLine(
      [
        'experiment',
        'submit',
        '--base',
        '{"epochs":2}',
        '--grid',
        '{"model":["lenet5"]}',
        '--name',
        'n',
        '--metric',
        'testLoss',
        '--follow',
      ],
      noEnv,
    );
    assert.ok(submit !== 'help');
    assert.equal(submit.command, 'experiment');
    assert.deepEqual(submit.operands, ['submit']);
    assert.deepEqual(submit.options, {
      base: '{"epochs":2}',
      grid: '{"model":["lenet5"]}',
      name: 'n',
      metric: 'testLoss',
    });
    assert.deepEqual([...submit.flags], ['follow']);
    for (const action of ['watch', 'show', 'cancel', 'delete']) {
      const parsed = parseCommandLine(['experiment', action, 'exp-1', '--json'], noEnv);
      assert.ok(parsed !== 'help');
      assert.deepEqual([parsed.operands, parsed.json], [[action, 'exp-1'], true]);
    }
  });

  it('--help anywhere asks for the usage', () => {
    assert.equal(parseCommandLine(['--help'], noEnv), 'help');
    assert.equal(parseCommandLine(['submit', '--help'], noEnv), 'help');
  });

  it('refuses unknown commands, options another command owns, wrong operand counts and non-http servers', () => {
    const refused: [string[], RegExp][] = [
      [[], /no command given/],
      [['train'], /unknown command "train"/],
      [['watch', '--epochs', '2', 'job-1'], /watch takes no option --epochs/],
      [['submit', '--colour-depth'], /unknown option --colour-depth/],
      [['submit', '--colour', 'grey'], /submit takes no option --colour/],
      [['datasets'], /datasets takes upload <archive>, list, show <id> or delete <id>/],
      [['datasets', 'frobnicate'], /datasets takes upload, list, show or delete, not "frobnicate"/],
      [['datasets', 'upload'], /datasets upload takes one archive file/],
      [['datasets', 'show'], /datasets show takes one data set id/],
      [['datasets', 'list', 'extra'], /datasets list takes no operands/],
      [['watch'], /watch takes one job id/],
      [['experiment'], /experiment takes submit, watch <id>, show <id>, cancel <id> or delete <id>/],
      [['experiment', 'run'], /experiment takes submit, watch, show, cancel or delete, not "run"/],
      [['delete'], /delete takes one job id/],
      [['experiment', 'show'], /experiment show takes one experiment id/],
      [['experiment', 'submit', 'x'], /experiment submit takes no operands/],
      [['bases', 'add', 'x.zip'], /bases takes list, upload, show or delete, not "add"/],
      [['bases', 'upload'], /bases upload takes one zip file/],
      [['bases', 'delete'], /bases delete takes one base id/],
      [['bases', 'list', 'x'], /bases list takes no operands/],
      [['bases', 'upload', 'x.zip', '--wait'], /bases takes no option --wait/],
      [['experiment', 'submit', '--epochs', '2'], /experiment takes no option --epochs/],
      [['submit', '--grid', '{}'], /submit takes no option --grid/],
      [['predict', 'job-1'], /predict takes a job id and one or more image files/],
      [['model'], /model takes one job id/],
      [['list', '-o', 'x'], /list takes no option -o/],
      [['list', '--url', 'ftp://h'], /--url must be an http\(s\) URL/],
    ];
    for (const [args, message] of refused) {
      assert.throws(
        () => parseCommandLine(args, noEnv),
        (error: unknown) => error instanceof UsageError && message.test(error.message),
        args.join(' '),
      );
    }
    assert.throws(
      () => parseCommandLine(['list'], { TRAINER_URL: 'not a url' }),
      /TRAINER_URL must be an http\(s\) URL/,
    );
  });
});
