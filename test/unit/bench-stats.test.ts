import { describe, expect, it } from 'vitest';
import { iperfBitsPerSecond, iperfTcp, iperfUdp, median, pingRtts, quantile, spread } from '../../src/tools/bench/stats.js';
import { parseCpuTicks } from '../../src/tools/kernel/process.js';

describe('bench stats', () => {
  it('reads iperf3 JSON and ping output', () => {
    expect(iperfBitsPerSecond('{"end":{"sum_received":{"bits_per_second":1.5e9}}}')).toBe(1.5e9);
    expect(() => iperfBitsPerSecond('{"error":"unable to connect"}')).toThrow(/unable to connect/);
    const text = 'PING 10.244.2.2\n64 bytes from 10.244.2.2: icmp_seq=1 ttl=62 time=0.061 ms\n64 bytes from 10.244.2.2: icmp_seq=2 ttl=62 time=0.120 ms\n';
    expect(pingRtts(text)).toEqual([0.061, 0.12]);
  });

  it('reads what the receiver got in TCP and UDP tests', () => {
    expect(iperfTcp('{"end":{"sum_received":{"bits_per_second":8e9,"bytes":1e9,"seconds":1.0}}}')).toEqual({ bitsPerSecond: 8e9, bytes: 1e9, seconds: 1 });
    // iperf3 3.12, -u -l 1400 -b 0: end.sum_received counts what arrived.
    const udp = '{"end":{"sum_received":{"seconds":2,"bytes":98670600,"bits_per_second":7.8e8,"lost_packets":93321,"packets":163800}}}';
    const u = iperfUdp(udp, 1400);
    expect(u.datagramsPerSecond).toBe((163800 - 93321) / 2);
    expect(u.lossPercent).toBeCloseTo(56.97, 2);
    expect(u).toMatchObject({ sent: 163800, lost: 93321, payloadBytes: 1400 });
  });

  it('takes nearest-rank quantiles and spreads', () => {
    const xs = Array.from({ length: 200 }, (_, i) => i + 1);
    expect(median(xs)).toBe(100);
    expect(quantile(xs, 0.99)).toBe(198);
    expect(median([3, 1, 2])).toBe(2);
    expect(Number.isNaN(median([]))).toBe(true);
    expect(spread([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, n: 3 });
  });

  it('reads utime + stime from /proc/PID/stat, command names with spaces and parens included', () => {
    const stat = '4242 (node (twill) x) S 1 4242 4242 0 -1 4194560 9000 0 12 0 250 75 0 0 20 0 11 0 123456 1000000 5000';
    expect(parseCpuTicks(stat)).toBe(325);
    expect(parseCpuTicks('garbage')).toBeNull();
  });
});
