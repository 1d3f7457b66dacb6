// Issue 17, section 4: the decision chain of `twill trace` as a pure function of captured
// state (src/trace/path.ts), for every backend, and each broken case named with its fix.
import { describe, expect, it } from 'vitest';
import { longestMatch } from '../../src/agent/trace.js';
import { parseNeighLookup } from '../../src/kernel/neigh.js';
import { tracePath, type KernelFacts } from '../../src/trace/path.js';
import type { AgentStatus, BackendSummary, PeerStatus } from '../../src/status/types.js';

const PEER: PeerStatus = { subnet: '10.244.2.0/24', publicIP: '198.18.0.12', backendType: 'host-gw', state: 'programmed', since: '2026-12-01T00:00:00.000Z' };
const DST = '10.244.2.5';

function status(over: { backend?: Partial<BackendSummary>; peers?: PeerStatus[]; ready?: boolean } = {}): AgentStatus {
  const backend: BackendSummary = { type: 'host-gw', mtu: 1500, device: null, routes: 1, ...over.backend };
  return {
    version: 't',
    state: 'running',
    ready: over.ready ?? true,
    waitingFor: over.ready === false ? ['backend'] : [],
    node: { name: 'n1', publicIP: '198.18.0.11', iface: 'eth0' },
    network: { network: '10.244.0.0/16', subnetLen: 24, subnetMin: '10.244.1.0', subnetMax: '10.244.255.0', backendType: backend.type, changedInEtcd: [] },
    lease: { subnet: '10.244.1.0/24', expiresAt: null, etcdLeaseId: '1', acquiredAt: '2026-12-01T00:00:00.000Z' },
    backend,
    etcd: { endpoints: [], connected: true, lastContact: null, watchRevision: null },
    peers: over.peers ?? [PEER],
    rejectedLeases: { total: 0, leases: [] },
  };
}

function kernel(over: Partial<KernelFacts> = {}): KernelFacts {
  return {
    route: { dev: 'eth0', gateway: '198.18.0.12' },
    routeEntry: { dst: '10.244.2.0/24', proto: '116' },
    neighbour: { ip: '198.18.0.12', state: 'REACHABLE', lladdr: '02:00:00:00:00:12' },
    ipForward: true,
    forward: { policy: 'ACCEPT', twillRules: true },
    subnetEnv: { network: '10.244.0.0/16', subnet: '10.244.1.1/24', mtu: 1500 },
    ...over,
  };
}

const codes = (t: ReturnType<typeof tracePath>) => t.problems.map((p) => p.code);
const VXLAN = { type: 'vxlan', device: 'flannel.1', mtu: 1450 };
const UDP = { type: 'udp', device: 'twill0', mtu: 1472, details: { tunnel: { port: 8285 } } };

describe('tracePath: whole paths', () => {
  it('host-gw: a routed path, no encapsulation, the next hop resolved', () => {
    const t = tracePath(DST, status(), kernel());
    expect(t).toMatchObject({ dst: DST, complete: true, problems: [] });
    expect(t.steps.map((s) => s.step)).toEqual(['destination', 'mtu', 'route', 'carriage', 'neighbour', 'forwarding']);
    expect(t.steps[0]!.text).toBe('10.244.2.5 is in 10.244.2.0/24, leased by 198.18.0.12 (host-gw), programmed since 2026-12-01T00:00:00.000Z');
    expect(t.steps.find((s) => s.step === 'route')!.text).toBe("the kernel sends it out of eth0 via 198.18.0.12, by 10.244.2.0/24, twill's (proto 116)");
    expect(t.steps.find((s) => s.step === 'carriage')!.text).toContain('routed: no encapsulation');
  });

  it('vxlan: to the VTEP, whose MAC the FDB sends to the peer', () => {
    const peer = { ...PEER, backendType: 'vxlan' };
    const k = kernel({ route: { dev: 'flannel.1', gateway: '10.244.2.0' }, neighbour: { ip: '10.244.2.0', state: 'PERMANENT', lladdr: 'aa:bb:cc:00:00:02' }, fdb: { mac: 'aa:bb:cc:00:00:02', dst: '198.18.0.12' }, subnetEnv: { network: '10.244.0.0/16', subnet: '10.244.1.1/24', mtu: 1450 } });
    const t = tracePath(DST, status({ backend: VXLAN, peers: [peer] }), k);
    expect(t.problems).toEqual([]);
    const carriage = t.steps.filter((s) => s.step === 'carriage').map((s) => s.text);
    expect(carriage).toEqual(['vxlan: the inner frame inside UDP 198.18.0.11 → 198.18.0.12:8472 (50 bytes more per packet)', 'the FDB sends aa:bb:cc:00:00:02 to 198.18.0.12']);
  });

  it('udp: into the tunnel device, with the outer addresses and port, and the peer traffic', () => {
    const peer = { ...PEER, backendType: null, traffic: { packetsIn: 3, bytesIn: 300, packetsOut: 4, bytesOut: 400 } };
    const k = kernel({ route: { dev: 'twill0' }, routeEntry: { dst: '10.244.0.0/16', proto: 'kernel' }, neighbour: null, subnetEnv: { network: '10.244.0.0/16', subnet: '10.244.1.1/24', mtu: 1472 } });
    const t = tracePath(DST, status({ backend: UDP, peers: [peer] }), k);
    expect(t.problems).toEqual([]);
    expect(t.steps[0]!.text).toContain('tunnel 4 packets out, 3 in');
    expect(t.steps.find((s) => s.step === 'carriage')!.text).toBe('udp tunnel: the packet whole inside UDP 198.18.0.11:8285 → 198.18.0.12:8285 (28 bytes more per packet)');
  });

  it("a pod of this node's own, and an address outside the Network (not an overlay path): whole", () => {
    expect(tracePath('10.244.1.7', status(), kernel({ route: { dev: 'cni0' }, routeEntry: { dst: '10.244.1.0/24', proto: 'kernel' } })).problems).toEqual([]);
    const out = tracePath('192.0.2.9', status(), kernel({ route: { dev: 'eth0', gateway: '198.18.0.1' }, routeEntry: { dst: '0.0.0.0/0', proto: 'boot' } }));
    expect(out.complete).toBe(true);
    expect(out.steps[0]!.text).toBe('192.0.2.9 is outside the Network 10.244.0.0/16: not an overlay path');
  });
});

