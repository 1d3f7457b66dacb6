import { describe, expect, it } from 'vitest';
import { COALESCE_BATCH_MAX, TcpCoalescer, type CoalescedBatch } from '../../src/backend/udp/offload/coalesce.js';
import { segmentTcp4 } from '../support/gso-segment.js';
import { rng } from '../support/rng.js';
import { ACK, FIN, PSH, SYN, ipChecksumValid, tcpSegment, tcpStream, type SegmentSpec } from '../support/tcp-packets.js';

function coalesce(packets: Buffer[]): CoalescedBatch {
  const c = new TcpCoalescer();
  for (const p of packets) c.add(p);
  return c.take();
}

/** The pseudo-header sum a checksum-partial field must hold. */
function pseudoSum(pkt: Buffer): number {
  let s = pkt.readUInt16BE(12) + pkt.readUInt16BE(14) + pkt.readUInt16BE(16) + pkt.readUInt16BE(18) + 6 + (pkt.length - 20);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** Splits every super-packet back (as the kernel would) and returns all packets in order. */
function resegment(batch: CoalescedBatch): Buffer[] {
  const out: Buffer[] = [];
  batch.packets.forEach((p, i) => {
    const mss = batch.segmentSizes[i]!;
    if (mss === 0) out.push(p);
    else expect(segmentTcp4(p, mss, out)).toBeGreaterThan(1);
  });
  return out;
}

const payloadOf = (p: Buffer) => p.subarray(20 + ((p[32]! >> 4) << 2));
const seqOf = (p: Buffer) => p.readUInt32BE(24);

describe('TcpCoalescer', () => {
  it('merges a run of full segments into one super-packet the kernel can take', () => {
    const segs = tcpStream(10, 1400, { seq: 0xfffff000 }); // the sequence number wraps inside the run
    const batch = coalesce(segs);
    expect(batch.packets).toHaveLength(1);
    expect(batch.segmentSizes[0]).toBe(1400);
    const sup = batch.packets[0]!;
    expect(sup.length).toBe(40 + 14000);
    expect(sup.readUInt16BE(2)).toBe(sup.length);
    expect(ipChecksumValid(sup)).toBe(true);
    expect(sup.readUInt16BE(36)).toBe(pseudoSum(sup)); // checksum partial
    expect(Buffer.compare(payloadOf(sup), Buffer.concat(segs.map(payloadOf)))).toBe(0);
    expect(seqOf(sup)).toBe(0xfffff000);
  });

  it('leaves a lone packet untouched, with segment size 0', () => {
    const [one] = tcpStream(1, 1400, { seq: 5 });
    const batch = coalesce([one!]);
    expect(batch.packets[0]).toBe(one);
    expect(batch.segmentSizes[0]).toBe(0);
  });

  it('keeps flows apart and in order of their first packet', () => {
    const a = tcpStream(4, 1000, { seq: 1, sport: 1000 });
    const b = tcpStream(4, 1000, { seq: 9, sport: 2000 });
    const batch = coalesce([a[0]!, b[0]!, a[1]!, b[1]!, a[2]!, b[2]!, a[3]!, b[3]!]);
    expect(batch.packets.map((p) => p.readUInt16BE(20))).toEqual([1000, 2000]);
    expect([...batch.segmentSizes]).toEqual([1000, 1000]);
  });

  it('merges only the next sequence number: a gap or a repeat starts a new run', () => {
    const s = tcpStream(5, 500, { seq: 100 });
    const batch = coalesce([s[0]!, s[1]!, s[3]!, s[4]!, s[4]!]);
    expect(batch.packets.map(seqOf)).toEqual([100, 1600, 2100]);
    expect(resegment(batch).map(seqOf)).toEqual([100, 600, 1600, 2100, 2100]);
  });

  it('ends a run after PSH and after a short segment, and sets PSH on the merged packet', () => {
    const s = tcpStream(4, 800, { seq: 0 });
    const pushed = tcpSegment({ seq: 1600, payload: Buffer.alloc(800, 3), flags: ACK | PSH });
    const short = tcpSegment({ seq: 2400, payload: Buffer.alloc(100, 4) });
    const after = tcpSegment({ seq: 2500, payload: Buffer.alloc(800, 5) });
    const batch = coalesce([s[0]!, s[1]!, pushed, short, after]);
    // the short segment cannot head a run that a longer one joins: three packets
    expect(batch.packets.map(seqOf)).toEqual([0, 2400, 2500]);
    expect(batch.packets[0]![33]! & PSH).toBe(PSH);
    expect([...batch.segmentSizes]).toEqual([800, 0, 0]);
    expect(resegment(batch).map(seqOf)).toEqual([0, 800, 1600, 2400, 2500]);
  });

  it.each<[string, Partial<SegmentSpec>]>([
    ['ACK number', { ack: 2 }],
    ['window', { window: 9 }],
    ['options', { options: Buffer.from([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]) }],
    ['TTL', { ttl: 63 }],
    ['TOS', { tos: 4 }],
    ['DF', { df: false }],
  ])('does not merge segments that differ in %s', (_what, change) => {
    const first = tcpSegment({ seq: 0, payload: Buffer.alloc(600) });
    const second = tcpSegment({ seq: 600, payload: Buffer.alloc(600), ...change });
    expect(coalesce([first, second]).packets).toHaveLength(2);
  });

  it('never merges SYN, FIN or data-less segments, and lets nothing overtake them', () => {
    const s = tcpStream(4, 700, { seq: 0 });
    const fin = tcpSegment({ seq: 1400, payload: Buffer.alloc(0), flags: ACK | FIN });
    const ackOnly = tcpSegment({ seq: 0, payload: Buffer.alloc(0), sport: 5201, dport: 40000, src: '10.244.2.2', dst: '10.244.1.2' });
    const syn = tcpSegment({ seq: 7, payload: Buffer.alloc(0), flags: SYN, sport: 3000 });
    const batch = coalesce([s[0]!, s[1]!, fin, s[2]!, s[3]!, ackOnly, syn]);
    expect(batch.packets.map(seqOf)).toEqual([0, 1400, 1400, 0, 7]);
    expect([...batch.segmentSizes]).toEqual([700, 0, 700, 0, 0]);
  });

  it('stops below the 64 KiB IPv4 limit', () => {
    const batch = coalesce(tcpStream(50, 1460, { seq: 0 }));
    expect(batch.packets.length).toBe(2);
    expect(batch.packets.every((p) => p.length <= 65535)).toBe(true);
    expect(resegment(batch)).toHaveLength(50);
  });

  it('passes other protocols through untouched', () => {
    const icmp = Buffer.from('4500001c000100004001000a0af40102 0af40202 0800f7ff00000000'.replace(/ /g, ''), 'hex');
    const batch = coalesce([icmp]);
    expect(batch.packets[0]).toBe(icmp);
    expect(batch.segmentSizes[0]).toBe(0);
  });

  it('reports when a batch is full, and starts empty after take()', () => {
    const c = new TcpCoalescer();
    for (const p of tcpStream(COALESCE_BATCH_MAX, 100, { seq: 0 })) c.add(p);
    expect(c.full).toBe(true);
    expect(c.take().packets.length).toBeGreaterThan(0);
    expect(c.size).toBe(0);
    expect(c.take().packets).toHaveLength(0);
  });

  it('random traffic: splitting the merged batch gives back every flow, in order, byte for byte', () => {
    const random = rng(3);
    for (let round = 0; round < 300; round++) {
      const flows = 1 + Math.floor(random() * 3);
      const next = Array.from({ length: flows }, () => Math.floor(random() * 2 ** 32));
      const input: Buffer[] = [];
      for (let i = 0; i < 1 + Math.floor(random() * COALESCE_BATCH_MAX); i++) {
        const f = Math.floor(random() * flows);
        const r = random();
        const size = r < 0.7 ? 1200 : r < 0.8 ? Math.floor(random() * 1200) : 0;
        const flags = random() < 0.05 ? ACK | PSH : random() < 0.02 ? ACK | FIN : ACK;
        const seq = random() < 0.05 ? next[f]! + 1200 : next[f]!; // sometimes a gap
        input.push(tcpSegment({ seq, sport: 1000 + f, payload: Buffer.alloc(size, i), flags, ack: random() < 0.05 ? 2 : 1 }));
        next[f] = (seq + size) >>> 0;
      }
      const out = resegment(coalesce(input));
      for (let f = 0; f < flows; f++) {
        const of = (ps: Buffer[]) => ps.filter((p) => p.readUInt16BE(20) === 1000 + f).map((p) => [seqOf(p), payloadOf(p).toString('hex'), p[33]]);
        expect(of(out)).toEqual(of(input));
      }
      expect(out).toHaveLength(input.length);
    }
  });
});
