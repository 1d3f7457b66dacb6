import { median, quantile, spread, type Spread, type TcpSample, type UdpSample } from './stats.js';

/**
 * results.json: every raw sample of one `twill bench` run, the machine and the options. The
 * summary (medians, spreads, ratios) is derived from it by `summarize`, which the report, the
 * chart and the tests all use. Pure.
 */
export const BENCH_CASES = ['underlay', 'host-gw', 'vxlan', 'udp', 'udp-dgram', 'node-udp', 'flannel-udp'] as const;
export type BenchCase = (typeof BENCH_CASES)[number];
/** The cases whose forwarders the bench runs in a udp lab in place of the agents (yardstick.ts). */
export const YARDSTICKS = ['node-udp', 'flannel-udp'] as const satisfies readonly BenchCase[];
export type Yardstick = (typeof YARDSTICKS)[number];

export const RESULTS_SCHEMA = 'twill-bench/2';

/**
 * The two ping series of a run, from the same namespace to the same address: idle (the
 * --pings count, 10 ms apart, the path goes cold between packets) and then busy (back to back,
 * 0.2 ms apart, which only root may ask of ping). Here, not in run.ts, so the tables can say how
 * the series were taken.
 */
export const PING_INTERVAL_S = 0.01;
export const BUSY_PINGS = 1000;
export const BUSY_PING_INTERVAL_S = 0.0002;

export interface Machine {
  readonly cores: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly arch: string;
  readonly node: string;
}

export interface BenchSettings {
  readonly cases: readonly BenchCase[];
  readonly durationSeconds: number;
  readonly repeat: number;
  readonly pings: number;
  readonly hosts: number;
  readonly joins: number;
}

export interface AgentCpuSample {
  /** The hosts whose agents were read: the sender's and the receiver's. */
  readonly hosts: readonly string[];
  /** utime + stime of those agents over the single-stream TCP test. */
  readonly cpuSeconds: number;
  /** Bytes the receiver got in that test. */
  readonly bytes: number;
}

export interface RunSample {
  readonly tcp1: TcpSample;
  readonly tcp4: TcpSample;
  readonly udp: UdpSample;
  /** One per ping reply: the idle series (PING_INTERVAL_S apart). */
  readonly rttMs: readonly number[];
  readonly pingsSent: number;
  /** One per ping reply: the busy series (BUSY_PING_INTERVAL_S apart), taken right after the idle one. */
  readonly rttBusyMs: readonly number[];
  readonly busyPingsSent: number;
  /** null where there is no agent (underlay). */
  readonly agentCpu: AgentCpuSample | null;
}

export interface JoinSample {
  /** ms from just before the etcd put to the peer being programmed, per host. */
  readonly hostsMs: Readonly<Record<string, number>>;
}

export interface CaseResult {
  readonly name: BenchCase;
  /** The lab backend the case ran in, and whether the bench brought that lab up itself. */
  readonly lab: { readonly name: string; readonly backend: string; readonly reused: boolean };
  /** Whether the agents carry the packets (udp) or only program routes (host-gw). */
  readonly agentInDataPath: boolean;
  readonly runs: readonly RunSample[];
  /** null for the underlay: no agent programs anything for it. */
  readonly convergence: { readonly method: string; readonly joins: readonly JoinSample[] } | null;
}

export interface BenchResults {
  readonly schema: typeof RESULTS_SCHEMA;
  /** When the run started, ISO 8601. */
  readonly date: string;
  readonly machine: Machine;
  readonly settings: BenchSettings;
  readonly cases: readonly CaseResult[];
}

export interface Ratios {
  readonly tcp1: number;
  readonly tcp4: number;
  readonly udp: number;
  readonly rttMedian: number;
  readonly rttBusyMedian: number;
}

/** ms a case's round trip adds over host-gw's: difference of the medians, per ping series. */
export interface AddedRtt {
  readonly idle: number;
  readonly busy: number;
}

