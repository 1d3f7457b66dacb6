/**
 * The udp backend's forwarding decisions, pure (style rule 7): which peer an outbound packet
 * goes to, whether an inbound datagram is accepted, and the ICMP errors to write back.
 * Packets are patched in place (TTL, checksum); nothing here allocates per forwarded packet.
 */
import { formatCidr, formatIp, parseIp, type Ipv4Net } from '../../lib/ipv4.js';
import { TokenBucket } from '../../lib/token-bucket.js';
import { decrementTtl, headerChecksumValid } from './checksum.js';
import { TunnelCounters, Traffic, type DropReason } from './counters.js';
import { buildIcmpError, ICMP_BURST, ICMP_DEST_UNREACHABLE, ICMP_NET_UNREACHABLE, ICMP_RATE_PER_SEC, ICMP_TIME_EXCEEDED, ICMP_TTL_EXCEEDED_IN_TRANSIT, icmpErrorAllowed } from './icmp.js';
import { checkHeader, headerLength, dstI32, srcI32 } from './packet.js';
import { PeerTable } from './peer-table.js';

export interface ForwarderConfig {
  /** This node's lease subnet: the only inner destination accepted from peers. */
  readonly ownSubnet: Ipv4Net;
  /** The TUN's address (uint32): the source of the ICMP errors we generate. */
  readonly tunAddress: number;
  /** The TUN's MTU: a larger datagram is dropped as oversize, never truncated. */
  readonly mtu: number;
  /** The ICMP errors' token bucket; default ICMP_RATE_PER_SEC, ICMP_BURST. */
  readonly icmpLimit?: { readonly ratePerSec: number; readonly burst: number };
  /** Milliseconds for the ICMP bucket (tests step it); default performance.now(). */
  readonly now?: () => number;
}

/** A peer as the data path holds it; resolved once when set, counted on every packet. */
export class UdpPeer {
  readonly subnetText: string;
  readonly publicIPNum: number;
  readonly traffic = new Traffic();

  constructor(
    readonly subnet: Ipv4Net,
    /** Canonical dotted quad, as node:dgram reports a sender's address. */
    readonly publicIP: string,
  ) {
    this.subnetText = formatCidr(subnet);
    this.publicIPNum = parseIp(publicIP) ?? 0;
  }
}

/** A peer to send to, or why the packet was dropped. */
export type OutboundVerdict = UdpPeer | DropReason;

/** The drops that are answered with an ICMP error into the TUN. */
export type IcmpReason = 'no-route' | 'ttl-expired';

export class Forwarder {
  readonly counters = new TunnelCounters();
  private readonly table = new PeerTable<UdpPeer>();
  /** PublicIP → how many peer subnets it carries (a node can hold two leases for a while). */
  private readonly publicIPs = new Map<string, number>();
  private readonly ownAddr: number;
  private readonly ownMask: number;
  private readonly icmpBucket: TokenBucket;

  constructor(private readonly cfg: ForwarderConfig) {
    const limit = cfg.icmpLimit ?? { ratePerSec: ICMP_RATE_PER_SEC, burst: ICMP_BURST };
    this.icmpBucket = new TokenBucket({ ...limit, ...(cfg.now ? { now: cfg.now } : {}) });
    this.ownMask = cfg.ownSubnet.len === 0 ? 0 : (0xffffffff << (32 - cfg.ownSubnet.len)) | 0;
    this.ownAddr = cfg.ownSubnet.addr & this.ownMask;
  }

  /** Adds or replaces a peer; a replaced peer keeps its counters. Returns null for an invalid PublicIP. */
  setPeer(subnet: Ipv4Net, publicIP: string): UdpPeer | null {
    const ip = parseIp(publicIP);
    if (ip === null) return null;
    const peer = new UdpPeer(subnet, formatIp(ip));
    const old = this.table.get(subnet);
    if (old) {
      Object.assign(peer.traffic, old.traffic);
      this.release(old.publicIP);
    }
    this.publicIPs.set(peer.publicIP, (this.publicIPs.get(peer.publicIP) ?? 0) + 1);
    this.table.set(subnet, peer);
    return peer;
  }

  deletePeer(subnet: Ipv4Net): boolean {
    const old = this.table.get(subnet);
    if (!old) return false;
    this.table.delete(subnet);
    this.release(old.publicIP);
    return true;
  }

  peers(): UdpPeer[] {
    return [...this.table.entries()].map(([, p]) => p);
  }

  /** A packet read from the TUN: the peer to send it to (TTL already decremented), or a drop. */
  outbound(pkt: Buffer): OutboundVerdict {
    const problem = checkHeader(pkt);
    if (problem !== null) return this.drop(problem);
    const dst = dstI32(pkt);
    if ((dst & this.ownMask) === this.ownAddr) return this.drop('own-subnet');
    const peer = this.table.lookup(dst);
    if (peer === undefined) return this.drop('no-route');
    if (!decrementTtl(pkt)) return this.drop('ttl-expired');
    peer.traffic.countOut(pkt.length);
    this.counters.traffic.countOut(pkt.length);
    return peer;
  }

  /**
   * A datagram from `from` (its source address): null when accepted (TTL already decremented,
   * ready for the TUN), else the drop reason. Accepted only from a peer's PublicIP, with the
   * inner source in that peer's subnet and the inner destination in ours.
   */
  inbound(msg: Buffer, from: string): DropReason | null {
    if (msg.length > this.cfg.mtu) return this.drop('oversize');
    if (!this.publicIPs.has(from)) return this.drop('unknown-peer');
    const problem = checkHeader(msg);
    if (problem !== null) return this.drop(problem);
    if (!headerChecksumValid(msg, headerLength(msg))) return this.drop('bad-checksum');
    const peer = this.table.lookup(srcI32(msg));
    if (peer === undefined || peer.publicIP !== from) return this.drop('spoofed-source');
    if ((dstI32(msg) & this.ownMask) !== this.ownAddr) return this.drop('not-for-us');
    if (!decrementTtl(msg)) return this.drop('ttl-expired');
    peer.traffic.countIn(msg.length);
    this.counters.traffic.countIn(msg.length);
    return null;
  }

  /**
   * The ICMP error answering a packet dropped for `reason` (unchanged by the drop), or null:
   * none may be sent about it, or the rate limit's bucket is empty (counted as suppressed).
   */
  icmpFor(pkt: Buffer, reason: IcmpReason): Buffer | null {
    if (checkHeader(pkt) !== null || !icmpErrorAllowed(pkt)) return null; // never answered: takes no token
    if (!this.icmpBucket.take()) {
      this.counters.icmpSuppressed++;
      return null;
    }
    const reply =
      reason === 'no-route'
        ? buildIcmpError(pkt, ICMP_DEST_UNREACHABLE, ICMP_NET_UNREACHABLE, this.cfg.tunAddress)
        : buildIcmpError(pkt, ICMP_TIME_EXCEEDED, ICMP_TTL_EXCEEDED_IN_TRANSIT, this.cfg.tunAddress);
    if (reply) this.counters.icmpSent++;
    return reply;
  }

  private drop(reason: DropReason): DropReason {
    this.counters.drop(reason);
    return reason;
  }

  private release(publicIP: string): void {
    const n = (this.publicIPs.get(publicIP) ?? 0) - 1;
    if (n > 0) this.publicIPs.set(publicIP, n);
    else this.publicIPs.delete(publicIP);
  }
}
