/**
 * Pure: results.json of `twill bench scale`: every raw figure of one run (per peer count and
 * backend), the kernel's floor measured in the same run, the machine and the options; and the
 * summary derived from them (medians, ratios to the floor, the targets), which the
 * report, the chart and the tests all use.
 */
import type { Machine } from './results.js';
import { median } from './stats.js';

export const SCALE_RESULTS_SCHEMA = 'twill-bench-scale/1';

export interface ScaleSettings {
  /** Peer counts, ascending. */
  readonly peers: readonly number[];
  readonly backends: readonly string[];
  readonly churnPeers: number;
  /** Changes per second, and for how long. */
  readonly churnRate: number;
  readonly churnSeconds: number;
  /** How long the agent's idle CPU is read, after SETTLE_SECONDS. */
  readonly idleSeconds: number;
  /** Fresh namespaces the floor is measured in, per peer count. */
  readonly floorRepeat: number;
  /** GETs of /v1/status and of /metrics, per peer count and backend. */
  readonly apiProbes: number;
  /** The driver's shortest time between two polls. */
  readonly pollMs: number;
}

/** Wait after the agent has programmed every peer before its idle CPU is read. */
export const SETTLE_SECONDS = 2;

/** The kernel's floor for N routes: one `ip -batch` of N adds, then one of N deletes, in a fresh namespace; one sample per repeat. */
export interface FloorSample {
  readonly peers: number;
  readonly addMs: readonly number[];
  readonly deleteMs: readonly number[];
}

/** A timed step: from its start (the agent started, the first write sent) to every peer programmed. */
export interface Timing {
  readonly ms: number;
  /** How late the end may be seen (the gap since the previous poll); 0 when it is the agent's own stamp. */
  readonly resolutionMs: number;
  readonly polls: number;
}

export interface BurstTiming extends Timing {
  /** Of `ms`, how long the writes to etcd took. */
  readonly writeMs: number;
}

export interface ApiSample {
  readonly path: string;
  readonly bytes: number;
  readonly latenciesMs: readonly number[];
}

/** One peer count with one backend: a real agent, N fake peers. */
export interface CellResult {
  readonly backend: string;
  readonly peers: number;
  readonly coldStart: Timing | null;
  readonly burstDelete: BurstTiming | null;
  readonly burstAdd: BurstTiming | null;
  /**
   * Agent CPU over `seconds` with every peer programmed and nothing changing: its own (utime +
   * stime) and that of the programs it ran meanwhile (`ip`, `nft`, `iptables`: cutime + cstime).
   */
  readonly idle: { readonly seconds: number; readonly cpuSeconds: number; readonly childCpuSeconds: number } | null;
  /** After the idle window; the peak is VmHWM at the end of the cell (after the bursts). */
  readonly memory: { readonly rssBytes: number; readonly peakBytes: number } | null;
  readonly api: readonly ApiSample[];
  /** Why the cell stopped early (its remaining figures are null). */
  readonly error: string | null;
}

export interface ChurnResult {
  readonly backend: string;
  /** Peers present when it started. */
  readonly peers: number;
  readonly rate: number;
  readonly seconds: number;
  readonly changes: number;
  /** From the first change sent to the last (`seconds` when etcd kept up with the pace). */
  readonly writeSeconds: number | null;
  /** From the last change sent to the agent having exactly the peers present. */
  readonly lag: Timing | null;
  /** Agent CPU from the first change to the end of the lag: its own, and its programs'. */
  readonly cpuSeconds: number | null;
  readonly childCpuSeconds: number | null;
  readonly wallSeconds: number | null;
  readonly error: string | null;
}

export interface ScaleResults {
  readonly schema: typeof SCALE_RESULTS_SCHEMA;
  readonly date: string;
  readonly machine: Machine;
  /** os.loadavg() when the run started and ended: how busy the machine was. */
  readonly loadAverage: { readonly start: readonly number[]; readonly end: readonly number[] };
  readonly settings: ScaleSettings;
  readonly floor: readonly FloorSample[];
  readonly cells: readonly CellResult[];
  readonly churn: readonly ChurnResult[];
}