export interface CaseSummary {
  readonly name: BenchCase;
  readonly runs: number;
  readonly tcp1Bps: Spread;
  readonly tcp4Bps: Spread;
  readonly udpDatagramsPerSecond: Spread;
  readonly udpLossPercent: Spread;
  /** Per run: the median and the 99th percentile of its idle pings; then median and spread over runs. */
  readonly rttMedianMs: Spread;
  readonly rttP99Ms: Spread;
  /** Per run the median of its busy pings; then median and spread over runs. */
  readonly rttBusyMedianMs: Spread;
  /** Replies counted, idle and busy series. */
  readonly pings: number;
  readonly busyPings: number;
  /** Agent CPU seconds per GB (1e9 bytes) received; null without agents. */
  readonly cpuSecondsPerGB: Spread | null;
  readonly agentInDataPath: boolean;
  /** Per join the slowest host; median and worst over the joins. */
  readonly convergenceMs: { readonly median: number; readonly worst: number; readonly joins: number } | null;
  /** This case's medians over the underlay's and host-gw's (null when that case did not run). */
  readonly vsUnderlay: Ratios | null;
  readonly vsHostGw: Ratios | null;
  /** Round trip over host-gw's (negative: faster); 0 for host-gw, null when host-gw did not run. */
  readonly addedRttMs: AddedRtt | null;
  /** The udp yardstick: this case over flannel's udp proxy loop, and its round trip over that one's. */
  readonly vsFlannelUdp: Ratios | null;
  readonly addedRttOverFlannelUdpMs: AddedRtt | null;
  /** Round trip over the same loop in Node.js (node-udp): what this case adds to Node's floor. */
  readonly addedRttOverNodeUdpMs: AddedRtt | null;
}

export const cpuSecondsPerGB = (s: AgentCpuSample): number => (s.bytes > 0 ? s.cpuSeconds / (s.bytes / 1e9) : NaN);

/** A join's convergence: the last host to program the new peer. */
export const joinMs = (j: JoinSample): number => Math.max(...Object.values(j.hostsMs));

function baseFigures(c: CaseResult) {
  const runs = c.runs;
  const cpu = runs.flatMap((r) => (r.agentCpu ? [cpuSecondsPerGB(r.agentCpu)] : []));
  const joins = c.convergence?.joins.map(joinMs) ?? [];
  return {
    name: c.name,
    runs: runs.length,
    tcp1Bps: spread(runs.map((r) => r.tcp1.bitsPerSecond)),
    tcp4Bps: spread(runs.map((r) => r.tcp4.bitsPerSecond)),
    udpDatagramsPerSecond: spread(runs.map((r) => r.udp.datagramsPerSecond)),
    udpLossPercent: spread(runs.map((r) => r.udp.lossPercent)),
    rttMedianMs: spread(runs.map((r) => median(r.rttMs))),
    rttP99Ms: spread(runs.map((r) => quantile(r.rttMs, 0.99))),
    rttBusyMedianMs: spread(runs.map((r) => median(r.rttBusyMs))),
    pings: runs.reduce((n, r) => n + r.rttMs.length, 0),
    busyPings: runs.reduce((n, r) => n + r.rttBusyMs.length, 0),
    cpuSecondsPerGB: cpu.length > 0 ? spread(cpu) : null,
    agentInDataPath: c.agentInDataPath,
    convergenceMs: joins.length > 0 ? { median: median(joins), worst: Math.max(...joins), joins: joins.length } : null,
  };
}

type Figures = ReturnType<typeof baseFigures>;

function ratios(c: Figures, base: Figures | undefined): Ratios | null {
  if (!base) return null;
  return {
    tcp1: c.tcp1Bps.median / base.tcp1Bps.median,
    tcp4: c.tcp4Bps.median / base.tcp4Bps.median,
    udp: c.udpDatagramsPerSecond.median / base.udpDatagramsPerSecond.median,
    rttMedian: c.rttMedianMs.median / base.rttMedianMs.median,
    rttBusyMedian: c.rttBusyMedianMs.median / base.rttBusyMedianMs.median,
  };
}

function addedRtt(c: Figures, base: Figures | undefined): AddedRtt | null {
  if (!base) return null;
  return { idle: c.rttMedianMs.median - base.rttMedianMs.median, busy: c.rttBusyMedianMs.median - base.rttBusyMedianMs.median };
}

/** Medians and spreads per case, each case's ratio to the underlay and to host-gw, and its round trip over host-gw's. */
export function summarize(results: Pick<BenchResults, 'cases'>): CaseSummary[] {
  const figures = results.cases.map(baseFigures);
  const underlay = figures.find((f) => f.name === 'underlay');
  const hostGw = figures.find((f) => f.name === 'host-gw');
  const flannel = figures.find((f) => f.name === 'flannel-udp');
  const nodeUdp = figures.find((f) => f.name === 'node-udp');
  return figures.map((f) => ({
    ...f,
    vsUnderlay: ratios(f, underlay),
    vsHostGw: ratios(f, hostGw),
    addedRttMs: addedRtt(f, hostGw),
    vsFlannelUdp: ratios(f, flannel),
    addedRttOverFlannelUdpMs: addedRtt(f, flannel),
    addedRttOverNodeUdpMs: addedRtt(f, nodeUdp),
  }));
}
