/**
 * Whether a peer's PublicIP is on this node's L2 segment: host-gw routes only such peers, and
 * vxlan with DirectRouting routes them without the tunnel. Pure (style rule 7).
 */
import type { RouteLookup } from '../../kernel/index.js';

export type L2Verdict = { readonly onLink: true } | { readonly onLink: false; readonly reason: string };

/** A peer is on our L2 segment if the kernel reaches its PublicIP directly (no gateway) through `dev`. */
export function l2Verdict(lookup: RouteLookup | null | undefined, dev: string): L2Verdict {
  if (!lookup) return { onLink: false, reason: 'no route to PublicIP' };
  if (lookup.gateway !== undefined) return { onLink: false, reason: `PublicIP is reached via gateway ${lookup.gateway}` };
  if (lookup.dev !== dev) return { onLink: false, reason: `PublicIP is reached via ${lookup.dev}, not ${dev}` };
  return { onLink: true };
}
