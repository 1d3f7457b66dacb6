import { BACKENDS } from '../../backend/index.js';
import { TwillError } from '../../errors.js';
import { clientEndpoints, planEtcdMembers, type EtcdMemberCount, type EtcdMemberPlan } from './etcd-members.js';
import { labPrefix, nsName, roles } from './naming.js';
import { attach, etcdMemberIps, hostSegment, HOST_PART, planUnderlay, segmentA, segmentIp, type LabNode, type LabTopology, type Segment, type Underlay } from './underlay.js';

export type { Attachment, LabNode, LabTopology, Segment } from './underlay.js';

/**
 * The lab as data: L2 segments (a bridge in its own namespace), an optional router joining them,
 * and nodes attached to them. Pure; netns-setup turns it into `ip` batches. The underlay itself
 * (flat or routed) is planned in underlay.ts.
 */
/** Every backend in the table runs in the lab; the lab knows no backend by name. */
export const LAB_BACKENDS: readonly string[] = Object.keys(BACKENDS);
/** A Backend.Type from the backend table. */
export type LabBackend = string;

export const LAB_NETWORK = '10.244.0.0/16';
export const MAX_HOSTS = 50;
export const MAX_PODS_PER_HOST = 20;

export interface LabOptions {
  readonly name: string;
  readonly hosts: number;
  readonly podsPerHost: number;
  readonly backend: LabBackend;
  readonly topology: LabTopology;
  readonly dir: string;
  /** Agents run with --ip-masq (absent: false). */
  readonly ipMasq?: boolean;
  /** Also run Prometheus, scraping every agent (absent: false). */
  readonly prometheus?: boolean;
  /** The config's Network (absent: LAB_NETWORK); `twill bench scale` needs room for thousands of /24s. */
  readonly network?: string;
  /** Members of the lab's etcd cluster (absent: 1). */
  readonly etcdMembers?: EtcdMemberCount;
  /** `Backend.DirectRouting: true` in the network config (vxlan, udp; absent: false). */
  readonly directRouting?: boolean;
  /** udp agents run with --udp-datapath this (absent: the agent's default, native). */
  readonly udpDatapath?: 'native' | 'dgram';
}

export interface LabHost extends LabNode {
  readonly index: number;
  readonly ip: string;
  readonly dir: string;
  /** Id of the segment the host sits on (A, B). */
  readonly segment: string;
}

export interface LabPod {
  readonly id: string;
  readonly host: string;
  readonly ns: string;
}

export interface LabPlan {
  readonly name: string;
  readonly prefix: string;
  readonly dir: string;
  readonly backend: LabBackend;
  readonly network: string;
  readonly topology: LabTopology;
  readonly segments: readonly Segment[];
  readonly router: LabNode | null;
  /** ip and endpoint are the first member's (Prometheus and the bench use them); endpoints lists every member. */
  readonly etcd: LabNode & { readonly ip: string; readonly endpoint: string; readonly endpoints: string; readonly members: readonly EtcdMemberPlan[] };
  /** The "internet": on segment A, reached by pods only through their host, no route back to pods. */
  readonly outside: LabNode & { readonly ip: string };
  readonly ipMasq: boolean;
  readonly directRouting: boolean;
  readonly udpDatapath?: 'native' | 'dgram';
  readonly hosts: readonly LabHost[];
  readonly pods: readonly LabPod[];
}

export function parseBackend(text: string): LabBackend {
  const found = LAB_BACKENDS.find((b) => b === text);
  if (!found) {
    throw new TwillError('TWILL_ERR_OPTION_INVALID', `lab backend "${text}" is not supported (have: ${LAB_BACKENDS.join(', ')})`, {
      details: { backend: text },
    });
  }
  return found;
}

function host(opts: LabOptions, u: Underlay, index: number): LabHost {
  const id = roles.host(index);
  const seg = hostSegment(u, index);
  const hostPart = HOST_PART.firstHost + index;
  return { id, index, ip: segmentIp(seg, hostPart), segment: seg.id, ns: nsName(opts.name, id), dir: `${opts.dir}/${id}`, links: [attach(seg, id, hostPart)] };
}

/** One namespace for every member; members beyond the first get extra addresses on its eth0. */
function etcdNode(lab: string, segA: Segment, count: EtcdMemberCount): LabPlan['etcd'] {
  const members = planEtcdMembers(etcdMemberIps(segA, count));
  const first = members[0]!;
  const extra = members.slice(1).map((m) => `${m.ip}/${segA.prefixLen}`);
  const link = { ...attach(segA, 'etcd', HOST_PART.etcd), ...(extra.length > 0 ? { extraAddresses: extra } : {}) };
  return { id: 'etcd', ns: nsName(lab, roles.etcd()), ip: first.ip, endpoint: first.clientUrl, endpoints: clientEndpoints(members), members, links: [link] };
}

function outsideNode(lab: string, segA: Segment): LabPlan['outside'] {
  const id = roles.outside();
  return { id, ns: nsName(lab, id), ip: segmentIp(segA, HOST_PART.outside), links: [attach(segA, id, HOST_PART.outside)] };
}

function pods(opts: LabOptions): LabPod[] {
  const out: LabPod[] = [];
  for (let h = 1; h <= opts.hosts; h++) {
    for (let p = 1; p <= opts.podsPerHost; p++) {
      const id = roles.pod(h, p);
      out.push({ id, host: roles.host(h), ns: nsName(opts.name, id) });
    }
  }
  return out;
}

/** etcd stays on segment A; in a routed lab, hosts on B reach it through the router. */
export function planLab(opts: LabOptions): LabPlan {
  const u = planUnderlay(opts.name, opts.topology);
  const etcd = etcdNode(opts.name, segmentA(u), opts.etcdMembers ?? 1);
  const hosts = Array.from({ length: opts.hosts }, (_, i) => host(opts, u, i + 1));
  const { name, dir, backend, topology } = opts;
  const outside = outsideNode(opts.name, segmentA(u));
  return { name, prefix: labPrefix(name), dir, backend, network: opts.network ?? LAB_NETWORK, topology, segments: u.segments, router: u.router, etcd, outside, ipMasq: opts.ipMasq ?? false, directRouting: opts.directRouting ?? false, ...(opts.udpDatapath ? { udpDatapath: opts.udpDatapath } : {}), hosts, pods: pods(opts) };
}

/** The network config `up` writes with `twill config set`. */
export function networkConfigJson(plan: Pick<LabPlan, 'network' | 'backend'> & { readonly directRouting?: boolean }): string {
  return JSON.stringify({ Network: plan.network, SubnetLen: 24, Backend: { Type: plan.backend, ...(plan.directRouting === true ? { DirectRouting: true } : {}) } });
}

/** The nodes on the underlay (everything with a veth to a segment), router first. */
export function planNodes(plan: Pick<LabPlan, 'router' | 'etcd' | 'hosts' | 'outside'>): LabNode[] {
  return [...(plan.router ? [plan.router] : []), plan.etcd, ...plan.hosts, plan.outside];
}

/** Every namespace of the plan, in creation order (segments first: veths are created from there). */
export function planNamespaces(plan: LabPlan): string[] {
  return [...plan.segments.map((s) => s.ns), ...planNodes(plan).map((n) => n.ns), ...plan.pods.map((p) => p.ns)];
}

export function hostFiles(h: Pick<LabHost, 'dir'>) {
  return { subnetFile: `${h.dir}/subnet.env`, log: `${h.dir}/agent.log`, pidFile: `${h.dir}/agent.pid`, cniDir: `${h.dir}/cni`, cniConfFile: `${h.dir}/net.d/10-twill.conflist` };
}
