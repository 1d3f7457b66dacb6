/** Pure helpers for benchmark figures: parsing tool output and summarising samples. */
import { TwillError } from '../../errors.js';

export interface TcpSample {
  /** Received throughput, all streams summed. */
  readonly bitsPerSecond: number;
  readonly bytes: number;
  readonly seconds: number;
}

export interface UdpSample {
  readonly payloadBytes: number;
  /** Datagrams that arrived, per second of the test. */
  readonly datagramsPerSecond: number;
  readonly sent: number;
  readonly lost: number;
  readonly lossPercent: number;
  readonly seconds: number;
}

interface IperfSum {
  readonly bits_per_second?: number;
  readonly bytes?: number;
  readonly seconds?: number;
  readonly packets?: number;
  readonly lost_packets?: number;
}

function receivedSum(json: string): IperfSum {
  const report = JSON.parse(json) as { end?: { sum_received?: IperfSum }; error?: string };
  if (report.error) throw new TwillError('TWILL_ERR_KERNEL_COMMAND', `iperf3: ${report.error}`, { details: { error: report.error } });
  const sum = report.end?.sum_received;
  if (!sum || typeof sum.bits_per_second !== 'number') throw new Error('iperf3 report has no end.sum_received.bits_per_second');
  return sum;
}

/** Received throughput in bit/s from iperf3's JSON report (all streams summed). */
export function iperfBitsPerSecond(json: string): number {
  return iperfTcp(json).bitsPerSecond;
}

/** A TCP test as the receiver saw it, from iperf3's JSON report. */
export function iperfTcp(json: string): TcpSample {
  const sum = receivedSum(json);
  return { bitsPerSecond: sum.bits_per_second ?? 0, bytes: sum.bytes ?? 0, seconds: sum.seconds ?? 0 };
}

/** A UDP test (`-u -l payloadBytes`): datagrams received per second and the loss, from iperf3's JSON. */
export function iperfUdp(json: string, payloadBytes: number): UdpSample {
  const sum = receivedSum(json);
  const sent = sum.packets ?? 0;
  const lost = sum.lost_packets ?? 0;
  const seconds = sum.seconds ?? 0;
  return {
    payloadBytes,
    datagramsPerSecond: seconds > 0 ? (sent - lost) / seconds : 0,
    sent,
    lost,
    lossPercent: sent > 0 ? (100 * lost) / sent : 0,
    seconds,
  };
}

/** Round-trip times in ms, one per reply line of ping's output (`time=0.045 ms`). */
export function pingRtts(text: string): number[] {
  return [...text.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

/** The q-quantile (0..1) by nearest rank over a copy sorted ascending. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export const median = (samples: readonly number[]): number => quantile(samples, 0.5);

/** A figure over repeated runs: the median, and the spread as min and max. */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

export function spread(samples: readonly number[]): Spread {
  return { median: median(samples), min: Math.min(...samples), max: Math.max(...samples), n: samples.length };
}
