/**
 * IPv4 header reading for the udp data path. Pure: no I/O, never throws on any input.
 * `checkHeader` is the allocation-free hot-path check; `parseIpv4Header` builds the full
 * discriminated result for tests, diagnostics and ICMP generation.
 */

export const IPV4_MIN_HEADER = 20;
export const IPV4_MAX_PACKET = 65_535;
export const PROTO_ICMP = 1;

/** Why a buffer is not a usable IPv4 packet. */
export type HeaderProblem = 'truncated' | 'not-ipv4' | 'bad-header' | 'length-mismatch';

export interface Ipv4Header {
  readonly version: 4;
  /** Header length in bytes (IHL × 4). */
  readonly headerLength: number;
  readonly totalLength: number;
  readonly ttl: number;
  readonly protocol: number;
  /** Fragment offset in 8-byte units; non-zero means "not the first fragment". */
  readonly fragmentOffset: number;
  readonly checksum: number;
  /** Addresses as unsigned 32-bit integers. */
  readonly src: number;
  readonly dst: number;
}

export type HeaderResult = { readonly ok: true; readonly header: Ipv4Header } | { readonly ok: false; readonly reason: HeaderProblem };

/**
 * Null when `pkt` holds exactly one well-formed IPv4 packet: at least 20 bytes, version 4,
 * IHL ≥ 5 and within the buffer, total length ≥ the header and equal to the buffer length.
 */
export function checkHeader(pkt: Buffer): HeaderProblem | null {
  const len = pkt.length;
  if (len < IPV4_MIN_HEADER) return 'truncated';
  const b0 = pkt[0]!;
  if (b0 >>> 4 !== 4) return 'not-ipv4';
  const hl = (b0 & 0x0f) << 2;
  if (hl < IPV4_MIN_HEADER) return 'bad-header';
  if (hl > len) return 'truncated';
  const total = (pkt[2]! << 8) | pkt[3]!;
  if (total < hl) return 'bad-header';
  // A datagram carries exactly one packet: shorter is truncated, longer has trailing junk.
  if (total !== len) return 'length-mismatch';
  return null;
}

/** Header length in bytes; only meaningful after checkHeader() passed. */
export function headerLength(pkt: Buffer): number {
  return (pkt[0]! & 0x0f) << 2;
}

// Addresses are read as signed int32 on the hot path: always a Smi, so never a heap number.
/** The source address as a signed int32 (`>>> 0` gives the uint32). */
export function srcI32(pkt: Buffer): number {
  return pkt.readInt32BE(12);
}

/** The destination address as a signed int32 (`>>> 0` gives the uint32). */
export function dstI32(pkt: Buffer): number {
  return pkt.readInt32BE(16);
}

export function readTtl(pkt: Buffer): number {
  return pkt[8]!;
}

export function fragmentOffset(pkt: Buffer): number {
  return ((pkt[6]! & 0x1f) << 8) | pkt[7]!;
}

export function parseIpv4Header(pkt: Buffer): HeaderResult {
  const problem = checkHeader(pkt);
  if (problem !== null) return { ok: false, reason: problem };
  return {
    ok: true,
    header: {
      version: 4,
      headerLength: headerLength(pkt),
      totalLength: pkt.readUInt16BE(2),
      ttl: readTtl(pkt),
      protocol: pkt[9]!,
      fragmentOffset: fragmentOffset(pkt),
      checksum: pkt.readUInt16BE(10),
      src: srcI32(pkt) >>> 0,
      dst: dstI32(pkt) >>> 0,
    },
  };
}
