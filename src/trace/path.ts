/**
 * `twill trace`, pure (style rule 7): the way a packet from this node's pods takes to an
 * address, told from captured state. The agent's view (its lease, its peers and the state of
 * each, the backend) and the kernel's (the route it picks and whose it is, the next hop's
 * neighbour entry, vxlan's FDB entry, ip_forward, the FORWARD policy, subnet.env, twill's
 * masquerade rules) go in; the chain of decisions and every problem found, each with its fix,
 * come out.
 */
import { contains, formatCidr, formatIp, parseCidr, parseIp } from '../lib/ipv4.js';
import type { AgentStatus, PeerStatus } from '../status/types.js';

/** The kernel's side, as the agent reads it for one destination. */
export interface KernelFacts {
  /** `ip route get <dst>`: the device and next hop the kernel picks; null when it has no route. */
  readonly route: { readonly dev: string; readonly gateway?: string } | null;
  /** The table entry behind that choice: its prefix and protocol ("116" is twill's). */
  readonly routeEntry: { readonly dst: string; readonly proto: string } | null;
  /** The next hop's neighbour entry (state as `ip neigh` prints it); null when there is none. */
  readonly neighbour: { readonly ip: string; readonly state: string; readonly lladdr?: string } | null;
  /** vxlan: the FDB entry of the peer's VTEP MAC (the neighbour's lladdr) on the device; null when missing. */
  readonly fdb?: { readonly mac: string; readonly dst: string } | null;
  readonly ipForward: boolean;
  /** The FORWARD chain's policy, and whether twill's accept rules for the Network are in place. */
  readonly forward: { readonly policy: 'ACCEPT' | 'DROP'; readonly twillRules: boolean };
  /** subnet.env as the node's CNI plugins read it (`ipMasq`: its FLANNEL_IPMASQ); null when the file is missing or unreadable. */
  readonly subnetEnv: { readonly network: string; readonly subnet: string; readonly mtu: number; readonly ipMasq?: boolean } | null;
  /**
   * twill's masquerade rules (--ip-masq: the nat postrouting chain of `table ip twill`), each as
   * nft lists it; null when there is no such table; absent when not read (no masquerade step).
   */
  readonly masquerade?: { readonly rules: readonly string[] } | { readonly unreadable: string } | null;
}

export type TraceProblemCode =
  | 'no-lease'
  | 'peer-unreachable-on-l2'
  | 'peer-not-programmed'
  | 'no-route'
  | 'wrong-route'
  | 'foreign-route'
  | 'neighbour-failed'
  | 'fdb-missing'
  | 'ip-forward-off'
  | 'forward-drop'
  | 'subnet-env-missing'
  | 'subnet-env-stale'
  | 'mtu-mismatch'
  | 'agent-not-ready';

export interface TraceProblem {
  readonly code: TraceProblemCode;
  readonly message: string;
  readonly fix: string;
}

export interface TraceStep {
  readonly step: 'destination' | 'lease' | 'route' | 'neighbour' | 'carriage' | 'mtu' | 'forwarding' | 'masquerade';
  readonly text: string;
}

export interface PathTrace {
  readonly dst: string;
  /** The source asked about (`--from`); absent: this node's pods in general. */
  readonly from?: string;
  /** The path is whole: no problem found. */
  readonly complete: boolean;
  readonly steps: readonly TraceStep[];
  readonly problems: readonly TraceProblem[];
}

const TWILL_PROTO = '116';
const BROKEN_NEIGHBOUR = new Set(['FAILED', 'INCOMPLETE']);

/** What the destination is to this node: one of its own pods, a peer's pod, the Network without an owner, or outside. */
type Owner = { kind: 'own' } | { kind: 'peer'; peer: PeerStatus } | { kind: 'unowned' } | { kind: 'outside' };

