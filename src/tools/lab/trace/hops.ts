/**
 * Pure: which interfaces a packet from a lab pod crosses on its way to a destination, in order.
 * The lab's plan gives the namespaces and underlay legs; the kernel's facts (the pods' veth
 * peers, the device the source host routes the packet to) decide the rest: a tunnel device
 * when the route goes into one, the router's two legs when the ends sit on different segments.
 */
import { CNI_BRIDGE } from '../../../agent/cni-conflist.js';
import { TwillError } from '../../../errors.js';
import { parseIp } from '../../../lib/ipv4.js';
import type { LabState, PodState } from '../state.js';
import type { LabHost, LabPlan } from '../topology.js';
import type { Hop } from './types.js';

export type HopSpec = Omit<Hop, 'packet' | 'error'>;

/** Where the packet goes: a lab pod, a lab host's underlay address, the outside node, or any other address. */
export type Target =
  | { readonly kind: 'pod'; readonly id: string; readonly ip: string; readonly pod: PodState }
  | { readonly kind: 'host'; readonly id: string; readonly ip: string; readonly host: LabHost }
  | { readonly kind: 'outside'; readonly id: string; readonly ip: string }
  | { readonly kind: 'address'; readonly id: string; readonly ip: string };

export interface Source {
  readonly pod: PodState;
  readonly ip: string;
  readonly host: LabHost;
}

/** What only the kernel knows. */
export interface PathFacts {
  /** The source pod's veth on its host. */
  readonly srcVeth: string;
  /** The destination pod's veth on its host; null unless the target is a pod. */
  readonly dstVeth: string | null;
  /** The device the source host routes the packet to (`ip route get DST from SRC iif cni0`); null: no route. */
  readonly egressDev: string | null;
}

const bad = (message: string, details: Record<string, unknown>) => new TwillError('TWILL_ERR_OPTION_INVALID', message, { details });

export function resolveSource(state: LabState, plan: LabPlan, from: string): Source {
  const pod = state.pods.find((p) => p.id === from || (p.ip !== null && p.ip === from));
  if (!pod) throw bad(`lab trace: "${from}" is not a pod of lab ${state.options.name} (have: ${state.pods.map((p) => p.id).join(', ')})`, { from });
  const host = plan.hosts.find((h) => h.id === pod.host);
  if (pod.ip === null || !host) throw bad(`lab trace: pod ${pod.id} has no address yet`, { from });
  return { pod, ip: pod.ip, host };
}

/** A pod, host or "out" by id or address; any other IPv4 address as itself. */
export function resolveTarget(state: LabState, plan: LabPlan, to: string): Target {
  const pod = state.pods.find((p) => p.id === to || (p.ip !== null && p.ip === to));
  if (pod?.ip) return { kind: 'pod', id: pod.id, ip: pod.ip, pod };
  const host = plan.hosts.find((h) => h.id === to || h.ip === to);
  if (host) return { kind: 'host', id: host.id, ip: host.ip, host };
  if (to === plan.outside.id || to === plan.outside.ip) return { kind: 'outside', id: plan.outside.id, ip: plan.outside.ip };
  if (parseIp(to) !== null) return { kind: 'address', id: to, ip: to };
  throw bad(`lab trace: "${to}" is neither a pod, a host, "${plan.outside.id}" nor an IPv4 address`, { to });
}

export function planHops(plan: LabPlan, src: Source, dst: Target, facts: PathFacts): HopSpec[] {
  const dstHost = dst.kind === 'pod' ? plan.hosts.find((h) => h.id === dst.pod.host) : undefined;
  const first = [podHop(src.pod), vethHop(src.host, facts.srcVeth, src.pod.id)];
  if (dst.kind === 'pod' && dstHost?.id === src.host.id) {
    // One bridge: the frame is switched from port to port, never routed through cni0 itself.
    return [...first, vethHop(dstHost, facts.dstVeth ?? '?', dst.pod.id), podHop(dst.pod)];
  }
  if (dst.kind === 'host' && dst.host.id === src.host.id) return [...first, bridgeHop(src.host)]; // delivered on the bridge
  const ul = underlayDev(src.host);
  const tunnel = facts.egressDev !== null && facts.egressDev !== ul && facts.egressDev !== CNI_BRIDGE ? facts.egressDev : null;
  const out = [...first, bridgeHop(src.host), ...(tunnel ? [tunnelHop(src.host, tunnel)] : []), underlayHop(src.host)];
  const far = farEnd(plan, dst, dstHost, tunnel, facts.dstVeth);
  if (far === null) return out;
  return [...out, ...routerHops(plan, src.host.segment, far.segment), ...far.hops];
}

