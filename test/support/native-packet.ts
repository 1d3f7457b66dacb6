/**
 * The `twill_packet` addon (native/packet_napi.c over native/packet/): the C data-path
 * functions, built by `npm ci` beside the TUN addon and loaded only by tests. The agent never
 * loads it; this is how the differential test reaches the C code.
 */
import { createRequire } from 'node:module';

declare const brand: unique symbol;
export type NativeTable = { readonly [brand]: 'table' };
export type NativeForwarder = { readonly [brand]: 'forwarder' };

/** What native/packet_napi.c exports. Codes index reasonNames(): 0 is 'pass'. */
export interface NativePacket {
  reasonNames(): string[];
  checkHeader(pkt: Buffer): number;
  /** A code, or [headerLength, totalLength, ttl, protocol, fragmentOffset, checksum, src, dst]. */
  parse(pkt: Buffer): number | number[];
  onesSum(buf: Buffer, start: number, end: number): number;
  headerChecksumValid(pkt: Buffer, headerLength: number): boolean;
  writeHeaderChecksum(pkt: Buffer): boolean;
  decrementTtl(pkt: Buffer): boolean;
  /** Triples [addr, len, publicIP]; null for a prefix length over 32. */
  tableBuild(peers: Uint32Array): NativeTable | null;
  tableLookup(table: NativeTable, ip: number): number;
  tableLookupMany(table: NativeTable, ips: Uint32Array, out: Int32Array): void;
  tableSize(table: NativeTable): number;
  forwarder(ownAddr: number, ownLen: number, mtu: number): NativeForwarder;
  drops(fwd: NativeForwarder): number[];
  /** [code, index of the peer in the build list (or -1)]. */
  outbound(fwd: NativeForwarder, table: NativeTable, pkt: Buffer): [number, number];
  inbound(fwd: NativeForwarder, table: NativeTable, pkt: Buffer, from: number): number;
  icmpAllowed(pkt: Buffer): boolean;
  icmpError(pkt: Buffer, type: number, code: number, source: number): Buffer | null;
  icmpFor(reason: number, pkt: Buffer, source: number): Buffer | null;
  /** TcpCoalescer's add() of each packet, then take(): [packets, segmentSizes, superPackets, mergedSegments]. */
  coalesce(packets: readonly Buffer[]): [Buffer[], number[], number, number];
  /** segmentTcp(pkt, mss) of src/backend/udp/offload/segment.ts. */
  tsoSegment(pkt: Buffer, mss: number): Buffer[] | null;
  /** segmentUdp(pkt, size) of the same file. */
  usoSegment(pkt: Buffer, size: number): Buffer[] | null;
}

export function loadNativePacket(): NativePacket {
  return createRequire(import.meta.url)('../../build/Release/twill_packet.node') as NativePacket;
}