export function tracePath(dst: string, status: AgentStatus, kernel: KernelFacts, from?: string): PathTrace {
  const steps: TraceStep[] = [];
  const problems: TraceProblem[] = [];
  const ip = parseIp(dst);
  const network = status.network ? parseCidr(status.network.network) : null;
  const owner = ownerOf(ip, network, status);
  steps.push({ step: 'destination', text: describeOwner(dst, owner, status) });
  if (!status.ready) problems.push({ code: 'agent-not-ready', message: `the agent is not ready (waiting for ${status.waitingFor.join(', ') || 'nothing'}${status.reason ? `: ${status.reason}` : ''})`, fix: 'see `twill status` and the agent log' });
  checkNodeFiles(status, kernel, steps, problems);
  if (owner.kind === 'unowned') {
    problems.push({ code: 'no-lease', message: `no node holds a lease for ${dst}, inside the Network ${status.network?.network}`, fix: "start the agent on the node that should own it, or check the address; `twill status` lists the peers" });
  }
  if (owner.kind === 'peer') checkPeer(owner.peer, problems);
  checkRoute(dst, owner, status, kernel, steps, problems);
  if (owner.kind === 'peer' || owner.kind === 'own') checkForwarding(kernel, steps, problems);
  if (kernel.masquerade !== undefined) steps.push({ step: 'masquerade', text: describeMasquerade(dst, from, kernel, kernel.masquerade) });
  return { dst, ...(from === undefined ? {} : { from }), complete: problems.length === 0, steps, problems };
}

function ownerOf(ip: number | null, network: ReturnType<typeof parseCidr>, status: AgentStatus): Owner {
  if (ip === null || network === null || !contains(network, ip)) return { kind: 'outside' };
  const own = status.lease ? parseCidr(status.lease.subnet) : null;
  if (own && contains(own, ip)) return { kind: 'own' };
  const peer = status.peers.find((p) => {
    const net = parseCidr(p.subnet);
    return net !== null && contains(net, ip);
  });
  return peer ? { kind: 'peer', peer } : { kind: 'unowned' };
}

function describeOwner(dst: string, owner: Owner, status: AgentStatus): string {
  switch (owner.kind) {
    case 'own':
      return `${dst} is a pod of this node (lease ${status.lease?.subnet})`;
    case 'peer': {
      const p = owner.peer;
      return `${dst} is in ${p.subnet}, leased by ${p.publicIP} (${p.backendType ?? status.network?.backendType}), ${p.state} since ${p.since}${trafficText(p)}`;
    }
    case 'unowned':
      return `${dst} is in the Network ${status.network?.network}, but no lease owns it`;
    case 'outside':
      return `${dst} is outside the Network${status.network ? ` ${status.network.network}` : ''}: not an overlay path`;
  }
}

function trafficText(p: PeerStatus): string {
  return p.traffic ? `; tunnel ${p.traffic.packetsOut} packets out, ${p.traffic.packetsIn} in` : '';
}

function checkPeer(peer: PeerStatus, problems: TraceProblem[]): void {
  if (peer.state === 'unreachable-on-l2') {
    problems.push({ code: 'peer-unreachable-on-l2', message: `${peer.publicIP} is not on this node's L2 segment (${peer.reason ?? 'behind a router'}): host-gw cannot route to it`, fix: 'use a backend that crosses routers (vxlan, udp), or put the nodes on one segment' });
  } else if (peer.state !== 'programmed') {
    problems.push({ code: 'peer-not-programmed', message: `the agent has not programmed ${peer.subnet}: ${peer.state}${peer.reason ? ` (${peer.reason})` : ''}`, fix: 'see the agent log for this subnet' });
  }
}

/** The route the kernel picks against the one the backend should have put there. */
function checkRoute(dst: string, owner: Owner, status: AgentStatus, kernel: KernelFacts, steps: TraceStep[], problems: TraceProblem[]): void {
  const r = kernel.route;
  if (r === null) {
    steps.push({ step: 'route', text: `the kernel has no route to ${dst}` });
    if (owner.kind !== 'outside') problems.push({ code: 'no-route', message: `the kernel has no route to ${dst}`, fix: 'the agent adds it within seconds of a change; if it stays missing, see the agent log' });
    return;
  }
  const entry = kernel.routeEntry;
  const whose = entry === null ? 'unknown' : entry.proto === TWILL_PROTO ? "twill's (proto 116)" : `not twill's (proto ${entry.proto})`;
  steps.push({ step: 'route', text: `the kernel sends it out of ${r.dev}${r.gateway ? ` via ${r.gateway}` : ''}${entry ? `, by ${entry.dst}, ${whose}` : ''}` });
  if (owner.kind !== 'peer') return;
  const want = expectedHop(owner.peer, status);
  if (want === null) return;
  if (r.dev !== want.dev || (want.gateway !== undefined && r.gateway !== want.gateway)) {
    problems.push({ code: 'wrong-route', message: `${dst} leaves by ${r.dev}${r.gateway ? ` via ${r.gateway}` : ''}, not ${want.dev}${want.gateway ? ` via ${want.gateway}` : ''} as ${want.why}`, fix: want.routeFix ?? "twill's route for the subnet is missing or shadowed: `ip route show " + owner.peer.subnet + '`; the agent re-adds its own within seconds' });
  } else if (want.ownRoute && entry !== null && entry.proto !== TWILL_PROTO) {
    problems.push({ code: 'foreign-route', message: `the route to ${entry.dst} is not twill's (proto ${entry.proto}): it may change without twill knowing`, fix: `delete it (ip route del ${entry.dst}) and let the agent program its own` });
  }
  steps.push({ step: 'carriage', text: want.carriage });
  if (want.tun) steps.push({ step: 'neighbour', text: `none: ${want.dev} is a TUN device (IP packets only, no ARP)` });
  else checkNeighbour(r.gateway ?? dst, kernel, steps, problems);
  if (want.vxlan) checkFdb(owner.peer, kernel, steps, problems);
}

