// Issue 15, sections 1 and 3: TSO and USO segmentation. The C cutter (native/packet/segment.c) against
// the TypeScript reference (src/backend/udp/offload/segment.ts) on seeded random super-packets
// and broken ones; every segment's IP and TCP checksums verify; and a super-packet cut and
// merged again by GRO (TS and C) is byte-identical to the original.
import { describe, expect, it } from 'vitest';
import { onesSum } from '../../src/backend/udp/checksum.js';
import { TcpCoalescer } from '../../src/backend/udp/offload/coalesce.js';
import { segmentTcp, segmentUdp } from '../../src/backend/udp/offload/segment.js';
import { writeHeaderChecksum } from '../../src/backend/udp/checksum.js';
import { loadNativePacket } from '../support/native-packet.js';
import { rng } from '../support/rng.js';
import { int, mutate, type Rand } from '../support/udp-packet-gen.js';

const native = loadNativePacket();
const ACK = 0x10;
const PSH = 0x08;

/** A TCP/IPv4 super-packet as a TUN with TSO hands it over: checksum field holding the pseudo-header sum. */
function superPacket(rand: Rand, opts: { payload: number; flags: number; ihl?: number; options?: number }): Buffer {
  const ihl = opts.ihl ?? 20;
  const thl = 20 + (opts.options ?? 0);
  const pkt = Buffer.alloc(ihl + thl + opts.payload);
  pkt[0] = 0x40 | (ihl / 4);
  pkt.writeUInt16BE(pkt.length, 2);
  pkt.writeUInt16BE(int(rand, 0x10000), 4);
  pkt[6] = 0x40;
  pkt[8] = 64;
  pkt[9] = 6;
  pkt.writeUInt32BE((0x0af40000 | int(rand, 0x10000)) >>> 0, 12);
  pkt.writeUInt32BE((0x0af40000 | int(rand, 0x10000)) >>> 0, 16);
  pkt.writeUInt32BE((int(rand, 0x10000) * 0x10000 + int(rand, 0x10000)) >>> 0, ihl);
  pkt.writeUInt32BE((int(rand, 0x10000) * 0x10000 + int(rand, 0x10000)) >>> 0, ihl + 4);
  pkt.writeUInt32BE(7, ihl + 8);
  pkt[ihl + 12] = (thl / 4) << 4;
  pkt[ihl + 13] = opts.flags;
  pkt.writeUInt16BE(502, ihl + 14);
  for (let i = ihl + 20; i < ihl + thl; i++) pkt[i] = 1;
  for (let i = ihl + thl; i < pkt.length; i += 61) pkt[i] = int(rand, 256); // sparse: 64 KiB each, tens of thousands of them
  writeHeaderChecksum(pkt);
  pkt.writeUInt16BE(pseudoSum(pkt, ihl), ihl + 16);
  return pkt;
}

