import type { Hop, Layer } from './types.js';

/** Pure: the innermost IPv4 layer of a hop's packet (the traced packet itself, inside any tunnel). */
export function innermostIp(layers: readonly Layer[]): Extract<Layer, { proto: 'ipv4' }> | null {
  const ips = layers.filter((l): l is Extract<Layer, { proto: 'ipv4' }> => l.proto === 'ipv4');
  return ips.at(-1) ?? null;
}

/** The source address the packet was rewritten to on the way (masquerade); null when every hop shows the pod's own. */
export function innermostSource(hops: readonly Hop[], podIp: string): string | null {
  for (const h of hops) {
    const ip = h.packet ? innermostIp(h.packet.layers) : null;
    if (ip && ip.src !== podIp) return ip.src;
  }
  return null;
}
