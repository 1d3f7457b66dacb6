import { access } from 'node:fs/promises';
import type { Command } from 'commander';
import { TwillError } from '../../errors.js';
import { withInterrupt } from '../lab/interrupt.js';
import { listNetns } from '../kernel/netns.js';
import { isLabNamespace, parseIntOption, validateLabName } from '../lab/naming.js';
import { assertBackendBuilt, assertRoot, cliEntry, findCniDir, requirePrograms, UP_PROGRAMS } from '../lab/preflight.js';
import { LAB_BACKENDS } from '../lab/topology.js';
import { MAX_FAKE_PEERS } from '../scripts/scale-peers.js';
import { SCALE_DRIVER_PROGRAM } from './scale-lab.js';
import { DEFAULT_BACKENDS, DEFAULT_PEERS, parseBackends, parsePeers } from './scale-plan.js';
import { summarizeScale, type ScaleSettings } from './scale-results.js';
import { ensureWritableDir } from './report-files.js';
import { writeScaleReportFiles } from './scale-report-files.js';
import { runScale } from './scale-run.js';
import { renderScaleTables } from './scale-table.js';

export interface ScaleFlags {
  peers: string;
  backends: string;
  churnPeers: string;
  churnRate: string;
  churnSeconds: string;
  idleSeconds: string;
  floorRepeat: string;
  probes: string;
  name: string;
  out?: string;
}

/** The driver polls at most this often. */
const POLL_MS = 20;

/** Everything the run needs, checked before any namespace exists. */
async function preflight(settings: ScaleSettings, lab: string, out: string | undefined): Promise<void> {
  assertRoot('twill bench scale');
  // The floor's namespace comes first: not into a lab of that name that is up, nor over leftovers.
  const taken = (await listNetns()).filter((ns) => isLabNamespace(lab, ns));
  if (taken.length > 0) throw new TwillError('TWILL_ERR_LAB_STATE', `lab "${lab}" is already up or left over (namespaces ${taken.join(', ')} exist); run "twill lab down --name ${lab}" first or pick another --name`);
  await requirePrograms(UP_PROGRAMS);
  await findCniDir();
  await cliEntry();
  for (const b of settings.backends) assertBackendBuilt(b);
  await access(SCALE_DRIVER_PROGRAM).catch((e: unknown) => {
    throw new TwillError('TWILL_ERR_KERNEL_NOT_FOUND', `the scale driver ${SCALE_DRIVER_PROGRAM} is missing (run "npm run build")`, { cause: e });
  });
  if (out !== undefined) await ensureWritableDir(out);
}

async function scale(flags: ScaleFlags): Promise<void> {
  const settings: ScaleSettings = Object.freeze({
    peers: parsePeers(flags.peers),
    backends: parseBackends(flags.backends, LAB_BACKENDS),
    churnPeers: parseIntOption(flags.churnPeers, '--churn-peers', 1, MAX_FAKE_PEERS),
    churnRate: parseIntOption(flags.churnRate, '--churn-rate', 1, 1000),
    churnSeconds: parseIntOption(flags.churnSeconds, '--churn-seconds', 1, 3600),
    idleSeconds: parseIntOption(flags.idleSeconds, '--idle-seconds', 1, 3600),
    floorRepeat: parseIntOption(flags.floorRepeat, '--floor-repeat', 1, 20),
    apiProbes: parseIntOption(flags.probes, '--probes', 1, 1000),
    pollMs: POLL_MS,
  });
  const lab = validateLabName(flags.name);
  await preflight(settings, lab, flags.out);
  const results = await withInterrupt('bench scale', (deps) => runScale({ settings, lab }, deps));
  process.stdout.write(renderScaleTables(summarizeScale(results)));
  if (flags.out !== undefined) {
    const files = await writeScaleReportFiles(flags.out, results);
    process.stderr.write(`bench scale: wrote ${files.join(', ')}\n`);
  }
}

/** Options `twill bench` and `twill bench scale` both have. */
const SHARED = ['name', 'out'] as const;

/**
 * commander lets `twill bench` parse every option of the command line, also those after `scale`
 * (the root program does not stop at subcommands), so `bench scale --out DIR` sets bench's --out.
 * The shared ones given on the command line are scale's; any other of bench's is an error rather
 * than silently ignored.
 */
export function withBenchOptions(flags: ScaleFlags, bench: Command | null): ScaleFlags {
  if (!bench) return flags;
  const given = bench.options.map((o) => o.attributeName()).filter((k) => bench.getOptionValueSource(k) === 'cli');
  const foreign = given.filter((k) => !(SHARED as readonly string[]).includes(k));
  if (foreign.length > 0) {
    const names = bench.options.filter((o) => foreign.includes(o.attributeName())).map((o) => o.long ?? o.flags);
    throw new TwillError('TWILL_ERR_OPTION_INVALID', `twill bench scale does not take ${names.join(', ')} (an option of twill bench)`, { details: { options: names } });
  }
  const parent = bench.opts<Partial<ScaleFlags>>();
  return { ...flags, ...Object.fromEntries(given.map((k) => [k, parent[k as keyof ScaleFlags]])) };
}

/** `twill bench scale`: a subcommand of `twill bench`. */
export function registerScaleCommand(bench: Command): void {
  bench
    .command('scale')
    .description('one real agent per backend against N fake peers in etcd: cold start, bursts, churn, idle CPU, RSS, API size and latency, each against the kernel\'s floor (root)')
    .option('--peers <list>', 'peer counts, comma-separated', DEFAULT_PEERS)
    .option('--backends <list>', `backends, comma-separated (${LAB_BACKENDS.join(', ')})`, DEFAULT_BACKENDS)
    .option('--churn-peers <n>', 'peers present while churning', '1000')
    .option('--churn-rate <n>', 'changes per second while churning', '50')
    .option('--churn-seconds <n>', 'how long to churn', '30')
    .option('--idle-seconds <n>', "how long the agent's idle CPU is read, per peer count", '60')
    .option('--floor-repeat <n>', "fresh namespaces the kernel's floor is measured in, per peer count (the median is used)", '3')
    .option('--probes <n>', 'GETs of /v1/status and of /metrics, per peer count (the median is used)', '10')
    .option('--name <lab>', 'lab name (namespaces twl-<name>-*)', 'scale')
    .option('--out <dir>', 'write results.json, report.md and report.svg here')
    .action((flags: ScaleFlags, cmd: Command) => scale(withBenchOptions(flags, cmd.parent)));
}
