/**
 * Which leases are udp peers, and this node's TUN address. Pure.
 */
import { formatCidr, parseIp, type Ipv4Net } from '../../lib/ipv4.js';
import type { Lease } from '../../subnet/types.js';

export const UDP_TYPE = 'udp';
/** 20 bytes of outer IPv4 header and 8 of UDP header (flannel's encapOverhead). */
export const UDP_OVERHEAD = 28;
/** TUN txqueuelen: with GRO, pods ack per super-packet and senders burst past the default 500 (retransmits). */
export const TUN_TXQUEUELEN = 1000;

/**
 * The TUN's address: the lease subnet's own IP, /32, as flannel gives flannel0 (l.Subnet.IP),
 * e.g. 10.244.1.0 — not the first host, which the CNI bridge carries. ICMP errors come from it.
 */
export function tunAddress(own: Ipv4Net): number {
  return own.addr;
}

export interface Self {
  readonly subnet: string;
  readonly publicIP: string;
}

export type PeerVerdict =
  | { readonly kind: 'peer'; readonly subnet: Ipv4Net; readonly publicIP: string }
  | { readonly kind: 'invalid'; readonly reason: string }
  /** Not ours to carry: our own lease, or another backend's node. */
  | { readonly kind: 'ignored' };

/**
 * flannel's udp leases carry no BackendType, so a lease without one, or with "udp", is a peer,
 * unless it is our subnet or has our PublicIP (an old lease of ours would loop back to us).
 */
export function classifyLease(lease: Lease, self: Self): PeerVerdict {
  const type = lease.attrs.backendType;
  if (type !== undefined && type !== UDP_TYPE) return { kind: 'ignored' };
  if (formatCidr(lease.subnet) === self.subnet || lease.attrs.publicIP === self.publicIP) return { kind: 'ignored' };
  if (parseIp(lease.attrs.publicIP) === null) return { kind: 'invalid', reason: `invalid PublicIP "${lease.attrs.publicIP}"` };
  return { kind: 'peer', subnet: lease.subnet, publicIP: lease.attrs.publicIP };
}
