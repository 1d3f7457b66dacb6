import { isIPv4 } from 'node:net';
import { planOf, type LabState } from '../state.js';
import type { LabTopology } from '../underlay.js';

/**
 * Pure: what the lab page shows of a lab, from its state file and the plan it was built from:
 * segments, the router, etcd and the outside node (both on segment A), hosts and pods.
 */
export interface LabView {
  readonly name: string;
  readonly backend: string;
  readonly directRouting: boolean;
  readonly ipMasq: boolean;
  readonly topology: LabTopology;
  readonly network: string;
  readonly segments: readonly { readonly id: string; readonly ns: string; readonly subnet: string; readonly gateway: string }[];
  /** routed: one leg per segment (eth0 on A, eth1 on B); flat: null. */
  readonly router: { readonly id: string; readonly ns: string; readonly legs: readonly { readonly iface: string; readonly segment: string; readonly ip: string }[] } | null;
  readonly etcd: { readonly id: string; readonly ns: string; readonly segment: string; readonly members: readonly { readonly name: string; readonly ip: string }[] };
  readonly outside: { readonly id: string; readonly ns: string; readonly segment: string; readonly ip: string };
  /** subnet: as recorded at `up` (or `restart-agent`); null before the agent wrote subnet.env. */
  readonly hosts: readonly { readonly id: string; readonly ns: string; readonly ip: string; readonly segment: string; readonly subnet: string | null; readonly backend: string }[];
  readonly pods: readonly { readonly id: string; readonly host: string; readonly ns: string; readonly ip: string | null }[];
}

const addressOf = (cidr: string): string => cidr.split('/')[0] ?? cidr;

export function labView(state: LabState): LabView {
  const plan = planOf(state);
  const segmentOf = (ns: string): string => plan.segments.find((s) => s.ns === ns)?.id ?? '?';
  const router = plan.router && { id: plan.router.id, ns: plan.router.ns, legs: plan.router.links.map((l) => ({ iface: l.iface, segment: segmentOf(l.segmentNs), ip: addressOf(l.address) })) };
  const subnetOf = new Map(state.hosts.map((h) => [h.id, h.subnet]));
  return {
    name: plan.name,
    backend: plan.backend,
    directRouting: plan.directRouting,
    ipMasq: plan.ipMasq,
    topology: plan.topology,
    network: plan.network,
    segments: plan.segments.map((s) => ({ id: s.id, ns: s.ns, subnet: s.subnet, gateway: s.gateway })),
    router,
    etcd: { id: plan.etcd.id, ns: plan.etcd.ns, segment: segmentOf(plan.etcd.links[0]?.segmentNs ?? ''), members: plan.etcd.members.map((m) => ({ name: m.name, ip: m.ip })) },
    outside: { id: plan.outside.id, ns: plan.outside.ns, segment: segmentOf(plan.outside.links[0]?.segmentNs ?? ''), ip: plan.outside.ip },
    hosts: plan.hosts.map((h) => ({ id: h.id, ns: h.ns, ip: h.ip, segment: h.segment, subnet: subnetOf.get(h.id) ?? null, backend: plan.backend })),
    pods: state.pods.map((p) => ({ id: p.id, host: p.host, ns: p.ns, ip: p.ip })),
  };
}

/** A trace's two ends as the page asks for them; `why` names what is wrong with the request. */
export type TraceEnds = { readonly ok: true; readonly from: string; readonly to: string } | { readonly ok: false; readonly why: string };

/** `from`: a pod of the lab with an address; `to`: another pod, a host, "out", or an IPv4 address. */
export function checkTraceEnds(view: Pick<LabView, 'name' | 'pods' | 'hosts' | 'outside'>, from: unknown, to: unknown): TraceEnds {
  const pods = view.pods.map((p) => p.id);
  const targets = [...pods, ...view.hosts.map((h) => h.id), view.outside.id];
  if (typeof from !== 'string' || from === '') return { ok: false, why: `give the source pod as ?from=<pod id> (pods of lab ${view.name}: ${pods.join(', ')})` };
  const pod = view.pods.find((p) => p.id === from);
  if (!pod) return { ok: false, why: `from: "${from}" is not a pod of lab ${view.name} (pods: ${pods.join(', ')})` };
  if (pod.ip === null) return { ok: false, why: `from: pod ${from} has no address yet (the lab is not up?)` };
  if (typeof to !== 'string' || to === '') return { ok: false, why: `give the destination as ?to=<pod id, host id, "${view.outside.id}" or IPv4 address> (${targets.join(', ')})` };
  if (!targets.includes(to) && !isIPv4(to)) return { ok: false, why: `to: "${to}" is not a pod, a host, "${view.outside.id}" or an IPv4 address of lab ${view.name} (${targets.join(', ')})` };
  if (to === from) return { ok: false, why: `to: "${to}" is the source pod itself; pick another destination` };
  return { ok: true, from, to };
}
