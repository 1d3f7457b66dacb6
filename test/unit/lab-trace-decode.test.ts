// Issue 17, part 2: what `twill lab trace` makes of each hop's capture. One-packet pcap files
// built here byte by byte: bare, inside flannel's udp encapsulation, inside VXLAN, from a TUN.
import { describe, expect, it } from 'vitest';
import { decodePcap, firstRecord } from '../../src/tools/lab/trace/decode.js';
import { innermostSource } from '../../src/tools/lab/trace/masquerade.js';
import type { Hop } from '../../src/tools/lab/trace/types.js';

const ip = (text: string): Buffer => Buffer.from(text.split('.').map(Number));
const macA = Buffer.from([2, 0, 0, 0, 0, 0xa]);
const macB = Buffer.from([2, 0, 0, 0, 0, 0xb]);

function ether(payload: Buffer): Buffer {
  return Buffer.concat([macB, macA, Buffer.from([0x08, 0x00]), payload]);
}

function ipv4(src: string, dst: string, proto: number, payload: Buffer, ttl = 64): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h[8] = ttl;
  h[9] = proto;
  ip(src).copy(h, 12);
  ip(dst).copy(h, 16);
  return Buffer.concat([h, payload]);
}

function echo(id: number, seq: number, size = 56): Buffer {
  const b = Buffer.alloc(8 + size);
  b[0] = 8;
  b.writeUInt16BE(id, 4);
  b.writeUInt16BE(seq, 6);
  return b;
}

function udp(sport: number, dport: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([h, payload]);
}

function vxlan(vni: number, frame: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = 0x08;
  h.writeUIntBE(vni, 4, 3);
  return Buffer.concat([h, frame]);
}

/** A little-endian pcap file with one record, snapped to `snap` bytes as tcpdump -s does. */
function pcap(linkType: number, frame: Buffer, snap = 256): Buffer {
  const g = Buffer.alloc(24);
  g.writeUInt32LE(0xa1b2c3d4, 0);
  g.writeUInt16LE(2, 4);
  g.writeUInt16LE(4, 6);
  g.writeUInt32LE(snap, 16);
  g.writeUInt32LE(linkType, 20);
  const data = frame.subarray(0, snap);
  const r = Buffer.alloc(16);
  r.writeUInt32LE(data.length, 8);
  r.writeUInt32LE(frame.length, 12);
  return Buffer.concat([g, r, data]);
}

const inner = ipv4('10.244.1.2', '10.244.2.2', 1, echo(7, 1, 500), 63);

describe('decodePcap', () => {
  it('a bare echo request: Ethernet, IPv4, ICMP, no overhead', () => {
    const p = decodePcap(pcap(1, ether(inner)))!;
    expect(p.layers.map((l) => l.proto)).toEqual(['ether', 'ipv4', 'icmp']);
    expect(p.layers[1]).toEqual({ proto: 'ipv4', src: '10.244.1.2', dst: '10.244.2.2', ttl: 63, length: 528 });
    expect(p.layers[2]).toEqual({ proto: 'icmp', type: 8, code: 0, id: 7, seq: 1 });
    expect(p.overheadBytes).toBe(0);
    expect(p.bytes).toBe(14 + 528);
    expect(p.summary).toBe('10.244.1.2 > 10.244.2.2 ICMP echo request');
  });

  it("flannel's udp: the packet whole inside UDP, 28 bytes of overhead, the inner packet decoded past the snap", () => {
    const frame = ether(ipv4('198.18.0.11', '198.18.0.12', 17, udp(8285, 8285, inner)));
    const p = decodePcap(pcap(1, frame, 96))!;
    expect(p.layers.map((l) => l.proto)).toEqual(['ether', 'ipv4', 'udp', 'ipv4', 'icmp']);
    expect(p.overheadBytes).toBe(28);
    expect(p.bytes).toBe(frame.length);
    expect(p.summary).toBe('198.18.0.11:8285 > 198.18.0.12:8285 UDP | 10.244.1.2 > 10.244.2.2 ICMP echo request');
  });

  it('VXLAN: the inner frame inside UDP and a VXLAN header, 50 bytes of overhead', () => {
    const frame = ether(ipv4('198.18.0.11', '198.18.0.12', 17, udp(40000, 8472, vxlan(1, ether(inner)))));
    const p = decodePcap(pcap(1, frame))!;
    expect(p.layers.map((l) => l.proto)).toEqual(['ether', 'ipv4', 'udp', 'vxlan', 'ether', 'ipv4', 'icmp']);
    expect(p.layers[3]).toEqual({ proto: 'vxlan', vni: 1 });
    expect(p.overheadBytes).toBe(50);
    expect(p.summary).toBe('198.18.0.11:40000 > 198.18.0.12:8472 UDP VXLAN vni 1 | 10.244.1.2 > 10.244.2.2 ICMP echo request');
  });

  it('a TUN (raw IP link type 101): no Ethernet layer', () => {
    const p = decodePcap(pcap(101, inner))!;
    expect(p.layers.map((l) => l.proto)).toEqual(['ipv4', 'icmp']);
  });

  it('a TCP segment names its flags', () => {
    const tcp = Buffer.alloc(20);
    tcp.writeUInt16BE(40000, 0);
    tcp.writeUInt16BE(80, 2);
    tcp[13] = 0x02;
    const p = decodePcap(pcap(1, ether(ipv4('10.244.1.2', '10.244.2.2', 6, tcp))))!;
    expect(p.summary).toBe('10.244.1.2:40000 > 10.244.2.2:80 TCP [SYN]');
  });

  it('refuses what is not a one-record pcap, and link types it cannot read', () => {
    expect(decodePcap(Buffer.alloc(10))).toBeNull();
    expect(decodePcap(Buffer.alloc(64))).toBeNull();
    const empty = pcap(1, ether(inner)).subarray(0, 24);
    expect(firstRecord(empty)).toBeNull();
    expect(decodePcap(pcap(105, inner))).toBeNull();
    const cut = pcap(1, ether(inner));
    expect(firstRecord(cut.subarray(0, cut.length - 1))).toBeNull();
  });
});

describe('innermostSource', () => {
  const frame = (src: string, encapsulated: boolean): Buffer =>
    encapsulated ? ether(ipv4('198.18.0.11', '198.18.0.12', 17, udp(8285, 8285, ipv4(src, '10.244.2.2', 1, echo(1, 1))))) : ether(ipv4(src, '198.18.0.3', 1, echo(1, 1)));
  const hop = (src: string | null, encapsulated = false): Hop => ({
    id: 'x',
    node: 'h1',
    ns: 'ns',
    dev: 'eth0',
    role: 'underlay',
    label: '',
    packet: src === null ? null : decodePcap(pcap(1, frame(src, encapsulated))),
  });

  it('is the first rewritten source, read from the innermost packet (never the tunnel outer)', () => {
    expect(innermostSource([hop('10.244.1.2'), hop('10.244.1.2', true)], '10.244.1.2')).toBeNull();
    expect(innermostSource([hop('10.244.1.2'), hop(null), hop('198.18.0.11')], '10.244.1.2')).toBe('198.18.0.11');
  });
});
