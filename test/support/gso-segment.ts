/**
 * The kernel's TCP segmentation (tcp_gso_segment / inet_gso_segment) in TS, for tests: splits
 * a TCP/IPv4 super-packet, such as the coalescer writes, into the segments the kernel would
 * produce, and completes a checksum-partial packet as skb_checksum_help does. Never throws.
 */
import { writeHeaderChecksum } from '../../src/backend/udp/checksum.js';

/** Why a super-packet cannot be segmented (the caller drops and counts it). */
export type SegmentProblem = 'gso-not-tcp4' | 'gso-truncated' | 'gso-bad-mss';

const IP_MIN_HEADER = 20;
const TCP_MIN_HEADER = 20;
const PROTO_TCP = 6;
const PROTO_UDP = 17;
// Byte 13 of the TCP header.
const TCP_CWR = 0x80;
const TCP_PSH = 0x08;
const TCP_FIN = 0x01;

/** Whether a Uint32Array reads words least significant byte first; fixed for the process. */
const NATIVE_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Folds a non-negative integer accumulator (below 2^53) to 16 bits with end-around carry. */
function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return s;
}

/** `acc` plus the big-endian 16-bit words of `buf[start, end)` read bytewise (odd tail padded), unfolded. */
function sumBytes(buf: Buffer, start: number, end: number, acc: number): number {
  let s = acc;
  let i = start;
  for (const end8 = end - 7; i < end8; i += 8) {
    s += ((buf[i]! << 8) | buf[i + 1]!) + ((buf[i + 2]! << 8) | buf[i + 3]!) + ((buf[i + 4]! << 8) | buf[i + 5]!) + ((buf[i + 6]! << 8) | buf[i + 7]!);
  }
  for (; i + 1 < end; i += 2) s += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) s += buf[i]! << 8;
  return s;
}

/**
 * The ones'-complement sum (folded to 16 bits) of `buf[start, end)` as big-endian 16-bit words.
 * When the start is 4-byte aligned in memory (always so for our own allocUnsafe'd segments: Node
 * aligns its pool to 8 and IP headers are multiples of 4), whole 32-bit words are read through a
 * Uint32Array view, about twice as fast as byte reads. The sum is byte-order independent up to a
 * final swap (RFC 1071 §2(B)), so native-order words are summed and the result swapped once.
 */
function onesSum(buf: Buffer, start: number, end: number): number {
  const at = buf.byteOffset + start;
  const words = (end - start) >>> 2;
  if ((at & 3) !== 0 || words < 8) return fold(sumBytes(buf, start, end, 0));
  const view = new Uint32Array(buf.buffer, at, words);
  let s = 0; // each word adds ≤ 0x1fffe: exact for any Buffer size
  for (let k = 0; k < words; k++) {
    const w = view[k]!;
    s += (w & 0xffff) + (w >>> 16);
  }
  s = fold(s);
  if (NATIVE_LITTLE_ENDIAN) s = ((s & 0xff) << 8) | (s >>> 8);
  return fold(sumBytes(buf, start + (words << 2), end, s));
}

/** Null when `pkt` is a TCP/IPv4 packet this module can segment at `mss`. */
function superPacketProblem(pkt: Buffer, mss: number): SegmentProblem | null {
  if (!Number.isInteger(mss) || mss < 1) return 'gso-bad-mss';
  if (pkt.length < IP_MIN_HEADER) return 'gso-truncated';
  const b0 = pkt[0]!;
  const hl = (b0 & 0x0f) << 2;
  if (b0 >>> 4 !== 4 || hl < IP_MIN_HEADER || pkt[9] !== PROTO_TCP) return 'gso-not-tcp4';
  // A fragment (MF set or non-zero offset) holds no whole TCP segment. Linux would not check
  // (the stack never builds a GSO fragment) and would copy the fragment bits to every segment.
  if ((pkt[6]! & 0x3f) !== 0 || pkt[7] !== 0) return 'gso-not-tcp4';
  const total = (pkt[2]! << 8) | pkt[3]!;
  if (total > pkt.length || total < hl + TCP_MIN_HEADER) return 'gso-truncated';
  const thl = (pkt[hl + 12]! >>> 4) << 2;
  if (thl < TCP_MIN_HEADER) return 'gso-not-tcp4';
  if (hl + thl > total) return 'gso-truncated';
  return null;
}