describe('tracePath: each broken case named, with its fix', () => {
  const cases: [string, ReturnType<typeof tracePath>, string][] = [
    ['no lease owns the address', tracePath('10.244.9.9', status(), kernel()), 'no-lease'],
    ['a peer behind a router under host-gw', tracePath(DST, status({ peers: [{ ...PEER, state: 'unreachable-on-l2', reason: 'via 198.18.0.1' }] }), kernel()), 'peer-unreachable-on-l2'],
    ['a peer the agent has not programmed', tracePath(DST, status({ peers: [{ ...PEER, state: 'error', reason: 'RTNETLINK answers: Invalid argument' }] }), kernel()), 'peer-not-programmed'],
    ['no route at all', tracePath(DST, status(), kernel({ route: null, routeEntry: null })), 'no-route'],
    ["twill's route gone: the default route takes it", tracePath(DST, status(), kernel({ route: { dev: 'eth0', gateway: '198.18.0.1' }, routeEntry: { dst: '0.0.0.0/0', proto: 'boot' } })), 'wrong-route'],
    ["the right hop, by a route that is not twill's", tracePath(DST, status(), kernel({ routeEntry: { dst: '10.244.2.0/24', proto: 'static' } })), 'foreign-route'],
    ['a next hop that does not answer ARP', tracePath(DST, status(), kernel({ neighbour: { ip: '198.18.0.12', state: 'FAILED' } })), 'neighbour-failed'],
    ['vxlan without the FDB entry', tracePath(DST, status({ backend: VXLAN, peers: [{ ...PEER, backendType: 'vxlan' }] }), kernel({ route: { dev: 'flannel.1', gateway: '10.244.2.0' }, neighbour: { ip: '10.244.2.0', state: 'PERMANENT', lladdr: 'aa:bb' }, fdb: null, subnetEnv: { network: '10.244.0.0/16', subnet: '10.244.1.1/24', mtu: 1450 } })), 'fdb-missing'],
    ['ip_forward off', tracePath(DST, status(), kernel({ ipForward: false })), 'ip-forward-off'],
    ["FORWARD policy DROP without twill's rules", tracePath(DST, status(), kernel({ forward: { policy: 'DROP', twillRules: false } })), 'forward-drop'],
    ['subnet.env missing', tracePath(DST, status(), kernel({ subnetEnv: null })), 'subnet-env-missing'],
    ['subnet.env from another lease', tracePath(DST, status(), kernel({ subnetEnv: { network: '10.244.0.0/16', subnet: '10.244.7.1/24', mtu: 1500 } })), 'subnet-env-stale'],
    ['pods with a larger MTU than the path', tracePath(DST, status({ backend: UDP, peers: [{ ...PEER, backendType: null }] }), kernel({ route: { dev: 'twill0' }, neighbour: null })), 'mtu-mismatch'],
    ['an agent that is not ready', tracePath(DST, status({ ready: false }), kernel()), 'agent-not-ready'],
  ];

  it.each(cases)('%s', (_what, trace, code) => {
    expect(trace.complete).toBe(false);
    expect(codes(trace)).toEqual([code]);
    const [p] = trace.problems;
    expect(p!.message.length).toBeGreaterThan(10);
    expect(p!.fix.length).toBeGreaterThan(10);
  });

  it('FORWARD policy DROP is fine while twill\'s rules accept the Network', () => {
    expect(tracePath(DST, status(), kernel({ forward: { policy: 'DROP', twillRules: true } })).problems).toEqual([]);
  });
});

describe('the facts a trace reads from the kernel', () => {
  it('longestMatch: the route of table main that decides (longest prefix), with its protocol', () => {
    const routes = [
      { dst: '0.0.0.0/0', gateway: '198.18.0.1', dev: 'eth0', proto: 3 },
      { dst: '10.244.0.0/16', dev: 'twill0' },
      { dst: '10.244.2.0/24', gateway: '198.18.0.12', dev: 'eth0', proto: 116 },
    ];
    expect(longestMatch(routes, '10.244.2.5')).toEqual({ dst: '10.244.2.0/24', proto: '116' });
    expect(longestMatch(routes, '10.244.3.5')).toEqual({ dst: '10.244.0.0/16', proto: 'unknown' });
    expect(longestMatch(routes, '192.0.2.1')).toEqual({ dst: '0.0.0.0/0', proto: '3' });
    expect(longestMatch([], '192.0.2.1')).toBeNull();
  });

  it('parseNeighLookup: the first entry of `ip -json neigh show to IP`, states joined, MAC lower-case', () => {
    expect(parseNeighLookup('[{"dst":"198.18.0.12","dev":"eth0","lladdr":"02:AA:00:00:00:12","state":["REACHABLE"]}]')).toEqual({ ip: '198.18.0.12', state: 'REACHABLE', lladdr: '02:aa:00:00:00:12' });
    expect(parseNeighLookup('[{"dst":"198.18.0.99","dev":"eth0","state":["FAILED"]}]')).toEqual({ ip: '198.18.0.99', state: 'FAILED' });
    expect(parseNeighLookup('[]')).toBeNull();
  });
});
