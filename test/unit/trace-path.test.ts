// Issue 17, section 4: the decision chain of `twill trace` as a pure function of captured
// state (src/trace/path.ts), for every backend, and each broken case named with its fix; what
// twill's masquerade rules (as nft lists them) do to the traced packet.
import { describe, expect, it } from 'vitest';
import { longestMatch } from '../../src/agent/trace.js';
import { parseNeighLookup } from '../../src/kernel/neigh.js';
import { listedMasqRules, masqRules, renderTwillTable } from '../../src/rules/nft-ruleset.js';
import { masqueradeVerdict, tracePath, type KernelFacts } from '../../src/trace/path.js';
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

  it('udp: a TUN has no neighbours (a stale entry for the address is no problem); its route shadowed or gone is named with the way to look', () => {
    const peer = { ...PEER, backendType: null };
    const env = { network: '10.244.0.0/16', subnet: '10.244.1.1/24', mtu: 1472 };
    const k = kernel({ route: { dev: 'twill0' }, routeEntry: { dst: '10.244.0.0/16', proto: '116' }, neighbour: { ip: DST, state: 'FAILED' }, subnetEnv: env });
    const t = tracePath(DST, status({ backend: UDP, peers: [peer] }), k);
    expect(t.problems).toEqual([]);
    expect(t.steps.find((s) => s.step === 'neighbour')!.text).toBe('none: twill0 is a TUN device (IP packets only, no ARP)');
    const gone = tracePath(DST, status({ backend: UDP, peers: [peer] }), kernel({ route: { dev: 'eth0', gateway: '198.18.0.1' }, routeEntry: { dst: '0.0.0.0/0', proto: 'boot' }, subnetEnv: env }));
    expect(codes(gone)).toEqual(['wrong-route']);
    expect(gone.problems[0]!.fix).toBe("a route more specific than twill's 10.244.0.0/16 dev twill0 takes this subnet, or twill's was deleted (the agent puts it back at once): `ip route get 10.244.2.0`");
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

describe('tracePath: what the masquerade rules do to the packet', () => {
  const SPEC = { network: '10.244.0.0/16', subnet: '10.244.1.0/24' };
  const RULES = { rules: masqRules(SPEC) };
  const POD = '10.244.1.2';
  const masq = (dst: string, from: string | undefined, over: Partial<KernelFacts> = {}) => {
    const t = tracePath(dst, status(), kernel({ masquerade: RULES, ...over }), from);
    const steps = t.steps.filter((s) => s.step === 'masquerade');
    expect(steps).toHaveLength(1);
    expect(t.steps.at(-1)!.step).toBe('masquerade');
    return { text: steps[0]!.text, trace: t };
  };

  it('pod → pod of another node: not masqueraded, and the rule that returns it is named', () => {
    const { text, trace } = masq(DST, POD);
    expect(text).toBe('not masqueraded: rule `ip saddr 10.244.1.0/24 ip daddr 10.244.0.0/16 return` returns it, so it keeps its source 10.244.1.2');
    expect(trace.problems).toEqual([]);
  });

  it('pod → outside the Network: masqueraded to the node\'s address, by the rule as listed', () => {
    const { text, trace } = masq('192.0.2.9', POD, { route: { dev: 'eth0', gateway: '198.18.0.1' }, routeEntry: { dst: '0.0.0.0/0', proto: 'boot' } });
    expect(text).toBe("masqueraded to the node's address on eth0 by rule `ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random`");
    expect(trace.complete).toBe(true);
  });

  it('--ip-masq off: no table, no masquerade rules; said apart from a table missing while subnet.env says it is on', () => {
    expect(masq('192.0.2.9', POD, { masquerade: null }).text).toBe('no twill masquerade rules (--ip-masq off), so the CNI bridge plugin masquerades it: leaving 10.244.1.0/24, it takes the address of eth0');
    expect(masq(DST, POD, { masquerade: null }).text).toMatch(/^no twill masquerade rules \(--ip-masq off\), so the CNI bridge plugin masquerades it: leaving 10\.244\.1\.0\/24/);
    expect(masq('10.244.1.9', POD, { masquerade: null }).text).toBe('no twill masquerade rules (--ip-masq off), and the CNI bridge plugin leaves a packet within 10.244.1.0/24 or to multicast as it is');
    expect(masq('192.0.2.9', undefined, { masquerade: null }).text).toBe("no twill masquerade rules (--ip-masq off), so the CNI bridge plugin masquerades a pod's packets that leave its subnet");
    const env = { network: '10.244.0.0/16', subnet: '10.244.1.1/24', mtu: 1500, ipMasq: true };
    expect(masq('192.0.2.9', POD, { masquerade: null, subnetEnv: env }).text).toContain('subnet.env says FLANNEL_IPMASQ=true');
  });

  it('without --from: the node itself, whose own address masquerading leaves as it is', () => {
    expect(masq('192.0.2.9', undefined).text).toMatch(/^from the node itself: it leaves with the node's own address on eth0, which masquerading leaves as it is; --from <pod address>/);
  });

  it('the rest of the logic, on the actual addresses: multicast, outside → own pod, outside → peer pod, a marked rule', () => {
    expect(masq('224.0.0.251', POD).text).toBe('not masqueraded: no rule matches 10.244.1.2 → 224.0.0.251');
    expect(masq('10.244.1.7', '192.0.2.9').text).toBe('not masqueraded: rule `ip saddr != 10.244.0.0/16 ip daddr 10.244.1.0/24 return` returns it, so it keeps its source 192.0.2.9');
    expect(masq(DST, '192.0.2.9').text).toContain('by rule `ip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade fully-random`');
    // kube-proxy's mark rule never matches the unmarked traced packet; a mark compared with 0 does.
    expect(masqueradeVerdict(['meta mark & 0x00004000 == 0x00000000 return', ...RULES.rules], POD, '192.0.2.9')).toEqual({ kind: 'return', rule: 'meta mark & 0x00004000 == 0x00000000 return' });
  });

  it('rules it cannot read: "cannot tell", never a guess; counters and rules without a verdict are passed over', () => {
    expect(masq('192.0.2.9', POD, { masquerade: { rules: ['ip saddr 10.244.0.0/16 tcp dport 80 masquerade'] } }).text).toBe('cannot tell: rule `ip saddr 10.244.0.0/16 tcp dport 80 masquerade` is not one the trace can read, and none before it matches');
    expect(masq('192.0.2.9', POD, { masquerade: { unreadable: 'nft exited 1' } }).text).toBe("twill's masquerade rules could not be read: nft exited 1");
    expect(masqueradeVerdict(['ip saddr 10.244.0.0/16 counter packets 3 bytes 180', 'ip daddr 192.0.2.9 counter masquerade'], POD, '192.0.2.9')).toEqual({ kind: 'masquerade', rule: 'ip daddr 192.0.2.9 counter masquerade' });
  });

  it('no masquerade step when the rules were not read', () => {
    expect(tracePath(DST, status(), kernel()).steps.map((s) => s.step)).not.toContain('masquerade');
  });
});

describe('the facts a trace reads from the kernel', () => {
  it('listedMasqRules: the postrouting chain of `nft list table ip twill`, rules only, as listed', () => {
    const spec = { network: '10.244.0.0/16', subnet: '10.244.1.0/24' };
    expect(listedMasqRules(renderTwillTable(spec))).toEqual(masqRules(spec));
    expect(listedMasqRules('table ip twill {\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t}\n}\n')).toEqual([]);
    expect(listedMasqRules('')).toEqual([]);
  });

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