function pseudoSum(pkt: Buffer, ihl: number): number {
  let sum = pkt.readUInt16BE(12) + pkt.readUInt16BE(14) + pkt.readUInt16BE(16) + pkt.readUInt16BE(18) + 6 + (pkt.length - ihl);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** A UDP/IPv4 datagram of `payload` bytes, as a pod's UDP_SEGMENT send reaches the TUN. */
function udpSuperPacket(rand: Rand, payload: number, ihl: number): Buffer {
  const pkt = Buffer.alloc(ihl + 8 + payload);
  pkt[0] = 0x40 | (ihl / 4);
  pkt.writeUInt16BE(pkt.length, 2);
  pkt.writeUInt16BE(int(rand, 0x10000), 4);
  pkt[8] = 64;
  pkt[9] = 17;
  pkt.writeUInt32BE((0x0af40000 | int(rand, 0x10000)) >>> 0, 12);
  pkt.writeUInt32BE((0x0af40000 | int(rand, 0x10000)) >>> 0, 16);
  pkt.writeUInt32BE((int(rand, 0x10000) * 0x10000 + int(rand, 0x10000)) >>> 0, ihl);
  pkt.writeUInt16BE(pkt.length - ihl, ihl + 4);
  for (let i = ihl + 8; i < pkt.length; i += 61) pkt[i] = int(rand, 256);
  writeHeaderChecksum(pkt);
  return pkt;
}

/** The TCP checksum verifies when pseudo-header + segment sum to all ones. */
function tcpChecksumValid(seg: Buffer): boolean {
  return transportChecksumValid(seg, 6);
}

function transportChecksumValid(seg: Buffer, proto: number): boolean {
  const ihl = (seg[0]! & 0x0f) * 4;
  const pseudo = seg.readUInt16BE(12) + seg.readUInt16BE(14) + seg.readUInt16BE(16) + seg.readUInt16BE(18) + proto + (seg.length - ihl);
  let sum = pseudo + onesSum(seg, ihl, seg.length);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum === 0xffff;
}

const hex = (list: Buffer[] | null): string[] | null => list?.map((b) => b.toString('hex')) ?? null;

describe('TSO segmentation in C against the TypeScript reference', () => {
  it('10,000 random super-packets and 10,000 broken ones: the same segments, byte for byte', () => {
    const rand = rng(15_020);
    const mismatches: unknown[] = [];
    let segments = 0;
    let refused = 0;
    for (let i = 0; i < 20_000; i++) {
      const flags = [ACK, ACK | PSH, ACK | 0x01, ACK | 0x80 | PSH, 0x02, ACK | PSH | 0x01 | 0x80][int(rand, 6)]!;
      const good = superPacket(rand, { payload: int(rand, 64_000), flags, ihl: rand() < 0.1 ? 24 + 4 * int(rand, 10) : 20, options: rand() < 0.3 ? 4 * int(rand, 11) : 0 });
      const pkt = i % 2 === 0 ? good : mutate(rand, good);
      const mss = rand() < 0.05 ? int(rand, 600) : 536 + int(rand, 1000);
      const ts = segmentTcp(pkt, mss);
      const c = native.tsoSegment(pkt, mss);
      if (JSON.stringify(hex(ts)) !== JSON.stringify(hex(c)) && mismatches.length < 3) mismatches.push({ i, mss, pkt: pkt.toString('hex').slice(0, 120), ts: ts?.length, c: c?.length });
      if (ts === null) refused++;
      else segments += ts.length;
    }
    expect(mismatches).toEqual([]);
    expect(segments).toBeGreaterThan(250_000);
    expect(refused).toBeGreaterThan(3_000);
  }, 60_000);

  it('cuts like tcp_gso_segment: lengths, ids, sequence numbers, FIN/PSH on the last only, CWR on the first only, checksums that verify', () => {
    const rand = rng(15_021);
    const pkt = superPacket(rand, { payload: 10_000, flags: ACK | PSH | 0x01 | 0x80 });
    const segs = native.tsoSegment(pkt, 1448)!;
    expect(segs.map((s) => s.length)).toEqual([...Array(6).fill(40 + 1448), 40 + 10_000 - 6 * 1448]);
    const id = pkt.readUInt16BE(4);
    const seq = pkt.readUInt32BE(24);
    segs.forEach((s, k) => {
      expect(s.readUInt16BE(2)).toBe(s.length);
      expect(s.readUInt16BE(4)).toBe((id + k) & 0xffff);
      expect(s.readUInt32BE(24)).toBe((seq + k * 1448) >>> 0);
      expect(onesSum(s, 0, 20)).toBe(0xffff);
      expect(tcpChecksumValid(s)).toBe(true);
      expect(s.subarray(40).equals(pkt.subarray(40 + k * 1448, 40 + (k + 1) * 1448))).toBe(true);
    });
    expect(segs.map((s) => s[33]! & 0x89)).toEqual([0x80, 0, 0, 0, 0, 0, 0x09]);
  });

  it('USO: 5,000 random UDP super-packets and 5,000 broken ones: the same datagrams in C, each with its length, id and a UDP checksum that verifies', () => {
    const rand = rng(15_023);
    const mismatches: unknown[] = [];
    let datagrams = 0;
    for (let i = 0; i < 10_000; i++) {
      const good = udpSuperPacket(rand, int(rand, 30_000), rand() < 0.1 ? 24 + 4 * int(rand, 10) : 20);
      const pkt = i % 2 === 0 ? good : mutate(rand, good);
      const size = rand() < 0.05 ? int(rand, 300) : 200 + int(rand, 1300);
      const ts = segmentUdp(pkt, size);
      const c = native.usoSegment(pkt, size);
      if (JSON.stringify(hex(ts)) !== JSON.stringify(hex(c)) && mismatches.length < 3) mismatches.push({ i, size, ts: ts?.length, c: c?.length });
      if (ts === null || i % 2 !== 0) continue;
      const ihl = (pkt[0]! & 0x0f) * 4;
      ts.forEach((d, k) => {
        expect(d.readUInt16BE(ihl + 4)).toBe(d.length - ihl);
        expect(d.readUInt16BE(4)).toBe((pkt.readUInt16BE(4) + k) & 0xffff);
        expect(onesSum(d, 0, ihl)).toBe(0xffff);
        expect(transportChecksumValid(d, 17)).toBe(true);
      });
      datagrams += ts.length;
    }
    expect(mismatches).toEqual([]);
    expect(datagrams).toBeGreaterThan(50_000);
  }, 60_000);

  it('a super-packet cut and merged again by GRO (TypeScript and C) is byte-identical to the original', () => {
    const rand = rng(15_022);
    const ts = new TcpCoalescer();
    let compared = 0;
    for (let i = 0; i < 2_000; i++) {
      const mss = 536 + int(rand, 1000);
      const original = superPacket(rand, { payload: mss + 1 + int(rand, 60_000), flags: rand() < 0.5 ? ACK : ACK | PSH, options: rand() < 0.5 ? 12 : 0 });
      const segs = segmentTcp(original, mss)!;
      if (segs.length > 64) continue;
      for (const s of segs) ts.add(s);
      const t = ts.take();
      const [cPackets, cSizes] = native.coalesce(segs);
      expect(t.packets.map((p) => p.toString('hex'))).toEqual([original.toString('hex')]);
      expect([...t.segmentSizes]).toEqual([mss]);
      expect(cPackets.map((p) => p.toString('hex'))).toEqual([original.toString('hex')]);
      expect(cSizes).toEqual([mss]);
      compared++;
    }
    expect(compared).toBeGreaterThan(1_700);
  }, 30_000);
});
