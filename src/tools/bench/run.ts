import { arch, cpus, release, totalmem } from 'node:os';
import { backendFactory } from '../../backend/index.js';
import { TwillError } from '../../errors.js';
import { listNetns } from '../kernel/netns.js';
import { iperf3, ping } from '../kernel/probes.js';
import { isAlive, processCpuSeconds } from '../kernel/process.js';
import { labDown } from '../lab/down.js';
import { defaultLabDir } from '../lab/naming.js';
import { loadState, type LabState } from '../lab/state.js';
import type { LabBackend } from '../lab/topology.js';
import { labUp, type LabDeps } from '../lab/up.js';
import { CONVERGENCE_METHOD, measureJoins, removeJoinLease } from './convergence.js';
import { estimate, estimateSeconds, planLabs, Progress, type LabRun } from './plan.js';
import { BUSY_PING_INTERVAL_S, BUSY_PINGS, PING_INTERVAL_S, RESULTS_SCHEMA, type AgentCpuSample, type BenchCase, type BenchResults, type BenchSettings, type CaseResult, type JoinSample, type Machine, type RunSample } from './results.js';
import { iperfTcp, iperfUdp, pingRtts } from './stats.js';
import { replaceAgents, yardstickName } from './yardstick.js';

export interface BenchOptions {
  readonly settings: BenchSettings;
  /** Lab name: namespaces `twl-<name>-*`, directory /tmp/twill-lab/<name>. */
  readonly lab: string;
}

const UDP_PAYLOAD = 1400;

export function machine(): Machine {
  const cpu = cpus();
  return {
    cores: cpu.length,
    cpuModel: cpu[0]?.model.trim() ?? 'unknown CPU',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    arch: arch(),
    node: process.version,
  };
}

interface Ctx {
  readonly opts: BenchOptions;
  readonly deps: LabDeps;
  readonly progress: Progress;
}

/**
 * Measures every case: one lab per backend (the underlay shares one), each brought up (or a
 * running one of the same name and backend reused) and torn down again if the bench built it,
 * also when a step fails or the run is interrupted.
 */
export async function runBench(opts: BenchOptions, deps: LabDeps): Promise<BenchResults> {
  const date = new Date().toISOString();
  const labs = planLabs(opts.settings.cases);
  const ctx: Ctx = { opts, deps, progress: new Progress(estimateSeconds(opts.settings, labs), deps.report) };
  const byCase = new Map<BenchCase, CaseResult>();
  for (const lab of labs) for (const r of await runLab(lab, ctx)) byCase.set(r.name, r);
  const cases = opts.settings.cases.map((c) => byCase.get(c)).filter((r): r is CaseResult => r !== undefined);
  return { schema: RESULTS_SCHEMA, date, machine: machine(), settings: opts.settings, cases };
}

function step(ctx: Ctx, where: string, what: string, seconds: number): void {
  ctx.deps.signal?.throwIfAborted();
  ctx.progress.step(where, what, seconds);
}

async function runLab(lab: LabRun, ctx: Ctx): Promise<CaseResult[]> {
  const { settings } = ctx.opts;
  const name = ctx.opts.lab;
  const dir = defaultLabDir(name);
  const yardstick = lab.dataPath === 'twill' ? null : lab.dataPath;
  const where = yardstick ? `${yardstick} lab` : `${lab.backend} lab`;
  const running = lab.udpDatapath ? null : await runningLab(name, dir, lab.backend);
  // A yardstick replaces a lab's agents: never those of a lab someone else brought up.
  if (running && yardstick) throw new TwillError('TWILL_ERR_LAB_STATE', `the ${yardstick} case builds its own lab "${name}", but one is up: run "twill lab down --name ${name}" or pick another --name`);
  step(ctx, where, running ? `reusing the running lab "${name}" (${running.hosts.length} hosts)` : `lab up: ${settings.hosts} hosts, ${lab.backend}`, estimate.labUp(settings.hosts));
  let state = running ?? (await labUp({ name, dir, hosts: settings.hosts, podsPerHost: 1, backend: lab.backend, topology: 'flat', ...(lab.udpDatapath ? { udpDatapath: lab.udpDatapath } : {}) }, { ...ctx.deps, report: (l) => ctx.deps.report(`  ${l}`) }));
  const withAgents = !yardstick && lab.cases.some((c) => c !== 'underlay');
  try {
    if (yardstick) {
      step(ctx, where, `replacing h1's and h2's agents with ${yardstickName(yardstick)}`, estimate.labDown());
      state = await replaceAgents(state, yardstick, ctx.deps.signal);
    }
    const runs = new Map<BenchCase, RunSample[]>(lab.cases.map((c) => [c, []]));
    for (let i = 1; i <= settings.repeat; i++) {
      for (const c of lab.cases) runs.get(c)?.push(await measureRun(c, state, `${c} run ${i}/${settings.repeat}`, ctx));
    }
    const joins = withAgents ? await convergence(state, ctx, where, running !== null) : [];
    return lab.cases.map((c) => ({
      name: c,
      lab: { name, backend: lab.backend, reused: running !== null },
      agentInDataPath: yardstick !== null || (c !== 'underlay' && backendFactory(lab.backend).traits.carriesPackets),
      runs: runs.get(c) ?? [],
      convergence: withAgents && c !== 'underlay' ? { method: CONVERGENCE_METHOD, joins } : null,
    }));
  } finally {
    if (!running) {
      ctx.deps.report(`[${where}] lab down: removing twl-${name}-*${ctx.deps.signal?.aborted ? ' (interrupted)' : ''}`);
      await labDown(name, dir).catch((e: unknown) => ctx.deps.report(`lab down failed: ${String(e)}; run "twill lab down --name ${name}"`));
    }
  }
}

