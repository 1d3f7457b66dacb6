import { describe, expect, it } from 'vitest';
import { decrementTtl, headerChecksumValid, internetChecksum, onesSum, writeHeaderChecksum } from '../../src/backend/udp/checksum.js';
import { makeIpv4Packet } from '../support/udp-fakes.js';
import { buildIcmpError, icmpErrorAllowed } from '../../src/backend/udp/icmp.js';
import { checkHeader, parseIpv4Header } from '../../src/backend/udp/packet.js';
import { parseIp } from '../../src/lib/ipv4.js';
import { rng } from '../support/rng.js';

/** A small seeded PRNG (mulberry32), so that a failing random case can be replayed. */

const ip = (s: string) => parseIp(s)!;

describe('IPv4 header parsing', () => {
  it('reads every field of a well-formed packet', () => {
    const pkt = makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.2.7', ttl: 17, protocol: 6, options: Buffer.alloc(8, 1), fragmentOffset: 0 });
    expect(parseIpv4Header(pkt)).toEqual({
      ok: true,
      header: { version: 4, headerLength: 28, totalLength: pkt.length, ttl: 17, protocol: 6, fragmentOffset: 0, checksum: pkt.readUInt16BE(10), src: ip('10.244.1.5'), dst: ip('10.244.2.7') },
    });
  });

  it('gives addresses above 2^31 as unsigned integers', () => {
    const r = parseIpv4Header(makeIpv4Packet({ src: '200.1.2.3', dst: '255.255.255.254' }));
    expect(r.ok && [r.header.src, r.header.dst]).toEqual([0xc8010203, 0xfffffffe]);
  });

  it('names each problem and never throws', () => {
    const good = makeIpv4Packet({ src: '10.0.0.1', dst: '10.0.0.2' });
    const patched = (i: number, v: number) => Object.assign(Buffer.from(good), { [i]: v });
    expect(parseIpv4Header(Buffer.alloc(0))).toEqual({ ok: false, reason: 'truncated' });
    expect(checkHeader(good.subarray(0, 19))).toBe('truncated');
    expect(checkHeader(patched(0, 0x65))).toBe('not-ipv4');
    expect(checkHeader(patched(0, 0x44))).toBe('bad-header');
    expect(checkHeader(patched(0, 0x4f).subarray(0, 40))).toBe('truncated');
    expect(checkHeader(patched(3, 10).fill(0, 2, 3))).toBe('bad-header');
    expect(checkHeader(good.subarray(0, good.length - 1))).toBe('length-mismatch');
    expect(checkHeader(Buffer.concat([good, Buffer.alloc(1)]))).toBe('length-mismatch');
    expect(checkHeader(good)).toBeNull();
  });
});

describe('checksums', () => {
  it('computes the RFC 1071 example and verifies a header', () => {
    // RFC 1071 section 3: 0001 f203 f4f5 f6f7 sums to ddf2.
    expect(onesSum(Buffer.from('0001f203f4f5f6f7', 'hex'), 0, 8)).toBe(0xddf2);
    expect(internetChecksum(Buffer.from('0001f203f4f5f6f7', 'hex'), 0, 8)).toBe(0x220d);
    const pkt = makeIpv4Packet({ src: '10.0.0.1', dst: '10.0.0.2' });
    expect(headerChecksumValid(pkt, 20)).toBe(true);
    pkt[15] = pkt[15]! ^ 1;
    expect(headerChecksumValid(pkt, 20)).toBe(false);
  });

  it('patches the checksum on a TTL decrement exactly as a full recomputation would (20,000 random headers)', () => {
    const rand = rng(1624);
    for (let n = 0; n < 20_000; n++) {
      const hl = 20 + 4 * Math.floor(rand() * 11);
      const pkt = Buffer.alloc(hl + 8);
      for (let i = 0; i < pkt.length; i++) pkt[i] = Math.floor(rand() * 256);
      pkt[0] = 0x40 | (hl >>> 2);
      pkt.writeUInt16BE(pkt.length, 2);
      pkt[8] = 2 + Math.floor(rand() * 254);
      writeHeaderChecksum(pkt);
      const expected = Buffer.from(pkt);
      expected[8]!--;
      writeHeaderChecksum(expected);
      expect(decrementTtl(pkt)).toBe(true);
      if (!pkt.equals(expected)) expect({ n, got: pkt.toString('hex') }).toEqual({ n, got: expected.toString('hex') });
      expect(headerChecksumValid(pkt, hl)).toBe(true);
    }
  });

  it('refuses to decrement a TTL of 1 or 0 and leaves the packet alone', () => {
    for (const ttl of [0, 1]) {
      const pkt = makeIpv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', ttl });
      const before = Buffer.from(pkt);
      expect(decrementTtl(pkt)).toBe(false);
      expect(pkt.equals(before)).toBe(true);
    }
  });
});

