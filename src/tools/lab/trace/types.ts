import type { PathTrace } from '../../../trace/path.js';

/**
 * `twill lab trace`: one real packet followed across the lab. Each hop is an interface of a
 * lab namespace where a capture waited for the packet; what it saw is decoded into layers,
 * outermost first, so encapsulation shows as an inner packet inside an outer one.
 */
export type Layer =
  | { readonly proto: 'ether'; readonly src: string; readonly dst: string }
  | { readonly proto: 'ipv4'; readonly src: string; readonly dst: string; readonly ttl: number; readonly length: number }
  | { readonly proto: 'udp'; readonly srcPort: number; readonly dstPort: number; readonly length: number }
  | { readonly proto: 'vxlan'; readonly vni: number }
  | { readonly proto: 'icmp'; readonly type: number; readonly code: number; readonly id: number; readonly seq: number }
  | { readonly proto: 'tcp'; readonly srcPort: number; readonly dstPort: number; readonly flags: string };

export interface CapturedPacket {
  /** The frame's length on this interface, in bytes. */
  readonly bytes: number;
  readonly layers: readonly Layer[];
  /** Bytes in front of the traced (inner) IPv4 packet beyond the link header: 0 unencapsulated, 28 udp, 50 vxlan. */
  readonly overheadBytes: number;
  /** One line: "198.18.0.11:8285 > 198.18.0.12:8285 UDP | 10.244.1.2 > 10.244.2.2 ICMP echo request". */
  readonly summary: string;
}

export type HopRole = 'pod' | 'veth' | 'bridge' | 'tunnel' | 'underlay' | 'router' | 'outside';

export interface Hop {
  /** Unique in one trace, stable across runs: "h1-p1:eth0", "h1:cni0", "rt:eth1". */
  readonly id: string;
  /** The lab node the interface belongs to: a pod id, a host id, "rt", "out". */
  readonly node: string;
  readonly ns: string;
  readonly dev: string;
  readonly role: HopRole;
  /** What the hop is, for people: "h1's bridge cni0", "the underlay of h2". */
  readonly label: string;
  /** null: the capture there saw nothing before the deadline. */
  readonly packet: CapturedPacket | null;
  /** Why nothing could be captured there at all (the device is missing, say); absent: it listened. */
  readonly error?: string;
}

export interface LabTrace {
  readonly lab: string;
  readonly backend: string;
  /** The source pod's id and address. */
  readonly from: { readonly id: string; readonly ip: string };
  /** The destination: a pod id, a host id, "out", or the address itself when no lab node owns it. */
  readonly to: { readonly id: string; readonly ip: string };
  readonly hops: readonly Hop[];
  /** The first hop that saw nothing (where the packet was lost); null when every hop saw it. */
  readonly lostAt: string | null;
  /** The source host's agent's own account (GET /v1/trace from that pod); null when it did not answer. */
  readonly chain: PathTrace | null;
  /** The source address was rewritten on the way (masquerade): from the pod's address to this one. */
  readonly masqueradedTo: string | null;
  /** Every hop saw the packet. */
  readonly complete: boolean;
}
