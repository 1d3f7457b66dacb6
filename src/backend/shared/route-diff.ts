/**
 * The minimal change set from the routes with our protocol in the kernel to the desired ones:
 * host-gw's and vxlan's. Pure (style rule 7).
 */
import type { KernelRoute, RouteChange } from '../../kernel/index.js';

export interface DesiredRoute {
  readonly dst: string;
  readonly gateway: string;
  readonly dev: string;
  /** `onlink` (vxlan: the next hop is a peer's address behind the tunnel device). */
  readonly onlink?: boolean;
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
    if (d && (cur?.gateway !== d.gateway || cur.dev !== d.dev)) changes.push({ op: 'replace', dst, gateway: d.gateway, dev: d.dev, proto, ...(d.onlink === true ? { onlink: true } : {}) });
    else if (!d && cur) changes.push({ op: 'delete', dst, proto });
  }
  return changes;
}