describe('ICMP errors', () => {
  const GW = ip('10.244.1.0');

  it('builds net unreachable: our address to the offender, IP header + 8 payload bytes, valid checksums', () => {
    const offender = makeIpv4Packet({ src: '10.244.1.5', dst: '10.250.0.9', payload: Buffer.from('0123456789abcdef'), options: Buffer.alloc(4, 7) });
    const icmp = buildIcmpError(offender, 3, 0, GW)!;
    const h = parseIpv4Header(icmp);
    expect(h.ok && h.header).toMatchObject({ protocol: 1, src: GW, dst: ip('10.244.1.5'), totalLength: 20 + 8 + 24 + 8, ttl: 64 });
    expect(headerChecksumValid(icmp, 20)).toBe(true);
    expect(onesSum(icmp, 20, icmp.length)).toBe(0xffff);
    expect([icmp[20], icmp[21], icmp.readUInt32BE(24)]).toEqual([3, 0, 0]);
    expect(icmp.subarray(28).equals(offender.subarray(0, 24 + 8))).toBe(true);
  });

  it('builds time exceeded and quotes a short payload whole', () => {
    const offender = makeIpv4Packet({ src: '10.244.2.5', dst: '10.244.1.9', payload: Buffer.from('abc'), ttl: 1 });
    const icmp = buildIcmpError(offender, 11, 0, GW)!;
    expect([icmp[20], icmp[21], icmp.length]).toEqual([11, 0, 20 + 8 + 23]);
    expect(onesSum(icmp, 20, icmp.length)).toBe(0xffff);
  });

  it('never answers ICMP errors, non-first fragments, non-unicast sources or multicast destinations', () => {
    const icmpOf = (type: number) => makeIpv4Packet({ src: '10.244.1.5', dst: '10.9.0.1', protocol: 1, payload: Buffer.from([type, 0, 0, 0, 0, 0, 0, 0]) });
    expect(icmpErrorAllowed(icmpOf(8))).toBe(true); // an echo request gets its net unreachable
    for (const t of [3, 4, 5, 11, 12]) expect(buildIcmpError(icmpOf(t), 3, 0, GW)).toBeNull();
    expect(buildIcmpError(makeIpv4Packet({ src: '10.244.1.5', dst: '10.9.0.1', protocol: 1, payload: Buffer.alloc(0) }), 3, 0, GW)).toBeNull();
    expect(buildIcmpError(makeIpv4Packet({ src: '10.244.1.5', dst: '10.9.0.1', fragmentOffset: 185 }), 3, 0, GW)).toBeNull();
    for (const src of ['0.0.0.0', '127.0.0.1', '224.0.0.5', '255.255.255.255']) {
      expect(buildIcmpError(makeIpv4Packet({ src, dst: '10.9.0.1' }), 3, 0, GW)).toBeNull();
    }
    expect(buildIcmpError(makeIpv4Packet({ src: '10.244.1.5', dst: '239.1.1.1' }), 3, 0, GW)).toBeNull();
    expect(buildIcmpError(Buffer.from([0x45, 0, 0]), 3, 0, GW)).toBeNull();
  });
});