/** A lab of this name that is up with this backend, flat, with a pod on h1 and on h2; else null. */
async function runningLab(name: string, dir: string, backend: LabBackend): Promise<LabState | null> {
  const state = await loadState(dir).catch(() => null);
  if (!state || state.phase !== 'up' || state.options.backend !== backend || state.options.topology !== 'flat') return null;
  const [h1, h2] = state.hosts;
  if (!h1 || !h2 || !(await listNetns()).includes(h2.ns) || !endpoints(state, 'host-gw')) return null;
  return state;
}

interface Endpoints {
  readonly fromNs: string;
  readonly toNs: string;
  readonly toIp: string;
}

/** Pod h1-p1 → the first pod on h2; the underlay: h1's namespace → h2's eth0 address. */
function endpoints(state: LabState, c: BenchCase): Endpoints | null {
  const [h1, h2] = state.hosts;
  if (!h1 || !h2) return null;
  if (c === 'underlay') return { fromNs: h1.ns, toNs: h2.ns, toIp: h2.ip };
  const from = state.pods.find((p) => p.host === h1.id);
  const to = state.pods.find((p) => p.host === h2.id);
  return from && to?.ip ? { fromNs: from.ns, toNs: to.ns, toIp: to.ip } : null;
}

async function measureRun(c: BenchCase, state: LabState, where: string, ctx: Ctx): Promise<RunSample> {
  const { settings } = ctx.opts;
  const signal = ctx.deps.signal;
  const ends = endpoints(state, c);
  if (!ends) throw new TwillError('TWILL_ERR_LAB_STATE', `lab "${state.options.name}" has no pod on h1 and h2 to measure between`);
  const iperf = { serverNs: ends.toNs, clientNs: ends.fromNs, serverIp: ends.toIp, seconds: settings.durationSeconds, signal };
  const d = settings.durationSeconds;

  step(ctx, where, `ping ×${settings.pings}, ${PING_INTERVAL_S * 1000} ms apart (idle path)`, estimate.ping(settings.pings));
  const rttMs = pingRtts(await ping(ends.fromNs, ends.toIp, settings.pings, PING_INTERVAL_S, signal));
  if (rttMs.length === 0) throw noReplies(where, ends, 'idle');
  step(ctx, where, `ping ×${BUSY_PINGS}, ${BUSY_PING_INTERVAL_S * 1000} ms apart (busy path)`, estimate.ping(BUSY_PINGS, BUSY_PING_INTERVAL_S));
  const rttBusyMs = pingRtts(await ping(ends.fromNs, ends.toIp, BUSY_PINGS, BUSY_PING_INTERVAL_S, signal));
  if (rttBusyMs.length === 0) throw noReplies(where, ends, 'busy');

  step(ctx, where, `iperf3 TCP, 1 stream, ${d} s`, estimate.iperf(d));
  const agents = c === 'underlay' ? [] : state.hosts.slice(0, 2);
  const before = await cpuSeconds(agents);
  const tcp1 = iperfTcp(await iperf3({ ...iperf, streams: 1 }));
  const after = await cpuSeconds(agents);
  const agentCpu: AgentCpuSample | null = before !== null && after !== null ? { hosts: agents.map((h) => h.id), cpuSeconds: after - before, bytes: tcp1.bytes } : null;

  step(ctx, where, `iperf3 TCP, 4 streams, ${d} s`, estimate.iperf(d));
  const tcp4 = iperfTcp(await iperf3({ ...iperf, streams: 4 }));
  step(ctx, where, `iperf3 UDP, ${UDP_PAYLOAD} B datagrams, unlimited rate, ${d} s`, estimate.iperf(d));
  const udp = iperfUdp(await iperf3({ ...iperf, streams: 1, udpPayloadBytes: UDP_PAYLOAD }), UDP_PAYLOAD);
  return { tcp1, tcp4, udp, rttMs, pingsSent: settings.pings, rttBusyMs, busyPingsSent: BUSY_PINGS, agentCpu };
}

const noReplies = (where: string, ends: Endpoints, series: 'idle' | 'busy'): TwillError =>
  new TwillError('TWILL_ERR_LAB_STATE', `${where}: no ping replies from ${ends.toIp} (${ends.toNs}) in the ${series} series`);

/** Summed CPU seconds of the hosts' agents; null without agents or when one is gone. */
async function cpuSeconds(hosts: readonly LabState['hosts'][number][]): Promise<number | null> {
  if (hosts.length === 0) return null;
  let sum = 0;
  for (const h of hosts) {
    const s = h.pid !== null && isAlive(h.pid) ? await processCpuSeconds(h.pid) : null;
    if (s === null) return null;
    sum += s;
  }
  return sum;
}

async function convergence(state: LabState, ctx: Ctx, where: string, reused: boolean): Promise<JoinSample[]> {
  const n = ctx.opts.settings.joins;
  step(ctx, where, `convergence: ${n} simulated joins, ${state.hosts.length} hosts`, estimate.joins(n));
  try {
    return await measureJoins(state, n, ctx.deps.signal);
  } catch (err) {
    // A lab the bench built goes down anyway; one it reused keeps running, so the lease goes.
    if (reused) await removeJoinLease(state).catch(() => undefined);
    throw err;
  }
}
