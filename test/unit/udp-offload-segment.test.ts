import { describe, expect, it } from 'vitest';
import { completeChecksum, segmentTcp4 } from '../support/gso-segment.js';
import { rng } from '../support/rng.js';
import { ACK, CWR, ECE, FIN, PSH, URG } from '../support/tcp-packets.js';

type Rand = () => number;
const int = (rand: Rand, lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const bytes = (rand: Rand, n: number) => Buffer.from(Array.from({ length: n }, () => int(rand, 0, 255)));

// The reference checksum, written the obvious way and sharing nothing with the code under test:
// pad to an even length, add up the big-endian 16-bit words, fold the carries back in.
function refSum(data: Buffer): number {
  const even = data.length % 2 === 0 ? data : Buffer.concat([data, Buffer.alloc(1)]);
  let sum = 0;
  for (let i = 0; i < even.length; i += 2) sum += even.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The RFC 793/768 pseudo-header: source, destination, zero, protocol, L4 length. */
function pseudoHeader(pkt: Buffer, protocol: number, l4Length: number): Buffer {
  const p = Buffer.alloc(12);
  pkt.copy(p, 0, 12, 20);
  p[9] = protocol;
  p.writeUInt16BE(l4Length, 10);
  return p;
}

/** The checksum an L4 header at `l4` with its checksum at `l4 + field` should hold, from scratch. */
function refL4Checksum(pkt: Buffer, l4: number, field: number): number {
  const seg = Buffer.from(pkt.subarray(l4));
  seg.writeUInt16BE(0, field);
  return ~refSum(Buffer.concat([pseudoHeader(pkt, pkt[9]!, seg.length), seg])) & 0xffff;
}

interface Flow {
  readonly pkt: Buffer;
  readonly ipHeader: number;
  readonly tcpHeader: number;
  readonly payload: Buffer;
}

/** A TCP/IPv4 super-packet as the kernel hands it over: IP and TCP checksums hold garbage. */
function superPacket(rand: Rand, payloadLength: number, flagBits = ACK): Flow {
  const ipHeader = 20 + 4 * int(rand, 0, 10);
  const tcpHeader = 20 + 4 * int(rand, 0, 10);
  const payload = bytes(rand, Math.min(payloadLength, 65_535 - ipHeader - tcpHeader));
  const ip = bytes(rand, ipHeader);
  ip[0] = 0x40 | (ipHeader >>> 2);
  ip.writeUInt16BE(ipHeader + tcpHeader + payload.length, 2);
  ip[6] = rand() < 0.5 ? 0x40 : 0; // DF or nothing; fragment offset 0
  ip[7] = 0;
  ip[9] = 6;
  const tcp = bytes(rand, tcpHeader);
  tcp[12] = ((tcpHeader >>> 2) << 4) | (tcp[12]! & 0x0f);
  tcp[13] = flagBits;
  return { pkt: Buffer.concat([ip, tcp, payload]), ipHeader, tcpHeader, payload };
}

function randomFlags(rand: Rand): number {
  let f = ACK;
  for (const bit of [PSH, FIN, CWR, ECE, URG]) if (rand() < 0.5) f |= bit;
  return f;
}

/** `buf` as hex with the bytes at `skip` blanked, to compare "everything else was copied". */
function masked(buf: Buffer, skip: readonly number[]): string {
  const copy = Buffer.from(buf);
  for (const i of skip) copy[i] = 0;
  return copy.toString('hex');
}

/**
 * What a segment should be, next to what it is, as one comparable record per segment: IP total
 * length and ID, IP checksum verifying, seq, flags, the TCP checksum from scratch, and every other
 * header byte identical to the super-packet's.
 */
function describeSegments(flow: Flow, mss: number, segs: readonly Buffer[]) {
  const { pkt, ipHeader: hl, tcpHeader: thl } = flow;
  const count = segs.length;
  const headers = hl + thl;
  const ipCopied = (b: Buffer) => masked(b.subarray(0, hl), [2, 3, 4, 5, 10, 11]);
  const tcpCopied = (b: Buffer) => masked(b.subarray(hl, headers), [4, 5, 6, 7, 13, 16, 17]);
  const flags = pkt[hl + 13]!;
  const actual = segs.map((s) => ({
    length: s.length,
    ipTotal: s.readUInt16BE(2),
    id: s.readUInt16BE(4),
    ipChecksumSum: refSum(s.subarray(0, hl)),
    ipCopied: ipCopied(s),
    seq: s.readUInt32BE(hl + 4),
    flags: s[hl + 13],
    tcpChecksum: s.readUInt16BE(hl + 16),
    tcpCopied: tcpCopied(s),
  }));
  const expected = segs.map((s, i) => ({
    length: headers + Math.min(mss, Math.max(0, flow.payload.length - i * mss)),
    ipTotal: s.length,
    id: (pkt.readUInt16BE(4) + i) & 0xffff,
    ipChecksumSum: 0xffff,
    ipCopied: ipCopied(pkt),
    seq: (pkt.readUInt32BE(hl + 4) + i * mss) % 2 ** 32,
    flags: flags & ~(i === count - 1 ? 0 : FIN | PSH) & ~(i === 0 ? 0 : CWR),
    tcpChecksum: refL4Checksum(s, hl, 16),
    tcpCopied: tcpCopied(pkt),
  }));
  return { actual, expected };
}

function segmentAndCheck(flow: Flow, mss: number): Buffer[] {
  const before = Buffer.from(flow.pkt);
  const out: Buffer[] = [];
  const n = segmentTcp4(flow.pkt, mss, out);
  const payload = flow.payload.length;
  expect(n).toBe(payload <= mss ? 1 : Math.ceil(payload / mss));
  expect(out.length).toBe(n);
  const { actual, expected } = describeSegments(flow, mss, out);
  expect(actual).toEqual(expected);
  const headers = flow.ipHeader + flow.tcpHeader;
  expect(Buffer.concat(out.map((s) => s.subarray(headers))).equals(flow.payload)).toBe(true);
  expect(flow.pkt.equals(before)).toBe(true);
  return out;
}

describe('segmentTcp4: splitting a super-packet as tcp_gso_segment does', () => {
  it('agrees with a from-scratch reference on 300 random flows (payload 0 to 65 KB, mss 500 to 1460)', () => {
    const rand = rng(0x650);
    for (let n = 0; n < 300; n++) {
      const size = n % 3 === 0 ? int(rand, 0, 3000) : int(rand, 0, 65_000);
      segmentAndCheck(superPacket(rand, size, randomFlags(rand)), int(rand, 500, 1460));
    }
  });

  it('sends one packet, flags untouched and checksums recomputed, when the payload fits (0, 1, mss)', () => {
    const rand = rng(1);
    const all = ACK | PSH | FIN | CWR;
    for (const size of [0, 1, 1420]) {
      const flow = superPacket(rand, size, all);
      const [seg] = segmentAndCheck(flow, 1420);
      expect(seg![flow.ipHeader + 13]).toBe(all);
    }
  });

  it('splits at exactly mss: mss + 1 gives a 1-byte tail segment carrying FIN and PSH', () => {
    const flow = superPacket(rng(2), 1421, ACK | PSH | FIN);
    const segs = segmentAndCheck(flow, 1420);
    const hl = flow.ipHeader;
    expect(segs.map((s) => [s.length - hl - flow.tcpHeader, s[hl + 13]])).toEqual([
      [1420, ACK],
      [1, ACK | PSH | FIN],
    ]);
  });

  it('wraps the sequence number at 2^32 and the IP ID at 2^16', () => {
    const flow = superPacket(rng(3), 4000);
    flow.pkt.writeUInt32BE(0xffff_fc00, flow.ipHeader + 4);
    flow.pkt.writeUInt16BE(0xfffe, 4);
    const segs = segmentAndCheck(flow, 1000);
    expect(segs.map((s) => [s.readUInt32BE(flow.ipHeader + 4), s.readUInt16BE(4)])).toEqual([
      [0xffff_fc00, 0xfffe],
      [0xffff_ffe8, 0xffff],
      [976, 0],
      [1976, 1],
    ]);
  });

  it('handles odd mss and odd payload lengths (mss 1, 3, 7, 537)', () => {
    const rand = rng(4);
    for (const mss of [1, 3, 7, 537]) segmentAndCheck(superPacket(rand, int(rand, 1, 2001) | 1, randomFlags(rand)), mss);
  });

  it('uses the IP total length and ignores bytes after it', () => {
    const flow = superPacket(rng(5), 3000);
    const padded: Flow = { ...flow, pkt: Buffer.concat([flow.pkt, Buffer.alloc(17, 0xee)]) };
    segmentAndCheck(padded, 1460);
  });

  it('appends to `out` without disturbing what it already holds', () => {
    const marker = Buffer.from('keep');
    const out = [marker];
    expect(segmentTcp4(superPacket(rng(6), 2500).pkt, 1000, out)).toBe(3);
    expect(out).toHaveLength(4);
    expect(out[0]).toBe(marker);
  });
});

describe('segmentTcp4: malformed input is a problem, never an exception', () => {
  const good = superPacket(rng(7), 2000);
  const variant = (edit: (b: Buffer) => void) => {
    const b = Buffer.from(good.pkt);
    edit(b);
    return b;
  };
  const run = (pkt: Buffer, mss = 1000) => {
    const out: Buffer[] = [];
    const r = segmentTcp4(pkt, mss, out);
    if (typeof r === 'string') expect(out).toHaveLength(0);
    return r;
  };

  it('reports every prefix of a valid super-packet as truncated', () => {
    for (let len = 0; len < good.pkt.length; len++) {
      const r = run(good.pkt.subarray(0, len));
      if (r !== 'gso-truncated') expect({ len, r }).toEqual({ len, r: 'gso-truncated' });
    }
    expect(run(good.pkt)).toBe(2);
  });

  it('rejects what is not TCP over IPv4: other protocols, version, IHL, TCP data offset, fragments', () => {
    const hl = good.ipHeader;
    for (const proto of [1, 17, 41, 132]) expect(run(variant((b) => (b[9] = proto)))).toBe('gso-not-tcp4');
    expect(run(variant((b) => (b[0] = 0x60 | (hl >>> 2))))).toBe('gso-not-tcp4');
    expect(run(variant((b) => (b[0] = 0x44)))).toBe('gso-not-tcp4');
    expect(run(variant((b) => (b[hl + 12] = 0x40)))).toBe('gso-not-tcp4');
    expect(run(variant((b) => (b[6] = 0x20)))).toBe('gso-not-tcp4'); // more fragments
    expect(run(variant((b) => b.writeUInt16BE(0x40b9, 6)))).toBe('gso-not-tcp4'); // DF + offset
  });

  it('rejects IP total lengths that leave no room for the headers', () => {
    const hl = good.ipHeader;
    expect(run(variant((b) => b.writeUInt16BE(hl + 19, 2)))).toBe('gso-truncated');
    expect(run(variant((b) => b.writeUInt16BE(hl + good.tcpHeader - 1, 2)))).toBe('gso-truncated');
    expect(run(variant((b) => b.writeUInt16BE(0, 2)))).toBe('gso-truncated');
    // A 60-byte TCP header (data offset 15) that the total length cuts short, and then just holds.
    expect(run(variant((b) => ((b[hl + 12] = 0xf0), b.writeUInt16BE(hl + 59, 2))))).toBe('gso-truncated');
    expect(run(variant((b) => ((b[hl + 12] = 0xf0), b.writeUInt16BE(hl + 60, 2))))).toBe(1);
    expect(run(variant((b) => b.writeUInt16BE(hl + good.tcpHeader, 2)))).toBe(1);
  });

  it('rejects an mss below 1 or not an integer', () => {
    for (const mss of [0, -1, 0.5, 1460.5, Number.NaN, Number.POSITIVE_INFINITY]) expect(run(good.pkt, mss)).toBe('gso-bad-mss');
  });

  it('never throws on 5,000 random buffers, and returns only problems for them', () => {
    const rand = rng(8);
    for (let n = 0; n < 5000; n++) {
      const r = run(bytes(rand, int(rand, 0, 120)), int(rand, 0, 1500));
      if (typeof r !== 'string') expect({ n, r }).toEqual({ n, r: 'a problem' });
    }
  });

  it('on 5,000 single-byte header corruptions, either reports a problem or emits valid packets', () => {
    const rand = rng(9);
    const small = superPacket(rand, 300);
    const headers = small.ipHeader + small.tcpHeader;
    for (let n = 0; n < 5000; n++) {
      const pkt = Buffer.from(small.pkt);
      pkt[int(rand, 0, headers - 1)] = int(rand, 0, 255);
      const out: Buffer[] = [];
      const r = segmentTcp4(pkt, 128, out);
      if (typeof r === 'string') continue;
      for (const s of out) {
        const hl = (s[0]! & 0x0f) * 4;
        expect([s.readUInt16BE(2), refSum(s.subarray(0, hl)), s.readUInt16BE(hl + 16)]).toEqual([s.length, 0xffff, refL4Checksum(s, hl, 16)]);
      }
    }
  });
});

/** An IPv4 packet carrying TCP or UDP whose checksum field holds the folded pseudo-header sum. */
function partialPacket(rand: Rand, protocol: 6 | 17, payloadLength: number): { pkt: Buffer; l4: number; field: number } {
  const l4 = 20 + 4 * int(rand, 0, 10);
  const l4Header = protocol === 6 ? 20 + 4 * int(rand, 0, 10) : 8;
  const pkt = Buffer.concat([bytes(rand, l4), bytes(rand, l4Header + payloadLength)]);
  pkt[0] = 0x40 | (l4 >>> 2);
  pkt.writeUInt16BE(pkt.length, 2);
  pkt[9] = protocol;
  if (protocol === 17) pkt.writeUInt16BE(pkt.length - l4, l4 + 4);
  else pkt[l4 + 12] = (l4Header >>> 2) << 4;
  const field = protocol === 6 ? 16 : 6;
  pkt.writeUInt16BE(refSum(pseudoHeader(pkt, protocol, pkt.length - l4)), l4 + field);
  return { pkt, l4, field };
}

/** `pkt` copied to `shift` bytes into a larger buffer, so the sum runs at every alignment. */
function shifted(pkt: Buffer, shift: number): Buffer {
  const host = Buffer.alloc(pkt.length + shift + 3);
  pkt.copy(host, shift);
  return host.subarray(shift, shift + pkt.length);
}

describe('completeChecksum: finishing a NEEDS_CSUM packet', () => {
  it('stores the from-scratch TCP and UDP checksum for 2,000 random packets at every alignment', () => {
    const rand = rng(10);
    for (let n = 0; n < 2000; n++) {
      const protocol = n % 2 === 0 ? 6 : 17;
      const size = n % 4 < 2 ? int(rand, 0, 64) : int(rand, 0, 9000);
      const { pkt: original, l4, field } = partialPacket(rand, protocol, size);
      const pkt = shifted(original, n % 4);
      const expected = refL4Checksum(pkt, l4, field);
      expect(completeChecksum(pkt, l4, field)).toBe(true);
      const got = pkt.readUInt16BE(l4 + field);
      if (protocol === 17 && expected === 0) expect(got).toBe(0xffff);
      else if (got !== expected) expect({ n, got }).toEqual({ n, got: expected });
      const fieldBytes = [l4 + field, l4 + field + 1];
      expect(masked(pkt, fieldBytes)).toBe(masked(original, fieldBytes));
    }
  });

  /** A packet whose correct checksum is 0: the last payload word cancels the rest of the sum. */
  function zeroSumPacket(protocol: 6 | 17) {
    const { pkt, l4, field } = partialPacket(rng(11), protocol, 100);
    pkt.writeUInt16BE(0, pkt.length - 2);
    const withoutLast = refSum(Buffer.concat([pseudoHeader(pkt, protocol, pkt.length - l4), Buffer.from(pkt.subarray(l4)).fill(0, field, field + 2)]));
    pkt.writeUInt16BE(~withoutLast & 0xffff, pkt.length - 2);
    expect(refL4Checksum(pkt, l4, field)).toBe(0);
    return { pkt, l4, field };
  }

  it('stores a UDP checksum of 0 as 0xffff (0 means "none") and a TCP one as 0', () => {
    const udp = zeroSumPacket(17);
    expect(completeChecksum(udp.pkt, udp.l4, udp.field)).toBe(true);
    expect(udp.pkt.readUInt16BE(udp.l4 + udp.field)).toBe(0xffff);
    const tcp = zeroSumPacket(6);
    expect(completeChecksum(tcp.pkt, tcp.l4, tcp.field)).toBe(true);
    expect(tcp.pkt.readUInt16BE(tcp.l4 + tcp.field)).toBe(0);
  });

  it('refuses offsets that do not fit the packet and leaves it untouched', () => {
    const { pkt } = partialPacket(rng(12), 6, 10);
    const before = Buffer.from(pkt);
    const len = pkt.length;
    for (const [start, offset] of [
      [len, 0],
      [len - 1, 0],
      [len - 2, 1],
      [20, len],
      [-1, 16],
      [20, -2],
      [20.5, 16],
      [20, Number.NaN],
      [Number.POSITIVE_INFINITY, 0],
    ] as const) {
      expect(completeChecksum(pkt, start, offset)).toBe(false);
    }
    expect(pkt.equals(before)).toBe(true);
    expect(completeChecksum(pkt, len - 2, 0)).toBe(true);
  });
});
