// The scale bench's fake peers and the parsers its driver reads the agent's progress with
// (src/tools/scripts/scale-peers.ts): pure, so checked here byte for byte.
import { describe, expect, it } from 'vitest';
import { parseCidr, parseIp, contains } from '../../src/lib/ipv4.js';
import { parseLeaseKey, parseLeaseValue } from '../../src/subnet/lease-format.js';
import {
  chunks,
  expectedPeers,
  fakeLease,
  fakePublicIP,
  fakeRoutes,
  fakeSubnet,
  MAX_FAKE_PEERS,
  MAX_PEER_INDEX,
  parseMetric,
  parseProcNetRoute,
  parseTrieStatPrefixes,
  PEER_SEGMENT,
  planChurn,
  sameMap,
  txnBody,
} from '../../src/tools/scripts/scale-peers.js';

const TRIESTAT = `Basic info: size of leaf: 48 bytes, size of tnode: 40 bytes.
Main:
\tAver depth:     2.00
\tMax depth:      3
\tLeaves:         106
\tPrefixes:       107
\tInternal nodes: 6
\t  1: 2  2: 2  3: 1  14: 1
\tPointers: 164
Null ptrs: 63
Total size: 11  kB
Local:
\tAver depth:     2.00
\tPrefixes:       9
`;

