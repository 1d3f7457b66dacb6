/** Pure helpers for benchmark figures: parsing tool output and summarising samples. */

/** Received throughput in bit/s from iperf3's JSON report (all streams summed). */
export function iperfBitsPerSecond(json: string): number {
  const report = JSON.parse(json) as { end?: { sum_received?: { bits_per_second?: number } }; error?: string };
  if (report.error) throw new Error(`iperf3: ${report.error}`);
  const bps = report.end?.sum_received?.bits_per_second;
  if (typeof bps !== 'number') throw new Error('iperf3 report has no end.sum_received.bits_per_second');
  return bps;
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
