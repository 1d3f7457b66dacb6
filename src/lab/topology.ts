import { TwillError } from '../errors.js';
import { labPrefix, nsName, roles } from './naming.js';

/**
 * The lab as data: L2 segments (a bridge in its own namespace) and nodes attached to them.
 * Pure; netns-setup turns it into `ip` batches. A routed topology adds a second segment and a
 * router node with two attachments; an "outside" namespace is one more node.
 */
export const LAB_BACKENDS = ['host-gw'] as const;
export type LabBackend = (typeof LAB_BACKENDS)[number];

export const LAB_NETWORK = '10.244.0.0/16';
export const ETCD_PORT = 2379;
export const MAX_HOSTS = 50;
export const MAX_PODS_PER_HOST = 20;

export interface LabOptions {
  readonly name: string;
  readonly hosts: number;
  readonly podsPerHost: number;
  readonly backend: LabBackend;
  readonly dir: string;
}

export interface Segment {
  readonly ns: string;
  readonly bridge: string;
  /** Address of the bridge, with prefix length: the hosts' default gateway. */
  readonly gatewayCidr: string;
  readonly gateway: string;
  readonly prefixLen: number;
}

/** A veth from a segment's bridge (`port`) to a node's `iface`. */
export interface Attachment {
  readonly segmentNs: string;
  readonly port: string;
  readonly iface: string;
  readonly address: string;
  /** Default route via this gateway, or none. */
  readonly gateway: string | null;
}

export interface LabNode {
  readonly id: string;
  readonly ns: string;
  readonly links: readonly Attachment[];
}

export interface LabHost extends LabNode {
  readonly index: number;
  readonly ip: string;
  readonly dir: string;
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
  readonly segments: readonly Segment[];
  readonly etcd: LabNode & { readonly ip: string; readonly endpoint: string };
  readonly hosts: readonly LabHost[];
  readonly pods: readonly LabPod[];
}

const UNDERLAY = { base: '198.18.0', prefixLen: 24, gatewayHost: 1, etcdHost: 2, firstHost: 10 } as const;

export function parseBackend(text: string): LabBackend {
  const found = LAB_BACKENDS.find((b) => b === text);
  if (!found) {
    throw new TwillError('TWILL_ERR_OPTION_INVALID', `lab backend "${text}" is not supported (have: ${LAB_BACKENDS.join(', ')})`, {
      details: { backend: text },
    });
  }
  return found;
}

function underlay(lab: string): Segment {
  const gateway = `${UNDERLAY.base}.${UNDERLAY.gatewayHost}`;
  return { ns: nsName(lab, roles.underlay(0)), bridge: 'br0', gateway, gatewayCidr: `${gateway}/${UNDERLAY.prefixLen}`, prefixLen: UNDERLAY.prefixLen };
}

function attach(seg: Segment, port: string, host: number): Attachment {
  return { segmentNs: seg.ns, port, iface: 'eth0', address: `${UNDERLAY.base}.${host}/${seg.prefixLen}`, gateway: seg.gateway };
}

function host(opts: LabOptions, seg: Segment, index: number): LabHost {
  const id = roles.host(index);
  const ip = `${UNDERLAY.base}.${UNDERLAY.firstHost + index}`;
  return { id, index, ip, ns: nsName(opts.name, id), dir: `${opts.dir}/${id}`, links: [attach(seg, id, UNDERLAY.firstHost + index)] };
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

export function planLab(opts: LabOptions): LabPlan {
  const seg = underlay(opts.name);
  const etcdIp = `${UNDERLAY.base}.${UNDERLAY.etcdHost}`;
  const etcd = { id: 'etcd', ns: nsName(opts.name, roles.etcd()), ip: etcdIp, endpoint: `http://${etcdIp}:${ETCD_PORT}`, links: [attach(seg, 'etcd', UNDERLAY.etcdHost)] };
  const hosts = Array.from({ length: opts.hosts }, (_, i) => host(opts, seg, i + 1));
  return { name: opts.name, prefix: labPrefix(opts.name), dir: opts.dir, backend: opts.backend, network: LAB_NETWORK, segments: [seg], etcd, hosts, pods: pods(opts) };
}

/** The network config `up` writes with `twill config set`. */
export function networkConfigJson(plan: Pick<LabPlan, 'network' | 'backend'>): string {
  return JSON.stringify({ Network: plan.network, SubnetLen: 24, Backend: { Type: plan.backend } });
}

/** Every namespace of the plan, in creation order (segments first: veths are created from there). */
export function planNamespaces(plan: LabPlan): string[] {
  return [...plan.segments.map((s) => s.ns), plan.etcd.ns, ...plan.hosts.map((h) => h.ns), ...plan.pods.map((p) => p.ns)];
}

export function hostFiles(h: Pick<LabHost, 'dir'>) {
  return { subnetFile: `${h.dir}/subnet.env`, log: `${h.dir}/agent.log`, pidFile: `${h.dir}/agent.pid`, cniDir: `${h.dir}/cni` };
}

export function etcdFiles(dir: string) {
  return { dir: `${dir}/etcd`, dataDir: `${dir}/etcd/data`, log: `${dir}/etcd/etcd.log`, pidFile: `${dir}/etcd/etcd.pid` };
}
