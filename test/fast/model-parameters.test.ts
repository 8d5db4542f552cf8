/**
 * The parameter counts GET /models answers are arithmetic on each model's layer sizes: here they
 * are checked against the networks TensorFlow.js builds, for every model on every data set, and
 * the catalog route is checked to reach no TensorFlow.js module.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { datasetNames, modelNames } from '../../src/contract/names.ts';
import { datasets } from '../../src/datasets/index.ts';
import { modelFacts } from '../../src/models/catalog.ts';
import { models } from '../../src/models/index.ts';
import { parameterCount } from '../../src/models/parameter-count.ts';
import { startBackend } from '../../src/backends/select.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

before(async () => {
  assert.equal(await startBackend('wasm', pino({ level: 'silent' })), 'wasm');
});

describe('static parameter counts', () => {
  it("ResNet-20 has the paper's 0.27 M parameters for 10 classes (its option-A shortcuts have none)", () => {
    assert.equal(parameterCount(modelFacts.resnet20, datasets.cifar10), 269_722);
  });

  for (const name of modelNames) {
    for (const dataset of datasetNames) {
      it(`${name} on ${dataset}: the counted parameters are the built network's trainable ones`, () => {
        const source = datasets[dataset];
        // AlexNet takes seconds and 227 MB to build: one network at a time, disposed at once.
        const network = models[name].build(source.shape, source.classNames.length, 0);
        // countParams() counts BatchNorm's moving statistics too, which don't train.
        const trainable = network.trainableWeights.reduce((count, weight) => count + weight.read().size, 0);
        try {
          assert.equal(parameterCount(modelFacts[name], source), trainable);
          assert.equal(parameterCount(models[name], source), trainable);
        } finally {
          network.dispose();
        }
      });
    }
  }

  it('the buildable models carry the catalog facts', () => {
    for (const name of modelNames) {
      const facts = modelFacts[name];
      for (const key of Object.keys(facts) as (keyof typeof facts)[])
        assert.equal(models[name][key], facts[key], `${name}.${key}`);
    }
  });
});

/** The modules a source file imports at run time (type-only imports are erased), as paths or package names. */
function runtimeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [
    ...text.matchAll(/^\s*(?:import|export)\s+(?!type\s)[^'";]*?from\s+'([^']+)'/gm),
    ...text.matchAll(/^\s*import\s+'([^']+)'/gm),
    ...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
  ].map((match) => match[1] as string);
  return specifiers.map((specifier) =>
    specifier.startsWith('.') ? path.resolve(path.dirname(file), specifier) : specifier,
  );
}

describe('the catalog route', () => {
  it('reaches no TensorFlow.js module, directly or through its imports', () => {
    const start = path.join(root, 'src/api/routes/catalog.ts');
    const seen = new Set<string>([start]);
    const packages = new Set<string>();
    const pending = [start];
    for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
      for (const imported of runtimeImports(file)) {
        if (!path.isAbsolute(imported)) packages.add(imported);
        else if (!seen.has(imported)) {
          seen.add(imported);
          pending.push(imported);
        }
      }
    }
    const tensorflow = [...packages].filter((name) => name.startsWith('@tensorflow/'));
    assert.deepEqual(tensorflow, [], `imported from ${[...seen].map((file) => path.relative(root, file)).join(', ')}`);
    // And the walk did walk: it reached the facts and saw package imports.
    assert.ok(seen.has(path.join(root, 'src/models/catalog.ts')), 'the walk reaches the model catalog');
    assert.ok(packages.has('zod'), `the walk sees package imports: ${[...packages].join(', ')}`);
  });
});
