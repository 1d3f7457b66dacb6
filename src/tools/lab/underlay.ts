import { TwillError } from '../../errors.js';
import { formatIp, parseCidr, type Ipv4Net } from '../../lib/ipv4.js';
import { nsName, roles } from './naming.js';

/**
 * Pure: the lab's underlay as data. `flat` is one L2 segment whose bridge carries the hosts'
 * gateway address. `routed` is two segments joined by a router namespace with one leg on each
 * bridge; hosts alternate between them (h1 on A, h2 on B, h3 on A, ...). Everything stays in
 * 198.18.0.0/15, the benchmarking range.
 */
export const LAB_TOPOLOGIES = ['flat', 'routed'] as const;
export type LabTopology = (typeof LAB_TOPOLOGIES)[number];

export interface Segment {
  /** A, B, ...: what status shows. */
  readonly id: string;
  readonly ns: string;
  readonly bridge: string;
  /** The segment's network, e.g. 198.18.0.0/24. */
  readonly subnet: string;
  /** The default gateway of the nodes on this segment. */
  readonly gateway: string;
  readonly prefixLen: number;
  /** The bridge's own address: the gateway in a flat lab; null when a router holds the gateway. */
  readonly bridgeCidr: string | null;
}

/** A veth from a segment's bridge (`port`) to a node's `iface`. */
export interface Attachment {
  readonly segmentNs: string;
  readonly port: string;
  readonly iface: string;
  readonly address: string;
  /** Default route via this gateway, or none. */
  readonly gateway: string | null;
  /** More addresses on the same iface (etcd members beyond the first); absent: none. */
  readonly extraAddresses?: readonly string[];
}

export interface LabNode {
  readonly id: string;
  readonly ns: string;
  readonly links: readonly Attachment[];
}

export interface Underlay {
  readonly topology: LabTopology;
  readonly segments: readonly Segment[];
  /** routed: the namespace joining the segments (IP forwarding on there only); flat: none. */
  readonly router: LabNode | null;
}

const LAYOUT = [
  { id: 'A', subnet: '198.18.0.0/24' },
  { id: 'B', subnet: '198.19.0.0/24' },
] as const;

/** Host parts of the fixed addresses on a segment; etcd members 2, 3 sit at etcdMore, etcdMore + 1. */
export const HOST_PART = { gateway: 1, etcd: 2, outside: 3, etcdMore: 4, firstHost: 10 } as const;

/** The underlay addresses of `count` etcd members: 198.18.0.2 for the first (as ever), then .4, .5. */
export function etcdMemberIps(seg: Pick<Segment, 'subnet'>, count: number): string[] {
  return Array.from({ length: count }, (_, i) => segmentIp(seg, i === 0 ? HOST_PART.etcd : HOST_PART.etcdMore + i - 1));
}

export function parseTopology(text: string): LabTopology {
  const found = LAB_TOPOLOGIES.find((t) => t === text);
  if (!found) {
    throw new TwillError('TWILL_ERR_OPTION_INVALID', `lab topology "${text}" is not supported (have: ${LAB_TOPOLOGIES.join(', ')})`, {
      details: { topology: text },
    });
  }
  return found;
}

export function planUnderlay(lab: string, topology: LabTopology): Underlay {
  const layout = topology === 'routed' ? LAYOUT : LAYOUT.slice(0, 1);
  const segments = layout.map((l, i) => segment(lab, i, l, topology === 'flat'));
  return { topology, segments, router: topology === 'routed' ? router(lab, segments) : null };
}

/** The address `hostPart` on the segment (198.18.0.0/24, 12 → 198.18.0.12). */
export function segmentIp(seg: Pick<Segment, 'subnet'>, hostPart: number): string {
  return formatIp(segmentNet(seg.subnet).addr + hostPart);
}

function segmentNet(subnet: string): Ipv4Net {
  const net = parseCidr(subnet);
  if (!net) throw new Error(`bad segment subnet ${subnet}`);
  return net;
}

/** The segment host i (1-based) sits on: A in a flat lab; A, B, A, B, ... in a routed one. */
export function hostSegment(u: Pick<Underlay, 'segments'>, index: number): Segment {
  const seg = u.segments[(index - 1) % u.segments.length];
  if (!seg) throw new Error(`no segment for host ${index}`);
  return seg;
}

/** Segment A: etcd's, in every topology. */
export function segmentA(u: Pick<Underlay, 'segments'>): Segment {
  return hostSegment(u, 1);
}

/** A node's eth0 on the segment, with its default route via the segment's gateway. */
export function attach(seg: Segment, port: string, hostPart: number): Attachment {
  return { segmentNs: seg.ns, port, iface: 'eth0', address: `${segmentIp(seg, hostPart)}/${seg.prefixLen}`, gateway: seg.gateway };
}

function segment(lab: string, index: number, layout: (typeof LAYOUT)[number], gatewayOnBridge: boolean): Segment {
  const prefixLen = segmentNet(layout.subnet).len;
  const gateway = segmentIp(layout, HOST_PART.gateway);
  const ns = nsName(lab, roles.underlay(index));
  return { id: layout.id, ns, bridge: 'br0', subnet: layout.subnet, gateway, prefixLen, bridgeCidr: gatewayOnBridge ? `${gateway}/${prefixLen}` : null };
}

/** One leg per segment (eth0 on A, eth1 on B), each holding that segment's gateway address. */
function router(lab: string, segments: readonly Segment[]): LabNode {
  const id = roles.router();
  const links = segments.map((seg, i) => ({ segmentNs: seg.ns, port: id, iface: `eth${i}`, address: `${seg.gateway}/${seg.prefixLen}`, gateway: null }));
  return { id, ns: nsName(lab, id), links };
}