export interface FloorSummary {
  readonly peers: number;
  /** Medians over the repeats. */
  readonly addS: number;
  readonly deleteS: number;
}

export interface FloorRatios {
  readonly coldStart: number | null;
  readonly burstAdd: number | null;
  readonly burstDelete: number | null;
}

export interface CellSummary {
  readonly backend: string;
  readonly peers: number;
  readonly coldStartS: number | null;
  readonly burstAddS: number | null;
  readonly burstDeleteS: number | null;
  /** Each over the floor of the same N (adds for the cold start and the burst of adds). */
  readonly vsFloor: FloorRatios;
  /** Percent of one core: the agent and the programs it ran; the agent alone. */
  readonly idleCpuPercent: number | null;
  readonly idleOwnCpuPercent: number | null;
  readonly rssMB: number | null;
  readonly peakRssMB: number | null;
  readonly status: { readonly bytes: number; readonly medianMs: number } | null;
  readonly metrics: { readonly bytes: number; readonly medianMs: number } | null;
  readonly error: string | null;
}

export interface ChurnSummary {
  readonly backend: string;
  readonly peers: number;
  readonly rate: number;
  readonly seconds: number;
  /** How long sending the changes took (longer than `seconds` when etcd could not keep the pace). */
  readonly writeSeconds: number | null;
  readonly lagS: number | null;
  /** Share of one core: the agent and the programs it ran; the agent alone. */
  readonly cpuCores: number | null;
  readonly ownCpuCores: number | null;
  readonly error: string | null;
}

export interface TargetCheck {
  readonly target: string;
  readonly backend: string;
  readonly measured: string;
  /** null: not measured in this run (that N did not run, or failed). */
  readonly pass: boolean | null;
}

export interface ScaleSummary {
  readonly floor: readonly FloorSummary[];
  readonly cells: readonly CellSummary[];
  readonly churn: readonly ChurnSummary[];
  readonly targets: readonly TargetCheck[];
}

export const MB = 2 ** 20;

export function summarizeFloor(f: FloorSample): FloorSummary {
  return { peers: f.peers, addS: median(f.addMs) / 1000, deleteS: median(f.deleteMs) / 1000 };
}

const seconds = (t: Timing | null): number | null => (t ? t.ms / 1000 : null);
const over = (x: number | null, base: number | undefined): number | null => (x === null || base === undefined || !(base > 0) ? null : x / base);

function api(c: CellResult, path: string): CellSummary['status'] {
  const a = c.api.find((x) => x.path === path);
  return a && a.latenciesMs.length > 0 ? { bytes: a.bytes, medianMs: median(a.latenciesMs) } : null;
}

export function summarizeCell(c: CellResult, floor: FloorSummary | undefined): CellSummary {
  const [coldStartS, burstAddS, burstDeleteS] = [seconds(c.coldStart), seconds(c.burstAdd), seconds(c.burstDelete)];
  return {
    backend: c.backend,
    peers: c.peers,
    coldStartS,
    burstAddS,
    burstDeleteS,
    vsFloor: { coldStart: over(coldStartS, floor?.addS), burstAdd: over(burstAddS, floor?.addS), burstDelete: over(burstDeleteS, floor?.deleteS) },
    idleCpuPercent: c.idle && c.idle.seconds > 0 ? (100 * (c.idle.cpuSeconds + c.idle.childCpuSeconds)) / c.idle.seconds : null,
    idleOwnCpuPercent: c.idle && c.idle.seconds > 0 ? (100 * c.idle.cpuSeconds) / c.idle.seconds : null,
    rssMB: c.memory ? c.memory.rssBytes / MB : null,
    peakRssMB: c.memory ? c.memory.peakBytes / MB : null,
    status: api(c, '/v1/status'),
    metrics: api(c, '/metrics'),
    error: c.error,
  };
}