/** The destination's hops and the segment it sits on; null when no lab node owns the address. */
function farEnd(plan: LabPlan, dst: Target, dstHost: LabHost | undefined, tunnel: string | null, dstVeth: string | null) {
  switch (dst.kind) {
    case 'pod': {
      if (!dstHost) return null;
      const hops = [underlayHop(dstHost), ...(tunnel ? [tunnelHop(dstHost, tunnel)] : []), bridgeHop(dstHost), vethHop(dstHost, dstVeth ?? '?', dst.pod.id), podHop(dst.pod)];
      return { segment: dstHost.segment, hops };
    }
    case 'host':
      return { segment: dst.host.segment, hops: [underlayHop(dst.host)] };
    case 'outside':
      return { segment: plan.segments[0]?.id ?? 'A', hops: [{ id: `${plan.outside.id}:eth0`, node: plan.outside.id, ns: plan.outside.ns, dev: 'eth0', role: 'outside' as const, label: 'the outside node' }] };
    case 'address':
      return null;
  }
}

/** In a routed lab, a packet between segments crosses the router: in on one leg, out on the other. */
function routerHops(plan: LabPlan, from: string, to: string): HopSpec[] {
  const rt = plan.router;
  if (!rt || from === to) return [];
  const leg = (segment: string) => {
    const seg = plan.segments.find((s) => s.id === segment);
    return rt.links.find((l) => l.segmentNs === seg?.ns)?.iface ?? '?';
  };
  return [from, to].map((segment, i) => ({ id: `${rt.id}:${leg(segment)}`, node: rt.id, ns: rt.ns, dev: leg(segment), role: 'router' as const, label: `the router, ${i === 0 ? 'in from' : 'out to'} segment ${segment}` }));
}

const underlayDev = (h: LabHost): string => h.links[0]?.iface ?? 'eth0';

const podHop = (p: PodState): HopSpec => ({ id: `${p.id}:eth0`, node: p.id, ns: p.ns, dev: 'eth0', role: 'pod', label: `pod ${p.id}` });
const vethHop = (h: LabHost, dev: string, pod: string): HopSpec => ({ id: `${h.id}:${dev}`, node: h.id, ns: h.ns, dev, role: 'veth', label: `${h.id}'s veth to ${pod}` });
const bridgeHop = (h: LabHost): HopSpec => ({ id: `${h.id}:${CNI_BRIDGE}`, node: h.id, ns: h.ns, dev: CNI_BRIDGE, role: 'bridge', label: `${h.id}'s bridge` });
const tunnelHop = (h: LabHost, dev: string): HopSpec => ({ id: `${h.id}:${dev}`, node: h.id, ns: h.ns, dev, role: 'tunnel', label: `${h.id}'s tunnel device` });
const underlayHop = (h: LabHost): HopSpec => ({ id: `${h.id}:${underlayDev(h)}`, node: h.id, ns: h.ns, dev: underlayDev(h), role: 'underlay', label: `${h.id}'s underlay (segment ${h.segment})` });

/** The BPF filter for the traced echo request whose IPv4 packet is `ipLength` bytes: bare, inside UDP whole (udp backend), or inside VXLAN. */
export function captureFilter(ipLength: number): string {
  const bare = `(icmp and ip[2:2] = ${ipLength} and icmp[0] = 8)`;
  const udp = `(udp and udp[8] & 0xf0 = 0x40 and udp[10:2] = ${ipLength} and udp[28] = 8)`;
  const vxlan = `(udp and udp[8] = 0x08 and udp[32:2] = ${ipLength} and udp[50] = 8)`;
  return `${bare} or ${udp} or ${vxlan}`;
}
