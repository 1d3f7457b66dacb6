/**
 * ICMP error messages the data path writes back into the TUN (net unreachable, time exceeded).
 * Pure. The "never" rules are RFC 1812 4.3.2.7's, kept simple.
 */
import { internetChecksum, writeHeaderChecksum } from './checksum.js';
import { checkHeader, fragmentOffset, headerLength, PROTO_ICMP, dstI32, srcI32 } from './packet.js';

export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_NET_UNREACHABLE = 0;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_TTL_EXCEEDED_IN_TRANSIT = 0;

/**
 * The tunnel's ICMP errors pass one token bucket (forward.ts): 10 per second, bursts of 20,
 * shared by every pod of the node; the rest are counted as suppressed. Linux limits its own
 * per destination to one per icmp_ratelimit (1000 ms) with bursts of 6 (XRLIM_BURST_FACTOR),
 * and host-wide to icmp_msgs_per_sec 1000, icmp_msgs_burst 50. One bucket here keeps a flood
 * of bad packets from turning into a flood of replies, and still answers a traceroute.
 */
export const ICMP_RATE_PER_SEC = 10;
export const ICMP_BURST = 20;

/** ICMP types that are errors (never answered with another error); everything else is a query. */
const ICMP_ERROR_TYPES: ReadonlySet<number> = new Set([3, 4, 5, 11, 12]);
const ICMP_TTL = 64;
// Precedence "internetwork control", as RFC 1812 4.3.2.5 suggests and Linux does for ICMP errors.
const ICMP_TOS = 0xc0;
/** RFC 792: the offender's IP header plus the first 64 bits of its payload. */
const QUOTED_PAYLOAD = 8;

/** Whether a source address may receive an ICMP error: not 0/8, loopback, multicast, class E or broadcast (nor to a multicast or broadcast destination). */
function unicast(ip: number): boolean {
  const first = ip >>> 24;
  return first !== 0 && first !== 127 && first < 224;
}

/** May an ICMP error be sent about `pkt`? Assumes checkHeader(pkt) passed. */
export function icmpErrorAllowed(pkt: Buffer): boolean {
  if (fragmentOffset(pkt) !== 0) return false;
  if (!unicast(srcI32(pkt)) || dstI32(pkt) >>> 28 >= 0xe) return false;
  if (pkt[9] !== PROTO_ICMP) return true;
  const typeAt = headerLength(pkt);
  // An ICMP packet too short to show its type might be an error: stay silent.
  return typeAt < pkt.length && !ICMP_ERROR_TYPES.has(pkt[typeAt]!);
}

/**
 * The ICMP error about `offender`, from `source` (our TUN address) to the offender's source,
 * or null when none may be sent (bad header, fragment, ICMP error, non-unicast source).
 */
export function buildIcmpError(offender: Buffer, type: number, code: number, source: number): Buffer | null {
  if (checkHeader(offender) !== null || !icmpErrorAllowed(offender)) return null;
  const hl = headerLength(offender);
  const quoted = Math.min(offender.length, hl + QUOTED_PAYLOAD);
  const out = Buffer.alloc(20 + 8 + quoted);
  out[0] = 0x45;
  out[1] = ICMP_TOS;
  out.writeUInt16BE(out.length, 2);
  out[8] = ICMP_TTL;
  out[9] = PROTO_ICMP;
  out.writeUInt32BE(source >>> 0, 12);
  out.writeInt32BE(srcI32(offender), 16);
  writeHeaderChecksum(out);
  out[20] = type;
  out[21] = code;
  offender.copy(out, 28, 0, quoted);
  out.writeUInt16BE(internetChecksum(out, 20, out.length), 22);
  return out;
}