export function summarizeChurn(c: ChurnResult): ChurnSummary {
  return {
    backend: c.backend,
    peers: c.peers,
    rate: c.rate,
    seconds: c.seconds,
    writeSeconds: c.writeSeconds,
    lagS: seconds(c.lag),
    cpuCores: c.cpuSeconds !== null && c.childCpuSeconds !== null && c.wallSeconds ? (c.cpuSeconds + c.childCpuSeconds) / c.wallSeconds : null,
    ownCpuCores: c.cpuSeconds !== null && c.wallSeconds ? c.cpuSeconds / c.wallSeconds : null,
    error: c.error,
  };
}

/** The targets on this machine. */
export const TARGETS = {
  burstPeers: 5000,
  burstFloorFactor: 3,
  burstSlackS: 0.5,
  churnLagS: 1,
  churnCpuCores: 0.3,
  idlePeers: 5000,
  idleCpuPercent: 1,
  rssPeers: 10_000,
  rssMB: 150,
} as const;

const fmt = (x: number, digits = 2): string => String(Number(x.toPrecision(digits + 1)));

/** Each target per backend: measured, and whether it holds (null when that N did not run). */
export function checkTargets(settings: Pick<ScaleSettings, 'backends'>, floor: readonly FloorSummary[], cells: readonly CellSummary[], churn: readonly ChurnSummary[]): TargetCheck[] {
  const T = TARGETS;
  const out: TargetCheck[] = [];
  const cellOf = (backend: string, peers: number) => cells.find((c) => c.backend === backend && c.peers === peers);
  const f = floor.find((x) => x.peers === T.burstPeers);
  for (const backend of settings.backends) {
    const burst = cellOf(backend, T.burstPeers);
    for (const [what, value, base] of [
      ['add', burst?.burstAddS ?? null, f?.addS],
      ['delete', burst?.burstDeleteS ?? null, f?.deleteS],
    ] as const) {
      const limit = base === undefined ? null : T.burstFloorFactor * base + T.burstSlackS;
      out.push({
        target: `burst of ${T.burstPeers} ${what}s ≤ ${T.burstFloorFactor} × floor + ${T.burstSlackS} s`,
        backend,
        measured: value === null || limit === null ? 'not measured' : `${fmt(value)} s (limit ${fmt(limit)} s)`,
        pass: value === null || limit === null ? null : value <= limit,
      });
    }
    const ch = churn.find((c) => c.backend === backend);
    out.push({
      target: `churn lag < ${T.churnLagS} s and agent CPU < ${T.churnCpuCores} core`,
      backend,
      measured: ch?.lagS == null || ch.cpuCores === null ? 'not measured' : `${fmt(ch.lagS)} s, ${fmt(ch.cpuCores)} core (${ch.peers} peers, ${ch.rate}/s for ${ch.seconds} s)`,
      pass: ch?.lagS == null || ch.cpuCores === null ? null : ch.lagS < T.churnLagS && ch.cpuCores < T.churnCpuCores,
    });
    const idle = cellOf(backend, T.idlePeers)?.idleCpuPercent ?? null;
    out.push({ target: `idle CPU at ${T.idlePeers} peers < ${T.idleCpuPercent} % of a core`, backend, measured: idle === null ? 'not measured' : `${fmt(idle)} %`, pass: idle === null ? null : idle < T.idleCpuPercent });
    const mem = cellOf(backend, T.rssPeers);
    const rss = mem?.rssMB ?? null;
    out.push({
      target: `RSS at ${T.rssPeers} peers < ${T.rssMB} MB`,
      backend,
      measured: rss === null ? 'not measured' : `${fmt(rss)} MB (peak ${fmt(mem?.peakRssMB ?? NaN)} MB)`,
      pass: rss === null ? null : rss < T.rssMB,
    });
  }
  return out;
}

export function summarizeScale(results: Pick<ScaleResults, 'settings' | 'floor' | 'cells' | 'churn'>): ScaleSummary {
  const floor = results.floor.map(summarizeFloor);
  const cells = results.cells.map((c) => summarizeCell(c, floor.find((f) => f.peers === c.peers)));
  const churn = results.churn.map(summarizeChurn);
  return { floor, cells, churn, targets: checkTargets(results.settings, floor, cells, churn) };
}
