/** Pure: which labs a bench run needs, in which order, and about how long each step takes. */
import { TwillError } from '../../errors.js';
import type { LabBackend } from '../lab/topology.js';
import { BENCH_CASES, BUSY_PING_INTERVAL_S, BUSY_PINGS, PING_INTERVAL_S, type BenchCase, type BenchSettings, type Yardstick } from './results.js';

export interface LabRun {
  readonly backend: LabBackend;
  /** Who carries the packets: twill's agents, or a yardstick forwarder in their place. */
  readonly dataPath: DataPath;
  /** The cases measured in this lab, in the order given by --cases. */
  readonly cases: readonly BenchCase[];
  /** udp-dgram: the agents move packets with the Node.js reference instead of the native pump. */
  readonly udpDatapath?: 'dgram';
}

export type DataPath = 'twill' | Yardstick;

const LAB_OF: Readonly<Record<Exclude<BenchCase, 'underlay'>, Pick<LabRun, 'backend' | 'dataPath' | 'udpDatapath'>>> = {
  'host-gw': { backend: 'host-gw', dataPath: 'twill' },
  vxlan: { backend: 'vxlan', dataPath: 'twill' },
  udp: { backend: 'udp', dataPath: 'twill' },
  'udp-dgram': { backend: 'udp', dataPath: 'twill', udpDatapath: 'dgram' },
  'node-udp': { backend: 'udp', dataPath: 'node-udp' },
  'flannel-udp': { backend: 'udp', dataPath: 'flannel-udp' },
};

/**
 * One lab per case. The underlay (host namespace to host namespace, no twill) needs a lab but
 * no particular backend: it shares host-gw's lab if that runs, else the first twill lab, else
 * gets a host-gw lab. node-udp and flannel-udp are udp labs whose agents the bench replaces.
 */
export function planLabs(cases: readonly BenchCase[]): LabRun[] {
  const labs = cases.flatMap((c): LabRun[] => (c === 'underlay' ? [] : [{ ...LAB_OF[c], cases: [c] }]));
  if (!cases.includes('underlay')) return labs;
  const host = labs.find((l) => l.backend === 'host-gw') ?? labs.find((l) => l.dataPath === 'twill' && !l.udpDatapath);
  if (!host) return [...labs, { backend: 'host-gw', dataPath: 'twill', cases: ['underlay'] }];
  return labs.map((l) => (l === host ? { ...l, cases: cases.filter((c) => c === 'underlay' || l.cases.includes(c)) } : l));
}

/** `--cases underlay,udp`: known names, each once, at least one. */
export function parseCases(text: string): BenchCase[] {
  const names = text.split(',').map((c) => c.trim()).filter((c) => c !== '');
  const bad = names.filter((n) => !(BENCH_CASES as readonly string[]).includes(n));
  if (bad.length > 0 || names.length === 0) {
    throw new TwillError('TWILL_ERR_OPTION_INVALID', `--cases: ${bad.length > 0 ? `unknown case(s) ${bad.join(', ')}` : 'name at least one case'} (have: ${BENCH_CASES.join(', ')})`, {
      details: { cases: text },
    });
  }
  return [...new Set(names as BenchCase[])];
}

/** Rough seconds per step, for "time left"; they only need to be honest to within a few seconds. */
export const estimate = {
  labUp: (hosts: number) => 4 + hosts,
  labDown: () => 2,
  ping: (pings: number, intervalSeconds = PING_INTERVAL_S) => pings * intervalSeconds + 0.5,
  iperf: (seconds: number) => seconds + 1,
  joins: (joins: number) => joins * 1,
};

/** Every step of one case run: the idle and the busy ping series, three iperf3 tests. */
export function runSeconds(s: Pick<BenchSettings, 'durationSeconds' | 'pings'>): number {
  return estimate.ping(s.pings) + estimate.ping(BUSY_PINGS, BUSY_PING_INTERVAL_S) + 3 * estimate.iperf(s.durationSeconds);
}

export function estimateSeconds(s: BenchSettings, labs: readonly LabRun[]): number {
  return labs.reduce((sum, lab) => {
    const joins = lab.dataPath === 'twill' && lab.cases.some((c) => c !== 'underlay') ? estimate.joins(s.joins) : 0;
    const swap = lab.dataPath !== 'twill' ? estimate.labDown() : 0;
    return sum + estimate.labUp(s.hosts) + estimate.labDown() + swap + joins + lab.cases.length * s.repeat * runSeconds(s);
  }, 0);
}

export function fmtDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** Numbers the steps and says how much of the estimate is left when each one starts. */
export class Progress {
  private left: number;
  private n = 0;

  constructor(
    totalSeconds: number,
    private readonly report: (line: string) => void,
  ) {
    this.left = totalSeconds;
  }

  step(where: string, what: string, estSeconds: number): void {
    this.n++;
    this.report(`[${where}] ${what} (step ${this.n}, about ${fmtDuration(this.left)} left)`);
    this.left -= estSeconds;
  }
}