interface Hop {
  readonly dev: string;
  readonly gateway?: string;
  readonly why: string;
  readonly carriage: string;
  /** The backend programs a kernel route for this peer (host-gw, vxlan, DirectRouting). */
  readonly ownRoute: boolean;
  /** The next hop is the peer's VTEP: its MAC (the neighbour entry) must be in the FDB. */
  readonly vxlan?: boolean;
  /** The device is a TUN (udp): no link layer, so no neighbour to resolve. */
  readonly tun?: boolean;
  /** How to put the route back when it is not the backend's to repair by itself; absent: the agent does. */
  readonly routeFix?: string;
}

/** Where the backend sends a peer's packets, as /v1/status describes the backend and the peer. */
function expectedHop(peer: PeerStatus, status: AgentStatus): Hop | null {
  const backend = status.backend;
  const iface = status.node.iface;
  if (!backend || !iface) return null;
  if (backend.type === 'host-gw' || peer.via === 'direct') {
    return { dev: iface, gateway: peer.publicIP, why: 'a direct route to the peer on this segment', carriage: `routed: no encapsulation, next hop ${peer.publicIP} on ${iface}`, ownRoute: true };
  }
  if (backend.type === 'vxlan' && backend.device) {
    const gateway = parseCidr(peer.subnet)?.addr;
    return {
      dev: backend.device,
      ...(gateway === undefined ? {} : { gateway: formatIp(gateway) }),
      why: "vxlan's route to the peer's VTEP",
      carriage: `vxlan: the inner frame inside UDP ${status.node.publicIP} → ${peer.publicIP}:8472 (50 bytes more per packet)`,
      ownRoute: true,
      vxlan: true,
    };
  }
  if (backend.type === 'udp' && backend.device) {
    const port = (backend.details as { tunnel?: { port?: number } } | undefined)?.tunnel?.port ?? 8285;
    const carriage = `udp tunnel: the packet whole inside UDP ${status.node.publicIP}:${port} → ${peer.publicIP}:${port} (28 bytes more per packet)`;
    // One route for the whole Network: a more specific one, someone else's, takes its peers' traffic away.
    const routeFix = `a route more specific than twill's ${status.network?.network ?? 'Network'} dev ${backend.device} takes this subnet, or twill's was deleted (the agent puts it back at once): \`ip route get ${peer.subnet.replace(/\/\d+$/, '')}\``;
    return { dev: backend.device, why: 'the udp tunnel', carriage, ownRoute: false, tun: true, routeFix };
  }
  return null;
}

function checkNeighbour(hop: string, kernel: KernelFacts, steps: TraceStep[], problems: TraceProblem[]): void {
  const n = kernel.neighbour;
  if (n === null) {
    steps.push({ step: 'neighbour', text: `no neighbour entry for ${hop} yet (resolved on the first packet)` });
    return;
  }
  steps.push({ step: 'neighbour', text: `${n.ip} is ${n.lladdr ?? 'unresolved'} (${n.state})` });
  if (BROKEN_NEIGHBOUR.has(n.state)) {
    problems.push({ code: 'neighbour-failed', message: `the next hop ${n.ip} does not answer ARP (${n.state})`, fix: 'is the peer node up, and on this segment? `ip neigh show ' + n.ip + '`' });
  }
}

