#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { errorCode, isTwillError } from '../errors.js';
import { VERSION } from '../version.js';
import { registerAgentCommand } from './agent-cmd.js';
import { registerBenchCommand } from '../tools/bench/command.js';
import { registerConfigCommands } from './config-cmd.js';
import { registerLabCommands } from '../tools/lab/command.js';
import { registerStatusCommand } from './status-cmd.js';
import { registerTraceCommand } from './trace-cmd.js';

/** The CLI entry: the only place in twill that calls process.exit. */
async function main(argv: string[]): Promise<number> {
  const program = new Command('twill')
    .description('twill: a per-node overlay network agent, compatible with flannel')
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride();
  registerConfigCommands(program);
  registerAgentCommand(program);
  registerLabCommands(program);
  registerBenchCommand(program);
  registerStatusCommand(program);
  registerTraceCommand(program);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    const code = errorCode(err);
    process.stderr.write(`twill: ${err instanceof Error ? err.message : String(err)} [${code}]\n`);
    return isTwillError(err) ? 2 : 1;
  }
}

main(process.argv).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`twill: ${String(err)}\n`);
    process.exit(1);
  },
);
