/**
 * Software TSO for the TUN read path, pure (style rule 7): the TCP/IPv4 super-packet the kernel
 * hands over from a device with TUNSETOFFLOAD (virtio gso_type TCPV4, up to 64 KiB) is cut into
 * packets of `mss` payload bytes each, as Linux's tcp_gso_segment cuts them: every segment gets
 * the headers, its IP total length, IP id + k and header checksum, sequence number + k × mss and
 * a full TCP checksum; FIN and PSH stay on the last segment only, CWR on the first only.
 * A UDP/IPv4 super-packet (USO: a pod's UDP_SEGMENT send) is cut the same way into datagrams
 * (segmentUdp), as __udp_gso_segment does.
 * The C twin is native/packet/segment.c; test/unit/udp-native-segment.test.ts compares them.
 */
import { onesSum, writeHeaderChecksum } from '../checksum.js';

const TCP = 6;
const UDP = 17;
const FIN = 0x01;
const PSH = 0x08;
const CWR = 0x80;
/** More segments than this means a nonsense gso_size: 64 KiB at the smallest IPv4 MSS (536) is 123. */
export const TSO_SEGMENTS_MAX = 128;

/** The segments, or null when pkt is not a whole, unfragmented TCP/IPv4 packet or mss is out of range. */
export function segmentTcp(pkt: Buffer, mss: number): Buffer[] | null {
  const ihl = (pkt[0]! & 0x0f) << 2;
  const seq = pkt.length >= ihl + 8 ? pkt.readUInt32BE(ihl + 4) : 0;
  return cut(pkt, tcpHeadersLength(pkt), mss, (seg, k, count) => {
    seg.writeUInt32BE((seq + k * mss) >>> 0, ihl + 4);
    if (k < count - 1) seg[ihl + 13] = seg[ihl + 13]! & ~(FIN | PSH);
    if (k > 0) seg[ihl + 13] = seg[ihl + 13]! & ~CWR;
    seg.writeUInt16BE(0, ihl + 16);
    seg.writeUInt16BE(~transportSum(seg, ihl, TCP) & 0xffff, ihl + 16);
  });
}

/** The datagrams of `size` payload bytes, or null when pkt is not a whole, unfragmented UDP/IPv4 packet or size is 0. */
export function segmentUdp(pkt: Buffer, size: number): Buffer[] | null {
  const ihl = (pkt[0]! & 0x0f) << 2;
  return cut(pkt, udpHeadersLength(pkt), size, (seg) => {
    seg.writeUInt16BE(seg.length - ihl, ihl + 4);
    seg.writeUInt16BE(0, ihl + 6);
    const check = ~transportSum(seg, ihl, UDP) & 0xffff;
    seg.writeUInt16BE(check === 0 ? 0xffff : check, ihl + 6); // 0 would mean "no checksum"
  });
}

/**
 * What both cuts share: `hl` header bytes (0: not a packet to cut) copied in front of every
 * `size` bytes of payload, each packet with its IP total length, IP id + k and header
 * checksum; `finish` then fixes the transport header of packet k of count.
 */
function cut(pkt: Buffer, hl: number, size: number, finish: (seg: Buffer, k: number, count: number) => void): Buffer[] | null {
  if (hl === 0 || size < 1) return null;
  const count = Math.max(1, Math.ceil((pkt.length - hl) / size));
  if (count > TSO_SEGMENTS_MAX) return null;
  const id = pkt.readUInt16BE(4);
  const out: Buffer[] = [];
  for (let k = 0; k < count; k++) {
    const start = hl + k * size;
    const end = Math.min(pkt.length, start + size);
    const seg = Buffer.alloc(hl + end - start);
    pkt.copy(seg, 0, 0, hl);
    pkt.copy(seg, hl, start, end);
    seg.writeUInt16BE(seg.length, 2);
    seg.writeUInt16BE((id + k) & 0xffff, 4);
    writeHeaderChecksum(seg);
    finish(seg, k, count);
    out.push(seg);
  }
  return out;
}

/** IP + TCP header bytes of a packet segmentTcp may cut, else 0. */
function tcpHeadersLength(pkt: Buffer): number {
  if (pkt.length < 40 || pkt[0]! >> 4 !== 4 || pkt[9] !== TCP) return 0;
  const ihl = (pkt[0]! & 0x0f) << 2;
  if (ihl < 20 || pkt.readUInt16BE(2) !== pkt.length || (pkt.readUInt16BE(6) & 0x3fff) !== 0) return 0;
  if (pkt.length < ihl + 20) return 0;
  const thl = (pkt[ihl + 12]! >> 4) << 2;
  return thl >= 20 && ihl + thl <= pkt.length ? ihl + thl : 0;
}

function udpHeadersLength(pkt: Buffer): number {
  if (pkt.length < 28 || pkt[0]! >> 4 !== 4 || pkt[9] !== UDP) return 0;
  const ihl = (pkt[0]! & 0x0f) << 2;
  if (ihl < 20 || pkt.readUInt16BE(2) !== pkt.length || (pkt.readUInt16BE(6) & 0x3fff) !== 0) return 0;
  return ihl + 8 <= pkt.length ? ihl + 8 : 0;
}

/** The folded ones' complement sum of the pseudo-header and the transport header and payload (checksum field as it is). */
function transportSum(seg: Buffer, ihl: number, proto: number): number {
  let sum = seg.readUInt16BE(12) + seg.readUInt16BE(14) + seg.readUInt16BE(16) + seg.readUInt16BE(18) + proto + (seg.length - ihl) + onesSum(seg, ihl, seg.length);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}
