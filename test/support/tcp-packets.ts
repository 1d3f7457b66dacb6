/**
 * TCP/IPv4 segments for the offload tests, built and checked the plain way (no code under
 * test): full checksums computed byte by byte.
 */

export interface SegmentSpec {
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  seq: number;
  ack?: number;
  /** TCP flag byte (default ACK). */
  flags?: number;
  window?: number;
  /** TCP options, a multiple of 4 bytes. */
  options?: Buffer;
  payload: Buffer;
  ttl?: number;
  tos?: number;
  id?: number;
  df?: boolean;
}

// TCP flag bits (byte 13 of the header)
export const CWR = 0x80;
export const ECE = 0x40;
export const URG = 0x20;
export const ACK = 0x10;
export const PSH = 0x08;
export const SYN = 0x02;
export const FIN = 0x01;

function ipBytes(ip: string): number[] {
  return ip.split('.').map(Number);
}

function sum16(buf: Buffer, start: number, end: number, init = 0): number {
  let s = init;
  for (let i = start; i < end; i += 2) s += (buf[i]! << 8) | (i + 1 < end ? buf[i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** The TCP checksum a segment should carry (pseudo-header + TCP header + payload). */
export function referenceTcpChecksum(pkt: Buffer): number {
  const ihl = (pkt[0]! & 0x0f) * 4;
  const total = pkt.readUInt16BE(2);
  const copy = Buffer.from(pkt.subarray(0, total));
  copy.writeUInt16BE(0, ihl + 16);
  const pseudo = sum16(copy, 12, 20) + 6 + (total - ihl);
  return ~sum16(copy, ihl, total, pseudo) & 0xffff;
}

export function ipChecksumValid(pkt: Buffer): boolean {
  return sum16(pkt, 0, (pkt[0]! & 0x0f) * 4) === 0xffff;
}

export function tcpSegment(s: SegmentSpec): Buffer {
  const options = s.options ?? Buffer.alloc(0);
  const thl = 20 + options.length;
  const total = 20 + thl + s.payload.length;
  const pkt = Buffer.alloc(total);
  pkt[0] = 0x45;
  pkt[1] = s.tos ?? 0;
  pkt.writeUInt16BE(total, 2);
  pkt.writeUInt16BE(s.id ?? 1, 4);
  pkt.writeUInt16BE(s.df === false ? 0 : 0x4000, 6);
  pkt[8] = s.ttl ?? 64;
  pkt[9] = 6;
  Buffer.from(ipBytes(s.src ?? '10.244.1.2')).copy(pkt, 12);
  Buffer.from(ipBytes(s.dst ?? '10.244.2.2')).copy(pkt, 16);
  pkt.writeUInt16BE(~sum16(pkt, 0, 20) & 0xffff, 10);
  pkt.writeUInt16BE(s.sport ?? 40000, 20);
  pkt.writeUInt16BE(s.dport ?? 5201, 22);
  pkt.writeUInt32BE(s.seq >>> 0, 24);
  pkt.writeUInt32BE((s.ack ?? 1) >>> 0, 28);
  pkt[32] = (thl / 4) << 4;
  pkt[33] = s.flags ?? ACK;
  pkt.writeUInt16BE(s.window ?? 502, 34);
  options.copy(pkt, 40);
  s.payload.copy(pkt, 20 + thl);
  pkt.writeUInt16BE(referenceTcpChecksum(pkt), 36);
  return pkt;
}

/** A run of full segments of one flow: `count` segments of `mss` bytes from `seq` on. */
export function tcpStream(count: number, mss: number, base: Partial<SegmentSpec> & { seq: number }): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const payload = Buffer.alloc(mss, (i * 7 + 1) & 0xff);
    out.push(tcpSegment({ ...base, seq: (base.seq + i * mss) >>> 0, payload, id: (base.id ?? 100) + i }));
  }
  return out;
}