/** The VTEP's MAC is what the neighbour entry of the peer's subnet address says; the FDB sends it to the peer. */
function checkFdb(peer: PeerStatus, kernel: KernelFacts, steps: TraceStep[], problems: TraceProblem[]): void {
  const mac = kernel.neighbour?.lladdr ?? '(no neighbour entry)';
  const f = kernel.fdb;
  if (f && f.dst === peer.publicIP) {
    steps.push({ step: 'carriage', text: `the FDB sends ${mac} to ${f.dst}` });
    return;
  }
  problems.push({ code: 'fdb-missing', message: `the FDB has no entry sending ${mac} to ${peer.publicIP}${f ? ` (it says ${f.dst})` : ''}`, fix: 'the agent repairs it within seconds; if it stays, see the agent log' });
}

function checkForwarding(kernel: KernelFacts, steps: TraceStep[], problems: TraceProblem[]): void {
  steps.push({ step: 'forwarding', text: `ip_forward ${kernel.ipForward ? 'on' : 'off'}; FORWARD policy ${kernel.forward.policy}${kernel.forward.twillRules ? ", twill's accept rules in place" : ''}` });
  if (!kernel.ipForward) problems.push({ code: 'ip-forward-off', message: 'the node does not forward IPv4 (net.ipv4.ip_forward = 0): pod packets stop here', fix: 'sysctl -w net.ipv4.ip_forward=1 (and set it in /etc/sysctl.d)' });
  if (kernel.forward.policy === 'DROP' && !kernel.forward.twillRules) {
    problems.push({ code: 'forward-drop', message: "the FORWARD policy is DROP and twill's accept rules for the Network are not there", fix: 'run the agent with its traffic rules (the default; see "Traffic rules" in the README), or accept the Network in FORWARD yourself' });
  }
}

/** subnet.env against the lease, and the pods' MTU against the backend's. */
function checkNodeFiles(status: AgentStatus, kernel: KernelFacts, steps: TraceStep[], problems: TraceProblem[]): void {
  const env = kernel.subnetEnv;
  const lease = status.lease?.subnet;
  const mtu = status.backend?.mtu;
  if (env === null) {
    problems.push({ code: 'subnet-env-missing', message: 'subnet.env is missing: the CNI plugin cannot give pods addresses', fix: 'the agent writes it once it holds its lease: see `twill status`' });
    return;
  }
  if (lease !== undefined && env.subnet !== undefined && parseCidr(env.subnet, false)?.addr !== parseCidr(lease)?.addr) {
    problems.push({ code: 'subnet-env-stale', message: `subnet.env says ${env.subnet}, but the lease is ${lease}`, fix: 'the agent rewrites it when the lease changes; restart the agent if it does not' });
  }
  if (mtu !== undefined) {
    steps.push({ step: 'mtu', text: `pods get MTU ${env.mtu} (subnet.env); the ${status.backend?.type} path carries ${mtu}` });
    if (env.mtu > mtu) problems.push({ code: 'mtu-mismatch', message: `pods send up to ${env.mtu} bytes, but the ${status.backend?.type} path carries ${mtu}: large packets are dropped`, fix: 'pods take their MTU when created: restart them after the agent rewrote subnet.env' });
  }
}

/** What twill's masquerade rules do to a packet from `from` (absent: the node itself) to dst. */
function describeMasquerade(dst: string, from: string | undefined, kernel: KernelFacts, m: Exclude<KernelFacts['masquerade'], undefined>): string {
  if (m !== null && 'unreadable' in m) return `twill's masquerade rules could not be read: ${m.unreadable}`;
  const out = kernel.route ? ` on ${kernel.route.dev}` : '';
  if (m === null || m.rules.length === 0) {
    if (kernel.subnetEnv?.ipMasq === true) return 'no masquerade rules, though subnet.env says FLANNEL_IPMASQ=true: the agent puts them back within seconds';
    return `no twill masquerade rules (--ip-masq off), ${bridgeMasquerade(dst, from, kernel)}`;
  }
  // The node's own packets already leave with the address masquerading would give them.
  if (from === undefined) return `from the node itself: it leaves with the node's own address${out}, which masquerading leaves as it is; --from <pod address> shows what the rules do to a pod's packets`;
  const v = masqueradeVerdict(m.rules, from, dst);
  switch (v.kind) {
    case 'masquerade':
      return `masqueraded to the node's address${out} by rule \`${v.rule}\``;
    case 'return':
    case 'accept':
      return `not masqueraded: rule \`${v.rule}\` ${v.kind}s it, so it keeps its source ${from}`;
    case 'none':
      return `not masqueraded: no rule matches ${from} → ${dst}`;
    case 'unknown':
      return `cannot tell: rule \`${v.rule}\` is not one the trace can read, and none before it matches`;
  }
}

