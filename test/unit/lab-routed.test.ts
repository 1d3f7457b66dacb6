import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isTwillError } from '../../src/errors.js';
import { isLabNamespace } from '../../src/tools/lab/naming.js';
import { initialState, loadState } from '../../src/tools/lab/state.js';
import { planLab, planNamespaces, type LabOptions } from '../../src/tools/lab/topology.js';
import { hostSegment, parseTopology, planUnderlay } from '../../src/tools/lab/underlay.js';
import { forwarders, wiringBatches } from '../../src/tools/lab/wiring.js';
import { contains, parseCidr, parseIp } from '../../src/lib/ipv4.js';

const opts: LabOptions = { name: 'x', hosts: 4, podsPerHost: 1, backend: 'host-gw', topology: 'routed', dir: '/tmp/twill-lab/x' };
const plan = planLab(opts);
const BENCHMARK = parseCidr('198.18.0.0/15')!;

describe('lab topology option', () => {
  it('parses flat and routed, rejects anything else with an option error', () => {
    expect(parseTopology('flat')).toBe('flat');
    expect(parseTopology('routed')).toBe('routed');
    for (const bad of ['', 'Routed', 'mesh']) {
      try {
        parseTopology(bad);
        expect.unreachable();
      } catch (e) {
        expect(isTwillError(e, 'TWILL_ERR_OPTION_INVALID')).toBe(true);
      }
    }
  });

  it('a flat underlay is one segment whose bridge holds the gateway, with no router', () => {
    const u = planUnderlay('x', 'flat');
    expect(u.router).toBeNull();
    expect(u.segments.map((s) => [s.id, s.ns, s.bridgeCidr])).toEqual([['A', 'twl-x-ul', '198.18.0.1/24']]);
  });

  it('alternates hosts between the segments of a routed underlay', () => {
    const u = planUnderlay('x', 'routed');
    expect([1, 2, 3, 4, 5, 50].map((i) => hostSegment(u, i).id)).toEqual(['A', 'B', 'A', 'B', 'A', 'B']);
    expect([1, 2, 3].map((i) => hostSegment(planUnderlay('x', 'flat'), i).id)).toEqual(['A', 'A', 'A']);
  });
});

describe('routed lab plan', () => {
  it('has two plain bridges and a router holding both gateways', () => {
    expect(plan.topology).toBe('routed');
    expect(plan.segments).toEqual([
      { id: 'A', ns: 'twl-x-ul', bridge: 'br0', subnet: '198.18.0.0/24', gateway: '198.18.0.1', bridgeCidr: null, prefixLen: 24 },
      { id: 'B', ns: 'twl-x-ul2', bridge: 'br0', subnet: '198.19.0.0/24', gateway: '198.19.0.1', bridgeCidr: null, prefixLen: 24 },
    ]);
    expect(plan.router).toEqual({
      id: 'rt',
      ns: 'twl-x-rt',
      links: [
        { segmentNs: 'twl-x-ul', port: 'rt', iface: 'eth0', address: '198.18.0.1/24', gateway: null },
        { segmentNs: 'twl-x-ul2', port: 'rt', iface: 'eth1', address: '198.19.0.1/24', gateway: null },
      ],
    });
  });

  it('puts odd hosts on A and even hosts on B, each routed via its own segment gateway', () => {
    expect(plan.hosts.map((h) => [h.id, h.segment, h.ip, h.links[0]?.segmentNs, h.links[0]?.gateway])).toEqual([
      ['h1', 'A', '198.18.0.11', 'twl-x-ul', '198.18.0.1'],
      ['h2', 'B', '198.19.0.12', 'twl-x-ul2', '198.19.0.1'],
      ['h3', 'A', '198.18.0.13', 'twl-x-ul', '198.18.0.1'],
      ['h4', 'B', '198.19.0.14', 'twl-x-ul2', '198.19.0.1'],
    ]);
  });

  it('keeps etcd on segment A', () => {
    expect(plan.etcd).toMatchObject({ ns: 'twl-x-etcd', ip: '198.18.0.2', endpoint: 'http://198.18.0.2:2379' });
    expect(plan.etcd.links).toEqual([{ segmentNs: 'twl-x-ul', port: 'etcd', iface: 'eth0', address: '198.18.0.2/24', gateway: '198.18.0.1' }]);
  });

  it('uses only the benchmarking range for the underlay', () => {
    const addrs = [...plan.hosts, plan.etcd, plan.router!].flatMap((n) => n.links.map((l) => l.address.split('/')[0]!));
    expect(addrs.every((a) => contains(BENCHMARK, parseIp(a)!))).toBe(true);
    expect(new Set(addrs).size).toBe(addrs.length);
  });

  it('names every namespace as the lab`s, segments first, router before etcd and hosts', () => {
    const all = planNamespaces(plan);
    expect(all.slice(0, 4)).toEqual(['twl-x-ul', 'twl-x-ul2', 'twl-x-rt', 'twl-x-etcd']);
    expect(all).toHaveLength(2 + 1 + 1 + 4 + 1 + 4);
    expect(all.every((ns) => isLabNamespace('x', ns))).toBe(true);
  });
});

