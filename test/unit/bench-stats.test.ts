import { describe, expect, it } from 'vitest';
import { iperfBitsPerSecond, median, pingRtts, quantile } from '../../src/bench/stats.js';

describe('bench stats', () => {
  it('reads iperf3 JSON and ping output', () => {
    expect(iperfBitsPerSecond('{"end":{"sum_received":{"bits_per_second":1.5e9}}}')).toBe(1.5e9);
    expect(() => iperfBitsPerSecond('{"error":"unable to connect"}')).toThrow(/unable to connect/);
    const text = 'PING 10.244.2.2\n64 bytes from 10.244.2.2: icmp_seq=1 ttl=62 time=0.061 ms\n64 bytes from 10.244.2.2: icmp_seq=2 ttl=62 time=0.120 ms\n';
    expect(pingRtts(text)).toEqual([0.061, 0.12]);
  });

  it('takes nearest-rank quantiles', () => {
    const xs = Array.from({ length: 200 }, (_, i) => i + 1);
    expect(median(xs)).toBe(100);
    expect(quantile(xs, 0.99)).toBe(198);
    expect(median([3, 1, 2])).toBe(2);
    expect(Number.isNaN(median([]))).toBe(true);
  });
});
