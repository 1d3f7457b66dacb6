/**
 * The ICMP errors the udp tunnel writes pass a token bucket: a burst, then the refill rate;
 * the rest are counted as suppressed (status, `twill status`, metrics), never a crash.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Forwarder } from '../../src/backend/udp/forward.js';
import { ICMP_BURST, ICMP_RATE_PER_SEC } from '../../src/backend/udp/icmp.js';
import { registerUdpMetrics } from '../../src/backend/udp/metrics.js';
import { describeUdpStatus } from '../../src/backend/udp/status.js';
import { createUdpBackend } from '../../src/backend/udp/index.js';
import type { ExecFn } from '../../src/kernel/index.js';
import { fakeKernel } from '../support/fake-kernel.js';
import { createLogger } from '../../src/log.js';
import { parseCidr, parseIp } from '../../src/lib/ipv4.js';
import { TokenBucket } from '../../src/lib/token-bucket.js';
import { FakeTun, FakeUdpNetwork, makeIpv4Packet } from '../support/udp-fakes.js';

/** A clock that moves only when told (ms). */
function clock() {
  let ms = 5_000;
  return { now: () => ms, advance: (by: number) => void (ms += by) };
}

const takes = (bucket: TokenBucket, n: number) => Array.from({ length: n }, () => bucket.take()).filter(Boolean).length;

describe('token bucket', () => {
  it('lets a full burst through, then one per 1/rate seconds, never more than the burst after a pause', () => {
    const c = clock();
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 20, now: c.now });
    expect(takes(bucket, 25)).toBe(20);
    c.advance(99);
    expect(bucket.take()).toBe(false); // 0.99 of a token
    c.advance(1);
    expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    c.advance(50);
    c.advance(50); // fractions add up
    expect(takes(bucket, 5)).toBe(1);
    c.advance(1000);
    expect(takes(bucket, 25)).toBe(10);
    c.advance(3_600_000); // an hour idle: still only a burst
    expect(takes(bucket, 100)).toBe(20);
  });

  it('refills nothing when the clock steps back, and carries on from there', () => {
    const c = clock();
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 2, now: c.now });
    expect(takes(bucket, 3)).toBe(2);
    c.advance(-10_000);
    expect(bucket.take()).toBe(false);
    c.advance(100);
    expect(bucket.take()).toBe(true);
  });
});

describe('ICMP rate limit in the forwarder', () => {
  const own = parseCidr('10.244.1.0/24')!;
  const noRoute = (i: number) => makeIpv4Packet({ src: '10.244.1.5', dst: `10.244.200.${i % 250}` });

  it('answers a burst, then the rate; the rest are counted as suppressed', () => {
    const c = clock();
    const fwd = new Forwarder({ ownSubnet: own, tunAddress: own.addr, mtu: 1472, now: c.now });
    const answer = (n: number) => {
      let sent = 0;
      for (let i = 0; i < n; i++) {
        const pkt = noRoute(i);
        expect(fwd.outbound(pkt)).toBe('no-route');
        if (fwd.icmpFor(pkt, 'no-route') !== null) sent++;
      }
      return sent;
    };
    expect([ICMP_RATE_PER_SEC, ICMP_BURST]).toEqual([10, 20]);
    expect(answer(100)).toBe(20);
    c.advance(1000);
    expect(answer(100)).toBe(10);
    expect(fwd.counters).toMatchObject({ icmpSent: 30, icmpSuppressed: 170 });
    expect(fwd.counters.drops['no-route']).toBe(200);
  });

  it('time exceeded shares the bucket; a packet that never gets an ICMP error takes no token and is not counted', () => {
    const c = clock();
    const fwd = new Forwarder({ ownSubnet: own, tunAddress: own.addr, mtu: 1472, icmpLimit: { ratePerSec: 1, burst: 2 }, now: c.now });
    const icmpError = makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.200.1', protocol: 1, payload: Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]) });
    const fragment = makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.200.1', fragmentOffset: 185 });
    for (let i = 0; i < 10; i++) {
      expect(fwd.icmpFor(icmpError, 'no-route')).toBeNull();
      expect(fwd.icmpFor(fragment, 'ttl-expired')).toBeNull();
    }
    expect(fwd.counters).toMatchObject({ icmpSent: 0, icmpSuppressed: 0 });
    expect(fwd.icmpFor(noRoute(1), 'ttl-expired')![20]).toBe(11);
    expect(fwd.icmpFor(noRoute(2), 'no-route')![20]).toBe(3);
    expect(fwd.icmpFor(noRoute(3), 'ttl-expired')).toBeNull();
    expect(fwd.counters).toMatchObject({ icmpSent: 2, icmpSuppressed: 1 });
  });

  it('through the backend: a flood to an unknown destination gets a burst of ICMP into the TUN; status, twill status and metrics count the rest', async () => {
    const tuns: FakeTun[] = [];
    const exec = (async () => ({ stdout: '', stderr: '', code: 0 })) as ExecFn;
    const config = { network: parseCidr('10.244.0.0/16')!, subnetLen: 24, subnetMin: 0, subnetMax: 0, backend: { type: 'udp', raw: {} } };
    const ownLease = { subnet: own, attrs: { publicIP: '198.18.0.11', publicIPv6: null }, etcdLeaseId: '7', modRevision: '1' };
    const backend = createUdpBackend(
      { logger: createLogger({ level: 'silent' }), network: config, ownLease, iface: { name: 'eth0', address: '198.18.0.11', mtu: 1500 }, kernel: fakeKernel().kernel, options: { port: 8285 }, flags: { tunName: 'twill0', tunOffload: 'off', datapath: 'dgram' } },
      { openTun: (req) => tuns[tuns.push(new FakeTun(req.name, req.offload)) - 1]!, openTransport: new FakeUdpNetwork().opener('198.18.0.11'), tunConfig: { exec, writeProc: async () => undefined } },
    );
    await backend.start();
    try {
      // One read batch, handled in well under 100 ms: the bucket gives its burst and not a token more.
      tuns[0]!.emit(Array.from({ length: 500 }, (_, i) => noRoute(i)));
      expect(tuns[0]!.written).toHaveLength(20);
      expect(tuns[0]!.written.every((p) => p[9] === 1 && p[20] === 3 && p.readUInt32BE(12) === parseIp('10.244.1.0'))).toBe(true);
      const details = backend.status().details!;
      expect(details).toMatchObject({ tunnel: { icmpSent: 20, icmpSuppressed: 480 }, drops: { 'no-route': 500 } });
      expect(describeUdpStatus(details)[0]?.[1]).toContain('icmp sent 20 (480 rate-limited)');
      const registry = new Registry();
      registerUdpMetrics(registry, () => details);
      const text = await registry.metrics();
      expect(text).toMatch(/^twill_tunnel_icmp_errors_total\{result="sent"\} 20$/m);
      expect(text).toMatch(/^twill_tunnel_icmp_errors_total\{result="suppressed"\} 480$/m);
      expect(text).toMatch(/^twill_tunnel_device_recreated_total 0$/m);
    } finally {
      await backend.stop();
    }
  });
});