/**
 * Splits a TCP/IPv4 super-packet into packets carrying at most `mss` payload bytes each,
 * as the kernel's tcp_gso_segment does. Appends fresh Buffers (whole IPv4 packets) to `out`
 * and returns how many, or the problem. The input is not modified.
 */
export function segmentTcp4(pkt: Buffer, mss: number, out: Buffer[]): number | SegmentProblem {
  const problem = superPacketProblem(pkt, mss);
  if (problem !== null) return problem;
  const hl = (pkt[0]! & 0x0f) << 2;
  const headers = hl + ((pkt[hl + 12]! >>> 4) << 2);
  const total = (pkt[2]! << 8) | pkt[3]!; // trailing bytes past it are ignored
  const count = Math.max(1, Math.ceil((total - headers) / mss));
  const firstId = (pkt[4]! << 8) | pkt[5]!;
  const seq = pkt.readUInt32BE(hl + 4);
  const flags = pkt[hl + 13]!;
  // Pseudo-header without the TCP length: source, destination, zero, protocol.
  const pseudo = ((pkt[12]! << 8) | pkt[13]!) + ((pkt[14]! << 8) | pkt[15]!) + ((pkt[16]! << 8) | pkt[17]!) + ((pkt[18]! << 8) | pkt[19]!) + PROTO_TCP;
  for (let i = 0; i < count; i++) {
    const from = headers + i * mss;
    const to = Math.min(from + mss, total);
    const size = headers + (to - from);
    const seg = Buffer.allocUnsafe(size);
    pkt.copy(seg, 0, 0, headers);
    pkt.copy(seg, headers, from, to);
    seg[2] = size >>> 8;
    seg[3] = size & 0xff;
    const id = (firstId + i) & 0xffff;
    seg[4] = id >>> 8;
    seg[5] = id & 0xff;
    writeHeaderChecksum(seg);
    seg.writeUInt32BE((seq + i * mss) >>> 0, hl + 4);
    let f = flags;
    if (i > 0) f &= ~TCP_CWR;
    if (i < count - 1) f &= ~(TCP_FIN | TCP_PSH);
    seg[hl + 13] = f;
    seg[hl + 16] = 0;
    seg[hl + 17] = 0;
    const csum = ~fold(pseudo + (size - hl) + onesSum(seg, hl, size)) & 0xffff;
    seg[hl + 16] = csum >>> 8;
    seg[hl + 17] = csum & 0xff;
    out.push(seg);
  }
  return count;
}

/**
 * Completes a partial checksum in place (virtio NEEDS_CSUM without GSO): the 16-bit field at
 * csumStart+csumOffset holds the pseudo-header sum; the result is the complement of the
 * ones'-complement sum over pkt[csumStart, end). For UDP (IP protocol 17) a result of 0 is
 * stored as 0xffff. Returns false (packet untouched) if the offsets do not fit the packet.
 */
export function completeChecksum(pkt: Buffer, csumStart: number, csumOffset: number): boolean {
  if (!Number.isInteger(csumStart) || !Number.isInteger(csumOffset) || csumStart < 0 || csumOffset < 0) return false;
  const field = csumStart + csumOffset;
  if (field + 2 > pkt.length) return false;
  let csum = ~onesSum(pkt, csumStart, pkt.length) & 0xffff;
  // UDP reserves 0 for "no checksum" (RFC 768); Linux's skb_checksum_help stores CSUM_MANGLED_0.
  const udp = pkt.length >= IP_MIN_HEADER && pkt[0]! >>> 4 === 4 && pkt[9] === PROTO_UDP;
  if (csum === 0 && udp) csum = 0xffff;
  pkt[field] = csum >>> 8;
  pkt[field + 1] = csum & 0xff;
  return true;
}
