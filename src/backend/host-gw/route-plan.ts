/**
 * The pure core of host-gw: which peers get a route. Whether a peer is on our L2 segment, and
 * the minimal change set from the twill-owned routes in the kernel to the desired ones, live in
 * ../shared/ (vxlan and udp use them for DirectRouting) and are re-exported here.
 * No I/O here (style rule 7): the backend feeds in leases, kernel answers, and gets changes back.
 */
import { formatCidr, parseIp } from '../../lib/ipv4.js';
import type { Lease } from '../../subnet/types.js';

export { l2Verdict, type L2Verdict } from '../shared/l2-verdict.js';
export { planRoutes, planSubnets, type DesiredRoute } from '../shared/route-diff.js';

export const HOST_GW_TYPE = 'host-gw';

/** A host-gw peer as this backend sees it. */
export interface Peer {
  readonly subnet: string;
  readonly publicIP: string;
}

/** This node, so that its own lease (or an old one with its IP) is never routed. */
export interface Self {
  readonly subnet: string;
  readonly publicIP: string;
}

/** A lease this backend routes (BackendType host-gw, neither our subnet nor our PublicIP) as a peer; else null. */
export function asPeer(lease: Lease, self: Self): Peer | null {
  if (lease.attrs.backendType !== HOST_GW_TYPE) return null;
  const subnet = formatCidr(lease.subnet);
  if (subnet === self.subnet || lease.attrs.publicIP === self.publicIP) return null;
  return { subnet, publicIP: lease.attrs.publicIP };
}

/** The leases this backend routes, sorted by subnet. */
export function hostGwPeers(leases: Iterable<Lease>, self: Self): Peer[] {
  const peers: Peer[] = [];
  for (const lease of leases) {
    const peer = asPeer(lease, self);
    if (peer) peers.push(peer);
  }
  return peers.sort((a, b) => a.subnet.localeCompare(b.subnet));
}

export function validPublicIP(peer: Peer): boolean {
  return parseIp(peer.publicIP) !== null;
}
