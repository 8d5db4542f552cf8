#!/usr/bin/env node
// The `trainer` command (package.json "bin"): runs the TypeScript CLI through tsx, in this process.
import process from 'node:process';
import { register } from 'tsx/esm/api';

register();
const { exitQuietlyOnBrokenPipe, runCli } = await import('./main.ts');
exitQuietlyOnBrokenPipe();
process.exitCode = await runCli(process.argv.slice(2));