// As the kernel prints it: little-endian hex, tab-separated, a header line.
const ROUTE = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010012C6\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000012C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t0000010A\t024012C6\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t0001010A\t034012C6\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t0000A8C0\t050012C6\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0
`;

describe('fake peers', () => {
  it('number their subnets from 10.1.0.0/24, above the /16 real agents lease from', () => {
    expect([fakeSubnet(0), fakeSubnet(1), fakeSubnet(255), fakeSubnet(256), fakeSubnet(9999)]).toEqual(['10.1.0.0/24', '10.1.1.0/24', '10.1.255.0/24', '10.2.0.0/24', '10.40.15.0/24']);
    expect(fakeSubnet(MAX_PEER_INDEX)).toBe('10.255.255.0/24');
    expect(() => fakeSubnet(MAX_PEER_INDEX + 1)).toThrow(RangeError);
    expect(() => fakeSubnet(-1)).toThrow(RangeError);
  });

  it('give every peer its own on-link PublicIP in the peers\' segment, never the network, the host or the broadcast', () => {
    const seg = parseCidr(PEER_SEGMENT)!;
    const ips = new Set<string>();
    for (let i = 0; i < MAX_FAKE_PEERS; i++) {
      const ip = fakePublicIP(i);
      expect(contains(seg, parseIp(ip)!)).toBe(true);
      ips.add(ip);
    }
    expect(ips.size).toBe(MAX_FAKE_PEERS);
    expect(fakePublicIP(0)).toBe('198.18.64.2');
    expect(ips.has('198.18.64.0') || ips.has('198.18.64.1') || ips.has('198.18.127.255')).toBe(false);
    expect(fakePublicIP(5, 1)).not.toBe(fakePublicIP(5, 0)); // a new generation moves it
  });

  it('write leases in flannel\'s key and value format, the backend\'s fields included', () => {
    const l = fakeLease(0, 0, { publicIPv6: null, backendType: 'host-gw' });
    expect(l.key).toBe('/coreos.com/network/subnets/10.1.0.0-24');
    expect(l.value).toBe('{"PublicIP":"198.18.64.2","PublicIPv6":null,"BackendType":"host-gw"}');
    expect(parseLeaseKey('/coreos.com/network', l.key)).toEqual(parseCidr('10.1.0.0/24'));
    expect(parseLeaseValue(l.value)?.publicIP).toBe('198.18.64.2');
    expect(fakeLease(1, 0, { publicIPv6: null }).value).toBe('{"PublicIP":"198.18.64.3","PublicIPv6":null}'); // udp writes no BackendType
  });

  it('expect, per index and generation, a subnet via a PublicIP', () => {
    const want = expectedPeers(new Map([[0, 0], [2, 1]]));
    expect(want).toEqual(new Map([['10.1.0.0/24', fakePublicIP(0)], ['10.1.2.0/24', fakePublicIP(2, 1)]]));
    expect(sameMap(want, new Map(want))).toBe(true);
    expect(sameMap(want, new Map([['10.1.0.0/24', fakePublicIP(0)]]))).toBe(false);
    expect(sameMap(want, new Map([['10.1.0.0/24', fakePublicIP(0)], ['10.1.2.0/24', fakePublicIP(2)]]))).toBe(false);
  });

  it('go into etcd as gateway transactions with base64 keys and values', () => {
    const body = JSON.parse(txnBody([{ put: { key: '/k1', value: 'v' } }, { del: '/k2' }])) as { success: Record<string, { key: string; value?: string }>[] };
    const b = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString();
    expect(body.success).toHaveLength(2);
    expect(b(body.success[0]!.requestPut!.key)).toBe('/k1');
    expect(b(body.success[0]!.requestPut!.value)).toBe('v');
    expect(b(body.success[1]!.requestDeleteRange!.key)).toBe('/k2');
    expect(chunks([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunks([], 128)).toEqual([]);
  });
});

describe('churn plan', () => {
  const present = new Map(Array.from({ length: 100 }, (_, i) => [i, 0] as [number, number]));

  it('takes turns: a peer leaves, a new one joins, one moves; the same seed churns alike', () => {
    const a = planChurn(present, 100, 300, 13);
    expect(a.changes).toHaveLength(300);
    expect(a.changes.slice(0, 3).map((c) => c.op)).toEqual(['delete', 'put', 'put']);
    expect(planChurn(present, 100, 300, 13)).toEqual(a);
    expect(planChurn(present, 100, 300, 14).changes).not.toEqual(a.changes);
  });

  it('ends with what applying its changes in order gives, within one peer of where it began', () => {
    const plan = planChurn(present, 100, 301, 7);
    const now = new Map(present);
    let newest = 99;
    for (const c of plan.changes) {
      if (c.op === 'delete') {
        expect(now.has(c.index)).toBe(true); // only peers that are there leave
        now.delete(c.index);
      } else {
        if (!now.has(c.index)) {
          expect(c.index).toBe(newest + 1); // new peers get fresh indices, in order
          newest = c.index;
        } else expect(c.gen).toBe(now.get(c.index)! + 1);
        now.set(c.index, c.gen);
      }
      expect(Math.abs(now.size - present.size)).toBeLessThanOrEqual(1);
    }
    expect(plan.final).toEqual(now);
    expect(present.size).toBe(100); // not modified
  });

  it('only joins when nobody is there', () => {
    const plan = planChurn(new Map(), 0, 2, 1);
    expect(plan.changes[0]).toEqual({ op: 'put', index: 0, gen: 0 });
  });
});

describe('what the driver reads', () => {
  it('counts the Main table\'s prefixes in fib_triestat', () => {
    expect(parseTrieStatPrefixes(TRIESTAT)).toBe(107);
    expect(parseTrieStatPrefixes('Basic info: nothing\n')).toBeNull();
  });

  it('reads routes via a gateway from /proc/net/route, and picks those inside the network', () => {
    const routes = parseProcNetRoute(ROUTE);
    expect(routes).toEqual(
      new Map([
        ['0.0.0.0/0', '198.18.0.1'],
        ['10.1.0.0/24', '198.18.64.2'],
        ['10.1.1.0/24', '198.18.64.3'],
        ['192.168.0.0/24', '198.18.0.5'],
      ]),
    );
    expect(fakeRoutes(routes)).toEqual(new Map([['10.1.0.0/24', '198.18.64.2'], ['10.1.1.0/24', '198.18.64.3']]));
    expect(parseProcNetRoute('Iface\tDestination\n')).toEqual(new Map());
  });

  it('reads one sample of a metric, with or without labels, not its namesakes', () => {
    const text = ['# HELP twill_peers Peers.', '# TYPE twill_peers gauge', 'twill_peers_total 9', 'twill_peers 1000', 'twill_routes{backend="udp"} 998', ''].join('\n');
    expect(parseMetric(text, 'twill_peers')).toBe(1000);
    expect(parseMetric(text, 'twill_routes')).toBe(998);
    expect(parseMetric(text, 'twill_ready')).toBeNull();
  });
});