/**
 * Without --ip-masq, twill's conflist turns the CNI bridge plugin's ipMasq on (as flannel's
 * does): a pod's packet to anywhere outside its own subnet but multicast, other nodes' pods too,
 * takes the address of the device it leaves by.
 */
function bridgeMasquerade(dst: string, from: string | undefined, kernel: KernelFacts): string {
  const subnet = kernel.subnetEnv ? parseCidr(kernel.subnetEnv.subnet, false) : null;
  const [s, d] = [from === undefined ? null : parseIp(from), parseIp(dst)];
  const general = "so the CNI bridge plugin masquerades a pod's packets that leave its subnet";
  if (subnet === null || s === null || d === null || !contains(subnet, s)) return general;
  if (contains(subnet, d) || contains(MULTICAST, d)) return `and the CNI bridge plugin leaves a packet within ${formatCidr(subnet)} or to multicast as it is`;
  return `so the CNI bridge plugin masquerades it: leaving ${formatCidr(subnet)}, it takes the address of ${kernel.route?.dev ?? 'the device it leaves by'}`;
}

const MULTICAST = parseCidr('224.0.0.0/4')!;

export type MasqueradeVerdict = { readonly kind: 'masquerade' | 'return' | 'accept' | 'unknown'; readonly rule: string } | { readonly kind: 'none' };

/**
 * flannel's ip-masq logic, read from the rules as listed and applied to one packet: the first
 * rule whose matches all hold decides (in a base chain, `return` accepts: the source stays). The
 * traced packet carries no mark (kube-proxy marks only what it NATs itself).
 */
export function masqueradeVerdict(rules: readonly string[], src: string, dst: string): MasqueradeVerdict {
  const [s, d] = [parseIp(src), parseIp(dst)];
  for (const rule of rules) {
    const r = readRule(rule);
    if (r === null || s === null || d === null) return { kind: 'unknown', rule };
    if (r.verdict !== 'continue' && r.matches.every((match) => match(s, d))) return { kind: r.verdict, rule };
  }
  return { kind: 'none' };
}

type Match = (src: number, dst: number) => boolean;

/** The rule forms twill's table holds (addresses, a mark, a counter, a verdict); null for any other. */
function readRule(text: string): { matches: Match[]; verdict: 'masquerade' | 'return' | 'accept' | 'continue' } | null {
  const w = text.trim().split(/\s+/);
  const matches: Match[] = [];
  for (let i = 0; i < w.length; ) {
    const word = w[i];
    if (word === 'ip' && (w[i + 1] === 'saddr' || w[i + 1] === 'daddr')) {
      const negated = w[i + 2] === '!=';
      const net = netOf(w[i + (negated ? 3 : 2)]);
      if (net === null) return null;
      const onSource = w[i + 1] === 'saddr';
      matches.push((src, dst) => contains(net, onSource ? src : dst) !== negated);
      i += negated ? 4 : 3;
    } else if (word === 'meta' && w[i + 1] === 'mark' && w[i + 2] === '&' && w[i + 4] === '==') {
      const value = Number(w[i + 5]);
      if (!Number.isInteger(value)) return null;
      matches.push(() => value === 0);
      i += 6;
    } else if (word === 'counter') {
      i += w[i + 1] === 'packets' ? 5 : 1;
    } else if (word === 'masquerade' || word === 'return' || word === 'accept') {
      return { matches, verdict: word };
    } else {
      return null;
    }
  }
  return { matches, verdict: 'continue' };
}

function netOf(text: string | undefined): ReturnType<typeof parseCidr> {
  if (text === undefined) return null;
  const ip = parseIp(text);
  return ip === null ? parseCidr(text, false) : { addr: ip, len: 32 };
}
