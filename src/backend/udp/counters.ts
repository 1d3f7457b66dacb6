/**
 * What the data path counts: drops by reason, packets and bytes per direction and per peer.
 * Plain numbers on objects of a fixed shape, so that counting on the hot path allocates nothing.
 */

export const DROP_REASONS = [
  /** Shorter than an IPv4 header, or than its own IHL says. */
  'truncated',
  'not-ipv4',
  /** IHL < 5, or total length < header length. */
  'bad-header',
  'bad-checksum',
  /** Total length differs from the datagram's (or TUN read's) length. */
  'length-mismatch',
  /** Larger than the TUN's MTU. */
  'oversize',
  /** Datagram from an address that is no peer's PublicIP. */
  'unknown-peer',
  /** Inner source outside the subnet of the peer that sent the datagram. */
  'spoofed-source',
  /** Inner destination outside our own subnet. */
  'not-for-us',
  'ttl-expired',
  /** No peer subnet contains the destination (ICMP net unreachable sent). */
  'no-route',
  /** Our own subnet came back out of the TUN (no pod there yet). */
  'own-subnet',
  'send-failed',
  'tun-write-failed',
] as const;

export type DropReason = (typeof DROP_REASONS)[number];

export type DropCounts = Record<DropReason, number>;

export function zeroDrops(): DropCounts {
  return Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as DropCounts;
}

/**
 * Traffic through one peer, or through the whole tunnel. "out" counts packets handed to the
 * socket for a peer, "in" packets accepted from one (before the TUN write); what fails after
 * that is counted as send-failed or tun-write-failed.
 */
export class Traffic {
  packetsOut = 0;
  bytesOut = 0;
  packetsIn = 0;
  bytesIn = 0;

  countOut(bytes: number): void {
    this.packetsOut++;
    this.bytesOut += bytes;
  }

  countIn(bytes: number): void {
    this.packetsIn++;
    this.bytesIn += bytes;
  }

  snapshot(): TrafficSnapshot {
    return { packetsIn: this.packetsIn, bytesIn: this.bytesIn, packetsOut: this.packetsOut, bytesOut: this.bytesOut };
  }
}

export interface TrafficSnapshot {
  readonly packetsIn: number;
  readonly bytesIn: number;
  readonly packetsOut: number;
  readonly bytesOut: number;
}

/**
 * The tunnel's totals. ICMP errors generated locally are counted apart from forwarded traffic,
 * and so is TUN offload: super-packets written, and the segments merged into them.
 */
export class TunnelCounters {
  readonly drops: DropCounts = zeroDrops();
  readonly traffic = new Traffic();
  icmpSent = 0;
  /** ICMP errors not written because the rate limit's bucket was empty. */
  icmpSuppressed = 0;
  /** TCP super-packets written to the TUN (offload 'gro'). */
  superPackets = 0;
  /** Segments carried inside those super-packets. */
  coalescedSegments = 0;

  drop(reason: DropReason, packets = 1): void {
    this.drops[reason] += packets;
  }

  /** Super-packets (one unless told) carrying `segments` segments in all went into the TUN. */
  coalesced(segments: number, superPackets = 1): void {
    this.superPackets += superPackets;
    this.coalescedSegments += segments;
  }

  /** A copy with every reason present (zeros included), so that consumers see stable keys. */
  dropsSnapshot(): DropCounts {
    return { ...this.drops };
  }
}
