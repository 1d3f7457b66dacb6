/**
 * The VTEP's identity: its MAC and what goes into the lease. Pure.
 * flannel gives the device a random MAC at each creation, so after a reboot every peer holds a
 * stale FDB entry until it sees the new lease. twill derives the MAC from what identifies the
 * tunnel endpoint (PublicIP and VNI), so it survives restarts and reboots unchanged.
 */
import { createHash } from 'node:crypto';
import { formatCidr } from '../../lib/ipv4.js';
import type { Lease, LeaseAttrs } from '../../subnet/types.js';

export const VXLAN_TYPE = 'vxlan';
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) headers. */
export const VXLAN_OVERHEAD = 50;

/** `flannel.<VNI>`, as flannel names it. */
export const deviceName = (vni: number): string => `flannel.${vni}`;

/** A locally administered unicast MAC from a hash of PublicIP and VNI, lower-case, colon-separated. */
export function vtepMac(publicIP: string, vni: number): string {
  const bytes = createHash('sha256').update(`twill vxlan vtep ${publicIP} ${vni}`).digest().subarray(0, 6);
  bytes[0] = (bytes[0]! & 0xfc) | 0x02; // unicast (bit 0 clear), locally administered (bit 1 set)
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** flannel's vxlan lease attrs: `"BackendData":{"VNI":1,"VtepMAC":"…"}`, in that order. */
export function vxlanLeaseAttrs(publicIP: string, vni: number): LeaseAttrs {
  return { publicIP, publicIPv6: null, backendType: VXLAN_TYPE, backendData: { VNI: vni, VtepMAC: vtepMac(publicIP, vni) } };
}

/** A MAC as Go's net.ParseMAC reads a 6-byte one (colons or dashes, any case), lower-case with colons; else null. */
export function normalizeMac(text: unknown): string | null {
  if (typeof text !== 'string' || !/^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$/.test(text)) return null;
  return text.replace(/-/g, ':').toLowerCase();
}

/** A vxlan peer: its subnet, where its VTEP is, and the address its neighbour entry and route use. */
export interface VxlanPeer {
  readonly subnet: string;
  readonly publicIP: string;
  readonly vtepMac: string;
  /** The peer subnet's first address (its network address, as flannel uses it): the next hop over the tunnel. */
  readonly gateway: string;
}

export interface Self {
  readonly subnet: string;
  readonly publicIP: string;
}

export type LeaseVerdict =
  | { readonly kind: 'peer'; readonly peer: VxlanPeer }
  | { readonly kind: 'self' }
  | { readonly kind: 'foreign'; readonly backendType: string | null }
  | { readonly kind: 'invalid'; readonly reason: string };

/** What a lease is to this backend. A peer's VNI is not read: receivers use their own, as in flannel. */
export function classifyLease(lease: Lease, self: Self): LeaseVerdict {
  const subnet = formatCidr(lease.subnet);
  if (subnet === self.subnet || lease.attrs.publicIP === self.publicIP) return { kind: 'self' };
  if (lease.attrs.backendType !== VXLAN_TYPE) return { kind: 'foreign', backendType: lease.attrs.backendType ?? null };
  const data = lease.attrs.backendData;
  const mac = typeof data === 'object' && data !== null ? normalizeMac((data as Record<string, unknown>)['VtepMAC']) : null;
  if (mac === null) return { kind: 'invalid', reason: 'lease has no valid BackendData.VtepMAC' };
  return { kind: 'peer', peer: { subnet, publicIP: lease.attrs.publicIP, vtepMac: mac, gateway: subnet.split('/')[0]! } };
}
