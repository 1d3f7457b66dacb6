// The native data path's bookkeeping (src/backend/udp/native-data-path.ts) over a fake pump:
// one table swap per commit, per-peer counters carried across swaps and forgotten with the
// peer, the pump's totals and drops mapped to the reference's names, the device order on stop.
import { describe, expect, it } from 'vitest';
import type { PumpPeer, UdpPump } from '../../src/kernel/udp-pump.js';
import type { TunDevice } from '../../src/kernel/tun-types.js';
import { NativeDataPath } from '../../src/backend/udp/native-data-path.js';
import { parseCidr } from '../../src/lib/ipv4.js';

const net = (t: string) => parseCidr(t)!;

/** A pump whose table counts `perPeer` [in pkts, in bytes, out pkts, out bytes] for every peer. */
function fakePump(perPeer: readonly number[]) {
  const calls: string[] = [];
  let table: readonly PumpPeer[] = [];
  const counts = (n: number) => new Float64Array(Array.from({ length: n }, () => perPeer).flat());
  const pump = {
    start: () => calls.push('start'),
    stop: () => calls.push('stop'),
    close: () => calls.push('close'),
    setPeers: (peers: readonly PumpPeer[]) => {
      calls.push(`set ${peers.map((p) => p.publicIP).join(',')}`);
      const old = counts(table.length);
      table = peers;
      return old;
    },
    counters: () => ({
      stats: { packetsIn: 7, bytesIn: 700, packetsOut: 9, bytesOut: 900, icmpSent: 1, icmpSuppressed: 2, groSuperPackets: 3, groSegments: 30, tsoSuperPackets: 4, tsoSegments: 40, gsoSends: 5, gsoSegments: 50, udpGroReads: 6, udpGroSegments: 60, sendmmsgCalls: 1, recvmmsgCalls: 1, wakeups: 2 },
      drops: Float64Array.from([0, 1, 2, 0, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 5]),
      traffic: counts(table.length),
      offloads: { udpGro: true, udpSegment: false },
    }),
  };
  return { pump: pump as unknown as UdpPump, calls };
}

function fakeTun(calls: string[]): TunDevice {
  return { name: 'twill0', offload: 'gro', tso: true, start: () => undefined, write: () => 0, close: () => calls.push('tun close') };
}

describe('NativeDataPath', () => {
  it('swaps the table once per commit, and only when peers changed', () => {
    const { pump, calls } = fakePump([1, 10, 2, 20]);
    const path = new NativeDataPath(pump, fakeTun(calls), () => undefined);
    path.setPeer(net('10.244.1.0/24'), '198.18.0.11');
    path.setPeer(net('10.244.2.0/24'), '198.18.0.12');
    path.start();
    path.setPeer(net('10.244.2.0/24'), '198.18.0.12'); // no change
    path.commit();
    path.deletePeer(net('10.244.9.0/24')); // unknown: no change
    path.commit();
    path.setPeer(net('10.244.2.0/24'), '198.18.0.22'); // moved
    path.deletePeer(net('10.244.1.0/24'));
    path.commit();
    expect(calls).toEqual(['set 198.18.0.11,198.18.0.12', 'start', 'set 198.18.0.22']);
  });

  it("carries a peer's counters across swaps, and forgets a removed peer's", () => {
    const { pump, calls } = fakePump([1, 10, 2, 20]);
    const path = new NativeDataPath(pump, fakeTun(calls), () => undefined);
    path.setPeer(net('10.244.1.0/24'), '198.18.0.11');
    path.setPeer(net('10.244.2.0/24'), '198.18.0.12');
    path.start();
    path.setPeer(net('10.244.3.0/24'), '198.18.0.13');
    path.commit(); // the first table's counts are carried
    path.deletePeer(net('10.244.2.0/24'));
    path.commit();
    const t = path.peerTraffic();
    expect([...t.keys()]).toEqual(['10.244.1.0/24', '10.244.3.0/24']);
    // 10.244.1.0/24: three tables (carried twice, plus the current one); 10.244.3.0/24: two.
    expect(t.get('10.244.1.0/24')).toEqual({ packetsIn: 3, bytesIn: 30, packetsOut: 6, bytesOut: 60 });
    expect(t.get('10.244.3.0/24')).toEqual({ packetsIn: 2, bytesIn: 20, packetsOut: 4, bytesOut: 40 });
  });

  it("reports the pump's totals, drops by the reference's names, and which offloads are on", () => {
    const { pump, calls } = fakePump([0, 0, 0, 0]);
    const path = new NativeDataPath(pump, fakeTun(calls), () => undefined);
    const t = path.totals();
    expect(t.traffic).toEqual({ packetsIn: 7, bytesIn: 700, packetsOut: 9, bytesOut: 900 });
    expect({ icmpSent: t.icmpSent, icmpSuppressed: t.icmpSuppressed, groSuperPackets: t.groSuperPackets, groSegments: t.groSegments }).toEqual({ icmpSent: 1, icmpSuppressed: 2, groSuperPackets: 3, groSegments: 30 });
    expect(Object.entries(t.drops).filter(([, n]) => n > 0)).toEqual([['truncated', 1], ['not-ipv4', 2], ['unknown-peer', 3], ['no-route', 4], ['tun-write-failed', 5]]);
    expect(t.offloads).toEqual({ tunVnetHdr: true, tunTso: true, tunUso: false, udpGro: true, udpSegment: false });
    expect(t.pump).toMatchObject({ tsoSuperPackets: 4, gsoSends: 5, udpGroReads: 6 });
  });

  it('stops the pump before it closes the device, on detach and on stop', async () => {
    const { pump, calls } = fakePump([0, 0, 0, 0]);
    const path = new NativeDataPath(pump, fakeTun(calls), () => undefined);
    path.start();
    path.detachTun();
    path.attachTun(fakeTun(calls));
    await path.stop();
    path.attachTun(fakeTun(calls)); // after stop: closed at once
    expect(calls).toEqual(['start', 'stop', 'tun close', 'stop', 'start', 'close', 'tun close', 'tun close']);
  });
});
