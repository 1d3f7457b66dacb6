import type { Command } from 'commander';
import { assertYardstickBuilt } from './yardstick.js';
import { parseCases, planLabs } from './plan.js';
import { ensureWritableDir, writeReportFiles } from './report-files.js';
import { BENCH_CASES, summarize, type BenchSettings } from './results.js';
import { runBench } from './run.js';
import { registerScaleCommand } from './scale-command.js';
import { renderTables } from './table.js';
import { parseIntOption, validateLabName } from '../lab/naming.js';
import { assertBackendBuilt, assertRoot, cliEntry, findCniDir, requirePrograms, UP_PROGRAMS } from '../lab/preflight.js';
import { MAX_HOSTS } from '../lab/topology.js';
import { withInterrupt } from '../lab/interrupt.js';

interface BenchFlags {
  cases: string;
  duration: string;
  repeat: string;
  pings: string;
  hosts: string;
  joins: string;
  name: string;
  out?: string;
}

/** Everything the run needs, checked before any namespace exists. */
async function preflight(settings: BenchSettings, out: string | undefined): Promise<void> {
  assertRoot('twill bench');
  await requirePrograms(['iperf3', 'ping', 'ss', ...UP_PROGRAMS]);
  await findCniDir();
  await cliEntry();
  for (const lab of planLabs(settings.cases)) {
    assertBackendBuilt(lab.backend);
    if (lab.dataPath !== 'twill') assertYardstickBuilt(lab.dataPath);
  }
  if (out !== undefined) await ensureWritableDir(out);
}

async function bench(flags: BenchFlags): Promise<void> {
  const settings: BenchSettings = Object.freeze({
    cases: parseCases(flags.cases),
    durationSeconds: parseIntOption(flags.duration, '--duration', 1, 600),
    repeat: parseIntOption(flags.repeat, '--repeat', 1, 100),
    pings: parseIntOption(flags.pings, '--pings', 10, 10_000),
    hosts: parseIntOption(flags.hosts, '--hosts', 2, MAX_HOSTS),
    joins: parseIntOption(flags.joins, '--joins', 1, 100),
  });
  const lab = validateLabName(flags.name);
  await preflight(settings, flags.out);
  const results = await withInterrupt('bench', (deps) => runBench({ settings, lab }, deps));
  process.stdout.write(renderTables(summarize(results)));
  if (flags.out !== undefined) {
    const files = await writeReportFiles(flags.out, results);
    process.stderr.write(`bench: wrote ${files.join(', ')}\n`);
  }
}

export function registerBenchCommand(program: Command): void {
  const benchCommand = program
    .command('bench')
    .description('measure the underlay, host-gw and udp side by side: TCP and UDP throughput, RTT, agent CPU, convergence (root)')
    .option('--cases <list>', "cases, comma-separated: underlay, host-gw, vxlan, udp (the native pump), udp-dgram (the same agents on the Node.js reference data path), node-udp (flannel's udp proxy loop in Node.js: the floor for Node), flannel-udp (that loop in C, the yardstick for udp)", BENCH_CASES.join(','))
    .option('--duration <seconds>', 'length of each iperf3 test', '10')
    .option('--repeat <n>', 'runs per case; the median and the spread are reported', '1')
    .option('--pings <n>', 'pings per run, 10 ms apart', '200')
    .option('--hosts <n>', 'hosts per lab (traffic goes h1 → h2; convergence is timed on all)', '2')
    .option('--joins <n>', 'simulated joins timed for convergence', '5')
    .option('--name <lab>', 'lab name (a running lab of this name and backend is reused)', 'bench')
    .option('--out <dir>', 'write results.json, report.md and report.svg here')
    .action((flags: BenchFlags) => bench(flags));
  registerScaleCommand(benchCommand);
}