describe('routed lab wiring', () => {
  const { segments, nodes } = wiringBatches(plan);
  const batch = (ns: string): readonly string[] => [...segments, ...nodes].find((b) => b.ns === ns)?.lines ?? [];

  it('gives the bridges no address and plugs each node into its own segment only', () => {
    for (const ns of ['twl-x-ul', 'twl-x-ul2']) {
      expect(batch(ns).slice(0, 3)).toEqual(['link set lo up', 'link add br0 type bridge', 'link set br0 up']);
      expect(batch(ns).some((l) => l.startsWith('addr add'))).toBe(false);
    }
    const ports = (ns: string): string[] => batch(ns).flatMap((l) => /^link set (\S+) master br0$/.exec(l)?.[1] ?? []);
    expect(ports('twl-x-ul')).toEqual(['rt', 'etcd', 'h1', 'h3', 'out']);
    expect(ports('twl-x-ul2')).toEqual(['rt', 'h2', 'h4']);
    expect(batch('twl-x-ul2')).toContain('link add rt type veth peer name eth1 netns twl-x-rt');
  });

  it('addresses both router legs, with no default route on the router', () => {
    expect(batch('twl-x-rt')).toEqual(['link set lo up', 'addr add 198.18.0.1/24 dev eth0', 'link set eth0 up', 'addr add 198.19.0.1/24 dev eth1', 'link set eth1 up']);
    expect(batch('twl-x-h2')).toContain('route add default via 198.19.0.1 dev eth0');
  });

  it('turns on IP forwarding in the router and the hosts only', () => {
    expect(forwarders(plan)).toEqual(['twl-x-rt', 'twl-x-h1', 'twl-x-h2', 'twl-x-h3', 'twl-x-h4']);
    expect(forwarders(planLab({ ...opts, topology: 'flat', hosts: 2 }))).toEqual(['twl-x-h1', 'twl-x-h2']);
  });
});

describe('routed lab state', () => {
  it('records the topology and each host segment', () => {
    const state = initialState(opts, plan);
    expect(state.options.topology).toBe('routed');
    expect(state.hosts.map((h) => h.segment)).toEqual(['A', 'B', 'A', 'B']);
  });

  it('reads a state file written before --topology existed as a flat lab', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'twill-lab-state-'));
    try {
      const old = {
        version: 1,
        phase: 'up',
        options: { name: 'x', hosts: 1, podsPerHost: 1, backend: 'host-gw', dir },
        etcd: { ns: 'twl-x-etcd', endpoint: 'http://198.18.0.2:2379', pid: 10 },
        hosts: [{ id: 'h1', ns: 'twl-x-h1', ip: '198.18.0.11', pid: 11, subnet: '10.244.3.0/24' }],
        pods: [],
      };
      await writeFile(join(dir, 'state.json'), JSON.stringify(old));
      const loaded = await loadState(dir);
      expect(loaded?.options.topology).toBe('flat');
      expect(loaded?.hosts.every((h) => h.segment === 'A')).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
