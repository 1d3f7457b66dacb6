/**
 * `twill trace`, pure (style rule 7): the way a packet from this node's pods takes to an
 * address, told from captured state. The agent's view (its lease, its peers and the state of
 * each, the backend) and the kernel's (the route it picks and whose it is, the next hop's
 * neighbour entry, vxlan's FDB entry, ip_forward, the FORWARD policy, subnet.env) go in; the
 * chain of decisions and every problem found, each with its fix, come out.
 */
import { contains, formatIp, parseCidr, parseIp } from '../lib/ipv4.js';
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
  /** subnet.env as the node's CNI plugins read it; null when the file is missing or unreadable. */
  readonly subnetEnv: { readonly network: string; readonly subnet: string; readonly mtu: number } | null;
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
  readonly step: 'destination' | 'lease' | 'route' | 'neighbour' | 'carriage' | 'mtu' | 'forwarding';
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
    problems.push({ code: 'wrong-route', message: `${dst} leaves by ${r.dev}${r.gateway ? ` via ${r.gateway}` : ''}, not ${want.dev}${want.gateway ? ` via ${want.gateway}` : ''} as ${want.why}`, fix: "twill's route for the subnet is missing or shadowed: `ip route show " + owner.peer.subnet + '`; the agent re-adds its own within seconds' });
  } else if (want.ownRoute && entry !== null && entry.proto !== TWILL_PROTO) {
    problems.push({ code: 'foreign-route', message: `the route to ${entry.dst} is not twill's (proto ${entry.proto}): it may change without twill knowing`, fix: `delete it (ip route del ${entry.dst}) and let the agent program its own` });
  }
  steps.push({ step: 'carriage', text: want.carriage });
  checkNeighbour(r.gateway ?? dst, kernel, steps, problems);
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
    return { dev: backend.device, why: 'the udp tunnel', carriage: `udp tunnel: the packet whole inside UDP ${status.node.publicIP}:${port} → ${peer.publicIP}:${port} (28 bytes more per packet)`, ownRoute: false };
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
