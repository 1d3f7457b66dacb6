// Issue 15, section 3: GRO coalescing in C (native/packet/coalesce.c) against TcpCoalescer
// (src/backend/udp/offload/coalesce.ts) on seeded random batches: the same packets out, byte
// for byte, with the same segment sizes and counts.
import { describe, expect, it } from 'vitest';
import { TcpCoalescer } from '../../src/backend/udp/offload/coalesce.js';
import { loadNativePacket } from '../support/native-packet.js';
import { rng } from '../support/rng.js';
import { tcpBatch } from '../support/tcp-batch-gen.js';

const native = loadNativePacket();

describe('GRO coalescing in C against the TypeScript reference', () => {
  it('3,000 random batches of up to 64 segments: same super-packets, segment sizes and counts', () => {
    const rand = rng(15_004);
    const ts = new TcpCoalescer();
    const mismatches: { batch: number; ts: unknown; c: unknown }[] = [];
    let packets = 0;
    let superPackets = 0;
    let runEnds = 0;
    for (let b = 0; b < 3_000; b++) {
      const batch = tcpBatch(rand);
      packets += batch.length;
      for (const pkt of batch) ts.add(pkt);
      const t = ts.take();
      const [cPackets, cSizes, cSuper, cMerged] = native.coalesce(batch);
      const tsView = [t.packets.map((p) => p.toString('hex')), [...t.segmentSizes], t.superPackets, t.mergedSegments];
      const cView = [cPackets.map((p) => p.toString('hex')), cSizes, cSuper, cMerged];
      if (JSON.stringify(tsView) !== JSON.stringify(cView) && mismatches.length < 5) mismatches.push({ batch: b, ts: tsView, c: cView });
      superPackets += t.superPackets;
      runEnds += t.packets.length;
    }
    expect(mismatches).toEqual([]);
    expect(packets).toBeGreaterThan(90_000);
    // Both kinds of outcome come up often: merged runs, and packets left alone or runs broken.
    expect(superPackets).toBeGreaterThan(5_000);
    expect(runEnds - superPackets).toBeGreaterThan(20_000);
  }, 30_000); // seconds alone; far more on a busy machine

  it('refuses a batch over 64 packets rather than dropping some', () => {
    expect(() => native.coalesce(Array.from({ length: 65 }, () => Buffer.alloc(0)))).toThrow(/at most 64/);
  });
});
