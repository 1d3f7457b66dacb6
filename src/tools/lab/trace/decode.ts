/**
 * Pure: a one-packet pcap file (what `tcpdump -c 1 -w -` writes) → the packet's layers, outermost
 * first. Encapsulation is followed: UDP carrying an IPv4 packet (flannel's udp backend) or a
 * VXLAN header and an Ethernet frame. Captures are snapped short, so lengths come from headers.
 */
import { formatIp } from '../../../lib/ipv4.js';
import type { CapturedPacket, Layer } from './types.js';

const LINK_ETHERNET = 1;
/** Raw IP: TUN devices. tcpdump writes LINKTYPE_RAW (101); DLT_RAW (12, 14) and LINKTYPE_IPV4 (228) mean the same here. */
const LINK_RAW = new Set([12, 14, 101, 228]);
const PCAP_MAGIC_LE = 0xa1b2c3d4;
const PCAP_MAGIC_NS_LE = 0xa1b23c4d;
const ETHERTYPE_IPV4 = 0x0800;
const PROTO = { icmp: 1, tcp: 6, udp: 17 } as const;
const VXLAN_FLAG_VNI = 0x08;
const ETHER_HEADER = 14;
const UDP_HEADER = 8;
const VXLAN_HEADER = 8;

export interface PcapRecord {
  readonly linkType: number;
  /** The packet's length on the wire (the record's orig_len). */
  readonly bytes: number;
  readonly data: Buffer;
}

/** The first record of a little-endian pcap file; null when there is none or the file is not pcap. */
export function firstRecord(file: Buffer): PcapRecord | null {
  if (file.length < 24 + 16) return null;
  const magic = file.readUInt32LE(0);
  if (magic !== PCAP_MAGIC_LE && magic !== PCAP_MAGIC_NS_LE) return null;
  const linkType = file.readUInt32LE(20);
  const caplen = file.readUInt32LE(24 + 8);
  const bytes = file.readUInt32LE(24 + 12);
  const data = file.subarray(40, 40 + caplen);
  return data.length === caplen ? { linkType, bytes, data } : null;
}

/** The layers of one captured frame, and how far in the innermost IPv4 packet starts beyond the first. */
export function decodeRecord(rec: PcapRecord): CapturedPacket | null {
  const layers: Layer[] = [];
  let ipStarts: number[] = [];
  if (rec.linkType === LINK_ETHERNET) ipStarts = ether(rec.data, 0, layers);
  else if (LINK_RAW.has(rec.linkType)) ipStarts = ipv4(rec.data, 0, layers);
  else return null;
  if (layers.length === 0) return null;
  const [outer, inner] = [ipStarts[0], ipStarts.at(-1)];
  const overheadBytes = outer === undefined || inner === undefined ? 0 : inner - outer;
  return { bytes: rec.bytes, layers, overheadBytes, summary: summarize(layers) };
}

export function decodePcap(file: Buffer): CapturedPacket | null {
  const rec = firstRecord(file);
  return rec ? decodeRecord(rec) : null;
}

const mac = (b: Buffer, at: number): string => [...b.subarray(at, at + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');

/** Returns the offsets where IPv4 headers start, outermost first. */
function ether(b: Buffer, at: number, layers: Layer[]): number[] {
  if (b.length < at + ETHER_HEADER) return [];
  layers.push({ proto: 'ether', dst: mac(b, at), src: mac(b, at + 6) });
  return b.readUInt16BE(at + 12) === ETHERTYPE_IPV4 ? ipv4(b, at + ETHER_HEADER, layers) : [];
}

function ipv4(b: Buffer, at: number, layers: Layer[]): number[] {
  if (b.length < at + 20 || b[at]! >> 4 !== 4) return [];
  const ihl = (b[at]! & 0x0f) * 4;
  const src = formatIp(b.readUInt32BE(at + 12));
  const dst = formatIp(b.readUInt32BE(at + 16));
  layers.push({ proto: 'ipv4', src, dst, ttl: b[at + 8]!, length: b.readUInt16BE(at + 2) });
  const l4 = at + ihl;
  const proto = b[at + 9];
  if (proto === PROTO.udp) return [at, ...udp(b, l4, layers)];
  if (proto === PROTO.icmp && b.length >= l4 + 8) layers.push({ proto: 'icmp', type: b[l4]!, code: b[l4 + 1]!, id: b.readUInt16BE(l4 + 4), seq: b.readUInt16BE(l4 + 6) });
  if (proto === PROTO.tcp && b.length >= l4 + 14) layers.push({ proto: 'tcp', srcPort: b.readUInt16BE(l4), dstPort: b.readUInt16BE(l4 + 2), flags: tcpFlags(b[l4 + 13]!) });
  return [at];
}

/** UDP, and what it carries when that is a tunnel: an IPv4 packet whole, or VXLAN. */
function udp(b: Buffer, at: number, layers: Layer[]): number[] {
  if (b.length < at + UDP_HEADER) return [];
  layers.push({ proto: 'udp', srcPort: b.readUInt16BE(at), dstPort: b.readUInt16BE(at + 2), length: b.readUInt16BE(at + 4) });
  const body = at + UDP_HEADER;
  if (b.length < body + 1) return [];
  // A whole IPv4 packet fills the datagram exactly (flannel's udp backend).
  if (b[body]! >> 4 === 4 && b.length >= body + 4 && b.readUInt16BE(body + 2) === b.readUInt16BE(at + 4) - UDP_HEADER) return ipv4(b, body, layers);
  if (b[body] === VXLAN_FLAG_VNI && b.length >= body + VXLAN_HEADER) {
    layers.push({ proto: 'vxlan', vni: b.readUIntBE(body + 4, 3) });
    return ether(b, body + VXLAN_HEADER, layers);
  }
  return [];
}

function tcpFlags(f: number): string {
  const names = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG'];
  return names.filter((_, i) => (f & (1 << i)) !== 0).join(',');
}

const ICMP_NAMES: Record<number, string> = { 0: 'echo reply', 3: 'unreachable', 8: 'echo request', 11: 'time exceeded' };

/** "198.18.0.11:8285 > 198.18.0.12:8285 UDP | 10.244.1.2 > 10.244.2.2 ICMP echo request": one part per IP packet. */
export function summarize(layers: readonly Layer[]): string {
  const parts: string[] = [];
  let ip: { src: string; dst: string } | null = null;
  for (const l of layers) {
    if (l.proto === 'ipv4') ip = l;
    else if (l.proto === 'udp' && ip) parts.push(`${ip.src}:${l.srcPort} > ${ip.dst}:${l.dstPort} UDP`);
    else if (l.proto === 'vxlan') parts[parts.length - 1] += ` VXLAN vni ${l.vni}`;
    else if (l.proto === 'icmp' && ip) parts.push(`${ip.src} > ${ip.dst} ICMP ${ICMP_NAMES[l.type] ?? `type ${l.type}`}`);
    else if (l.proto === 'tcp' && ip) parts.push(`${ip.src}:${l.srcPort} > ${ip.dst}:${l.dstPort} TCP [${l.flags}]`);
  }
  return parts.join(' | ');
}
