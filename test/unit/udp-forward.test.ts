import { describe, expect, it } from 'vitest';
import { headerChecksumValid, writeHeaderChecksum } from '../../src/backend/udp/checksum.js';
import { DROP_REASONS } from '../../src/backend/udp/counters.js';
import { makeIpv4Packet } from '../support/udp-fakes.js';
import { Forwarder, UdpPeer } from '../../src/backend/udp/forward.js';
import { checkHeader } from '../../src/backend/udp/packet.js';
import { parseCidr, parseIp } from '../../src/lib/ipv4.js';
import { rng } from '../support/rng.js';


const net = (s: string) => parseCidr(s)!;
const B_IP = '198.18.0.12';
const C_IP = '198.19.5.20';

function forwarder() {
  const fwd = new Forwarder({ ownSubnet: net('10.244.1.0/24'), tunAddress: parseIp('10.244.1.0')!, mtu: 1472 });
  fwd.setPeer(net('10.244.2.0/24'), B_IP);
  fwd.setPeer(net('10.244.3.0/24'), C_IP);
  return fwd;
}

describe('outbound: a packet read from the TUN', () => {
  it('goes to the peer owning the destination, TTL decremented, checksum valid', () => {
    const fwd = forwarder();
    const pkt = makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.3.9', ttl: 64 });
    const v = fwd.outbound(pkt);
    expect(v).toBeInstanceOf(UdpPeer);
    expect((v as UdpPeer).publicIP).toBe(C_IP);
    expect(pkt[8]).toBe(63);
    expect(headerChecksumValid(pkt, 20)).toBe(true);
    expect((v as UdpPeer).traffic.snapshot()).toEqual({ packetsOut: 1, bytesOut: pkt.length, packetsIn: 0, bytesIn: 0 });
  });

  it('no peer: no-route, answered with ICMP net unreachable from the TUN address', () => {
    const fwd = forwarder();
    const pkt = makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.77.1' });
    expect(fwd.outbound(pkt)).toBe('no-route');
    const icmp = fwd.icmpFor(pkt, 'no-route')!;
    expect([icmp[20], icmp[21], icmp.readUInt32BE(12), icmp.readUInt32BE(16)]).toEqual([3, 0, parseIp('10.244.1.0'), parseIp('10.244.1.5')]);
    expect(fwd.counters.icmpSent).toBe(1);
  });

  it('TTL 1: ttl-expired, answered with time exceeded, packet untouched', () => {
    const fwd = forwarder();
    const pkt = makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.2.9', ttl: 1 });
    expect(fwd.outbound(pkt)).toBe('ttl-expired');
    expect(pkt[8]).toBe(1);
    expect(fwd.icmpFor(pkt, 'ttl-expired')![20]).toBe(11);
  });

  it('drops our own subnet, non-IPv4 and malformed packets, counting each', () => {
    const fwd = forwarder();
    expect(fwd.outbound(makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.1.6' }))).toBe('own-subnet');
    expect(fwd.outbound(Buffer.from('6000000000083a40', 'hex'))).toBe('truncated');
    const v6 = Buffer.alloc(48);
    v6[0] = 0x60;
    expect(fwd.outbound(v6)).toBe('not-ipv4');
    expect(fwd.counters.drops).toMatchObject({ 'own-subnet': 1, truncated: 1, 'not-ipv4': 1 });
  });
});

describe('inbound: a datagram from the UDP socket', () => {
  const fromB = (over: { src?: string; dst?: string; ttl?: number } = {}) => makeIpv4Packet({ src: over.src ?? '10.244.2.5', dst: over.dst ?? '10.244.1.7', ttl: over.ttl ?? 63 });

  it('accepts a packet from a peer, for us, from inside its subnet; decrements the TTL', () => {
    const fwd = forwarder();
    const pkt = fromB();
    expect(fwd.inbound(pkt, B_IP)).toBeNull();
    expect(pkt[8]).toBe(62);
    expect(headerChecksumValid(pkt, 20)).toBe(true);
    expect(fwd.counters.traffic.snapshot()).toMatchObject({ packetsIn: 1, bytesIn: pkt.length });
    expect(fwd.peers().find((p) => p.publicIP === B_IP)!.traffic.packetsIn).toBe(1);
  });

  it('drops by reason: unknown peer, spoofed source, not for us, TTL, size, header, checksum', () => {
    const fwd = forwarder();
    const badSum = fromB();
    badSum[11] = badSum[11]! ^ 0xff;
    const cases: [Buffer, string, string][] = [
      [fromB(), '203.0.113.9', 'unknown-peer'],
      [fromB({ src: '10.244.3.5' }), B_IP, 'spoofed-source'], // C's subnet, sent by B
      [fromB({ src: '10.244.1.5' }), B_IP, 'spoofed-source'], // our own subnet, sent by B
      [fromB({ src: '10.99.0.1' }), B_IP, 'spoofed-source'], // nobody's subnet
      [fromB({ dst: '10.244.3.7' }), B_IP, 'not-for-us'],
      [fromB({ ttl: 1 }), B_IP, 'ttl-expired'],
      [Buffer.alloc(1473, 0x45), B_IP, 'oversize'],
      [Buffer.alloc(10), B_IP, 'truncated'],
      [Buffer.concat([fromB(), Buffer.alloc(4)]), B_IP, 'length-mismatch'],
      [badSum, B_IP, 'bad-checksum'],
    ];
    for (const [pkt, from, reason] of cases) expect([reason, fwd.inbound(pkt, from)]).toEqual([reason, reason]);
    expect(fwd.counters.drops).toMatchObject({ 'unknown-peer': 1, 'spoofed-source': 3, 'not-for-us': 1, 'ttl-expired': 1, oversize: 1, truncated: 1, 'length-mismatch': 1, 'bad-checksum': 1 });
    expect(fwd.counters.traffic.packetsIn).toBe(0);
  });

  it('a removed peer is unknown at once; a moved peer is only accepted from its new address', () => {
    const fwd = forwarder();
    fwd.setPeer(net('10.244.2.0/24'), '198.18.0.99');
    expect(fwd.inbound(fromB(), B_IP)).toBe('unknown-peer');
    expect(fwd.inbound(fromB(), '198.18.0.99')).toBeNull();
    expect(fwd.deletePeer(net('10.244.2.0/24'))).toBe(true);
    expect(fwd.inbound(fromB(), '198.18.0.99')).toBe('unknown-peer');
    expect(fwd.outbound(makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.2.9' }))).toBe('no-route');
  });

  it('keeps a PublicIP known while any of its subnets remains', () => {
    const fwd = forwarder();
    fwd.setPeer(net('10.244.4.0/24'), B_IP);
    fwd.deletePeer(net('10.244.2.0/24'));
    expect(fwd.inbound(fromB({ src: '10.244.4.1' }), B_IP)).toBeNull();
    expect(fwd.inbound(fromB(), B_IP)).toBe('spoofed-source');
  });

  it('rejects a PublicIP that is not a plain dotted quad (node:dgram reports senders in that form)', () => {
    const fwd = forwarder();
    for (const bad of ['node-5.example', '198.018.0.5', '::ffff:198.18.0.5']) expect(fwd.setPeer(net('10.244.5.0/24'), bad)).toBeNull();
    expect(fwd.peers()).toHaveLength(2);
  });
});

describe('fuzz: no input ever throws', () => {
  it('10,000 random, truncated and corrupted buffers through both directions', () => {
    const rand = rng(42);
    const fwd = forwarder();
    const valid = () => makeIpv4Packet({ src: `10.244.${2 + Math.floor(rand() * 3)}.5`, dst: `10.244.${1 + Math.floor(rand() * 3)}.7`, ttl: [0, 1, 2, 64][Math.floor(rand() * 4)], protocol: rand() < 0.3 ? 1 : 17, payload: Buffer.alloc(Math.floor(rand() * 40), 3) });
    for (let i = 0; i < 10_000; i++) {
      let buf: Buffer;
      const kind = rand();
      if (kind < 0.3) buf = Buffer.from(Array.from({ length: Math.floor(rand() * 80) }, () => Math.floor(rand() * 256)));
      else {
        buf = valid();
        if (kind < 0.6) buf = buf.subarray(0, Math.floor(rand() * buf.length));
        else if (kind < 0.9) for (let k = 0; k < 3; k++) buf[Math.floor(rand() * buf.length)] = Math.floor(rand() * 256);
        // Re-sign half of the corrupted headers, so that they get past the checksum to the later checks.
        if (rand() < 0.5 && checkHeader(buf) === null) writeHeaderChecksum(buf);
      }
      const from = [B_IP, C_IP, '203.0.113.1'][Math.floor(rand() * 3)]!;
      const copy = Buffer.from(buf);
      expect(() => {
        const out = fwd.outbound(buf);
        if (out === 'no-route' || out === 'ttl-expired') fwd.icmpFor(buf, out);
        const inn = fwd.inbound(copy, from);
        if (inn === 'ttl-expired') fwd.icmpFor(copy, inn);
      }).not.toThrow();
    }
    const counted = DROP_REASONS.reduce((n, r) => n + fwd.counters.drops[r], 0);
    const t = fwd.counters.traffic;
    expect(counted + t.packetsIn + t.packetsOut).toBe(20_000);
    expect(t.packetsIn).toBeGreaterThan(50); // the walk reaches the accepting branch too
    expect(t.packetsOut).toBeGreaterThan(50);
  });
});
