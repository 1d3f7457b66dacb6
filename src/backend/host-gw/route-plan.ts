/**
 * The pure core of host-gw: which peers get a route, whether a peer is on our L2 segment, and
 * the minimal change set from the twill-owned routes in the kernel to the desired ones.
 * No I/O here (style rule 7): the backend feeds in leases, kernel answers, and gets changes back.
 */
import type { KernelRoute, RouteChange, RouteLookup } from '../../kernel/index.js';
import { formatCidr, parseIp } from '../../lib/ipv4.js';
import type { Lease } from '../../subnet/types.js';

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

export interface DesiredRoute {
  readonly dst: string;
  readonly gateway: string;
  readonly dev: string;
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

export type L2Verdict = { readonly onLink: true } | { readonly onLink: false; readonly reason: string };

/** A peer is on our L2 segment if the kernel reaches its PublicIP directly (no gateway) through `dev`. */
export function l2Verdict(lookup: RouteLookup | null | undefined, dev: string): L2Verdict {
  if (!lookup) return { onLink: false, reason: 'no route to PublicIP' };
  if (lookup.gateway !== undefined) return { onLink: false, reason: `PublicIP is reached via gateway ${lookup.gateway}` };
  if (lookup.dev !== dev) return { onLink: false, reason: `PublicIP is reached via ${lookup.dev}, not ${dev}` };
  return { onLink: true };
}

/**
 * Replace what is missing or different, delete what no peer wants. `actual` holds only routes
 * with our proto (the kernel is asked for nothing else), so other routes are never planned.
 */
export function planRoutes(desired: readonly DesiredRoute[], actual: readonly KernelRoute[], proto: number): RouteChange[] {
  const want = new Map(desired.map((d) => [d.dst, d]));
  const have = new Map<string, KernelRoute>();
  for (const route of actual) if (!have.has(route.dst)) have.set(route.dst, route);
  return [...planSubnets(want.keys(), want, have, proto), ...planSubnets([...have.keys()].filter((dst) => !want.has(dst)), want, have, proto)];
}

/**
 * The changes for these destinations only (an incremental pass plans just the peers that
 * changed): each gets its desired route, or loses ours. `have` holds only routes with our proto.
 */
export function planSubnets(dsts: Iterable<string>, want: ReadonlyMap<string, DesiredRoute>, have: ReadonlyMap<string, KernelRoute>, proto: number): RouteChange[] {
  const changes: RouteChange[] = [];
  for (const dst of dsts) {
    const d = want.get(dst);
    const cur = have.get(dst);
    if (d && (cur?.gateway !== d.gateway || cur.dev !== d.dev)) changes.push({ op: 'replace', dst, gateway: d.gateway, dev: d.dev, proto });
    else if (!d && cur) changes.push({ op: 'delete', dst, proto });
  }
  return changes;
}
