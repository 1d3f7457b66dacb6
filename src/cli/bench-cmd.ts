import type { Command } from 'commander';
import { renderResults, runBench } from '../bench/run.js';
import { TwillError } from '../errors.js';
import { parseIntOption } from '../lab/naming.js';
import { assertRoot, requirePrograms } from '../lab/preflight.js';
import { parseBackend } from '../lab/topology.js';
import { withInterrupt } from './interrupt.js';

interface BenchFlags {
  cases: string;
  duration: string;
  pings: string;
}

async function bench(flags: BenchFlags): Promise<void> {
  assertRoot();
  await requirePrograms(['iperf3', 'ping', 'ss']);
  const cases = flags.cases.split(',').map((c) => parseBackend(c.trim()));
  if (cases.length === 0) throw new TwillError('TWILL_ERR_OPTION_INVALID', '--cases: name at least one backend');
  const seconds = parseIntOption(flags.duration, '--duration', 1, 600);
  const pings = parseIntOption(flags.pings, '--pings', 10, 10_000);
  const results = await withInterrupt('bench', (deps) => runBench({ cases, seconds, pings }, deps));
  process.stdout.write(renderResults(results));
}

export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('measure pod-to-pod TCP throughput and ping RTT per backend, side by side (root)')
    .option('--cases <list>', 'backends to measure, comma-separated', 'host-gw,udp')
    .option('--duration <seconds>', 'iperf3 test length per case', '10')
    .option('--pings <n>', 'pings per case (10 ms apart)', '200')
    .action((flags: BenchFlags) => bench(flags));
}
