#!/usr/bin/env node
// vcm-collector: verify, judge and store signed results from vcm agents, and expose metrics.
import { CommanderError } from 'commander';
import { program } from './cli-program.js';
import { stopQuietlyWhenStdoutCloses } from '../agent/terminal.js';
import { CollectorError, isCollectorError } from './errors.js';

function fail(err: CollectorError): void {
  process.stderr.write(`vcm-collector: ${err.code}: ${err.message}\n`);
  process.exitCode = 2;
}

stopQuietlyWhenStdoutCloses();
program.parseAsync(process.argv).catch((err: unknown) => {
  if (isCollectorError(err)) return fail(err);
  if (err instanceof CommanderError) {
    // Help and the version asked for, or help shown for a command given without its subcommand.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
      process.exitCode = err.exitCode;
      return;
    }
    // An unknown command or option, a missing or invalid argument: one line, no help dump.
    return fail(new CollectorError('COL_ERR_USAGE', `${err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ')} (see --help)`));
  }
  const { code, syscall } = err as NodeJS.ErrnoException;
  // Only the listener's own failure: an EACCES on a file is not an address problem.
  if ((code === 'EADDRINUSE' || code === 'EACCES') && syscall === 'listen') {
    return fail(new CollectorError('COL_ERR_CONFIG', `cannot listen: ${(err as Error).message}`));
  }
  process.stderr.write(`vcm-collector: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
