import { afterEach, describe, expect, it } from 'vitest';
import { headerChecksumValid } from '../../src/backend/udp/checksum.js';
import { TunnelCounters } from '../../src/backend/udp/counters.js';
import { UdpDataPath } from '../../src/backend/udp/data-path.js';
import { FakeTun, FakeUdpNetwork, makeIpv4Packet, type FakeTransport } from '../support/udp-fakes.js';
import { Forwarder } from '../../src/backend/udp/forward.js';
import { segmentTcp4 } from '../support/gso-segment.js';
import { parseIpv4Header } from '../../src/backend/udp/packet.js';
import type { TunOffload } from '../../src/kernel/tun-types.js';
import { parseCidr, parseIp } from '../../src/lib/ipv4.js';
import { ipChecksumValid, referenceTcpChecksum, tcpSegment, tcpStream } from '../support/tcp-packets.js';

const PORT = 8285;
const net = (s: string) => parseCidr(s)!;

interface Node {
  readonly tun: FakeTun;
  readonly transport: FakeTransport;
  readonly fwd: Forwarder;
  readonly path: UdpDataPath;
  readonly errors: string[];
}

const running: UdpDataPath[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop()));
});

/** One node: its fake TUN, its transport on the shared fake network, its data path. */
function node(network: FakeUdpNetwork, subnet: string, publicIP: string, offload: TunOffload): Node {
  const tun = new FakeTun('twill0', offload);
  const own = net(subnet);
  const fwd = new Forwarder({ ownSubnet: own, tunAddress: own.addr, mtu: 1472 });
  const errors: string[] = [];
  const transport = network.bind(publicIP, PORT);
  const path = new UdpDataPath({ forwarder: fwd, tun, transport, peerPort: PORT, onError: (err, where) => errors.push(`${where}: ${err.message}`) });
  path.start();
  running.push(path);
  return { tun, transport, fwd, path, errors };
}

/** Two nodes that know each other: A 10.244.1.0/24 at 198.18.0.11, B 10.244.2.0/24 at 198.18.0.12. */
function pair(offload: TunOffload = 'off') {
  const network = new FakeUdpNetwork();
  const a = node(network, '10.244.1.0/24', '198.18.0.11', offload);
  const b = node(network, '10.244.2.0/24', '198.18.0.12', offload);
  a.path.setPeer(net('10.244.2.0/24'), '198.18.0.12');
  b.path.setPeer(net('10.244.1.0/24'), '198.18.0.11');
  return { network, a, b };
}

/** Lets the fake network deliver (each hop takes one setImmediate turn). */
async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}

const header = (pkt: Buffer | undefined) => {
  const h = pkt && parseIpv4Header(pkt);
  return h?.ok ? h.header : null;
};

describe('two udp data paths in one process', () => {
  it("carries a pod packet from A's TUN to B's TUN, TTL decremented on each side, and the reply back", async () => {
    const { a, b } = pair();
    const request = makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.2.7', ttl: 64, payload: Buffer.from('ping') });
    a.tun.emit([request]);
    await settle();
    expect(b.tun.written).toHaveLength(1);
    const got = b.tun.written[0]!;
    expect(header(got)).toMatchObject({ src: parseIp('10.244.1.5'), dst: parseIp('10.244.2.7'), ttl: 62 });
    expect(headerChecksumValid(got, 20)).toBe(true);
    expect(got.subarray(20).toString()).toBe('ping');

    b.tun.emit([makeIpv4Packet({ src: '10.244.2.7', dst: '10.244.1.5', ttl: 64, payload: Buffer.from('pong') })]);
    await settle();
    expect(a.tun.written.map((p) => p.subarray(20).toString())).toEqual(['pong']);
    expect(header(a.tun.written[0])!.ttl).toBe(62);
    expect(a.fwd.peers()[0]!.traffic.snapshot()).toEqual({ packetsOut: 1, bytesOut: request.length, packetsIn: 1, bytesIn: request.length });
  });

  it('delivers a burst in order, each datagram written to the TUN as it arrives', async () => {
    const { a, b } = pair();
    const burst = Array.from({ length: 200 }, (_, i) => makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.2.7', payload: Buffer.from(String(i)) }));
    a.tun.emit(burst);
    await settle();
    expect(b.tun.written.map((p) => p.subarray(20).toString())).toEqual(burst.map((_, i) => String(i)));
    expect(b.tun.batches).toEqual(burst.map(() => 1)); // no waiting for the loop turn to end
  });

  it('a removed peer stops at once: its datagrams drop as unknown-peer, packets to it get ICMP unreachable', async () => {
    const { a, b } = pair();
    a.tun.emit([makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.2.7' })]);
    b.tun.emit([makeIpv4Packet({ src: '10.244.2.7', dst: '10.244.1.5' })]);
    a.path.deletePeer(net('10.244.2.0/24')); // between the send and the arrival
    await settle();
    expect(b.tun.written).toHaveLength(1); // A's packet left before the removal
    expect(a.tun.written).toHaveLength(0);
    expect(a.fwd.counters.drops['unknown-peer']).toBe(1);

    a.tun.emit([makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.2.7' })]);
    await settle();
    expect(b.tun.written).toHaveLength(1);
    const icmp = header(a.tun.written[0])!;
    expect(icmp).toMatchObject({ protocol: 1, src: parseIp('10.244.1.0'), dst: parseIp('10.244.1.5') });
    expect(a.tun.written[0]![20]).toBe(3);
  });

  it('answers an expiring inbound packet with time exceeded, routed back to the sender through the tunnel', async () => {
    const { a, b } = pair();
    a.tun.emit([makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.2.7', ttl: 2 })]); // 1 after A, expires at B
    await settle();
    expect(b.fwd.counters.drops['ttl-expired']).toBe(1);
    const icmp = b.tun.written[0]!; // into B's TUN; B's kernel would route it back out of the TUN
    expect(header(icmp)).toMatchObject({ protocol: 1, src: parseIp('10.244.2.0'), dst: parseIp('10.244.1.5') });
    b.tun.emit([icmp]);
    await settle();
    expect(a.tun.written.map((p) => p[20])).toEqual([11]);
  });

  it('counts TUN write refusals and send failures instead of throwing', async () => {
    const { network, a, b } = pair();
    b.tun.acceptNext = 0; // the kernel's queue is full for one write
    a.tun.emit([1, 2, 3].map(() => makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.2.7' })));
    await settle();
    expect(b.fwd.counters.drops['tun-write-failed']).toBe(1);
    expect(b.tun.written).toHaveLength(2);
    network.failingSenders.add('198.18.0.11');
    a.tun.emit([makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.2.7' })]);
    await settle();
    expect(a.fwd.counters.drops['send-failed']).toBe(1);
    expect(a.errors).toEqual(['send: send EPERM']);
  });

  it('stop() closes the TUN and frees the port; later packets are ignored', async () => {
    const { network, a, b } = pair();
    await a.path.stop();
    expect(a.tun.closed).toBe(true);
    expect(() => network.bind('198.18.0.11', PORT).close()).not.toThrow();
    b.tun.emit([makeIpv4Packet({ src: '10.244.2.7', dst: '10.244.1.5' })]);
    a.tun.emit([makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.2.7' })]);
    await settle();
    expect(a.tun.written).toHaveLength(0);
    expect(b.tun.written).toHaveLength(0);
  });
});

/** One flow from a pod on A to a pod on B: `count` full segments of 1400 bytes (1440-byte packets, within the MTU). */
const stream = (count: number, seq = 1000) => tcpStream(count, 1400, { src: '10.244.1.5', dst: '10.244.2.7', seq });

/** What B's pod would receive: every written packet, super-packets split as the kernel splits them. */
function resegmented(tun: FakeTun): Buffer[] {
  const out: Buffer[] = [];
  tun.written.forEach((pkt, i) => {
    const mss = tun.segmentSizes[i]!;
    if (mss === 0) out.push(pkt);
    else expect(segmentTcp4(pkt, mss, out)).toBeTypeOf('number');
  });
  return out;
}

describe('TUN offload gro: inbound TCP merged per flow at the end of the loop turn', () => {
  it('writes one burst of a flow as super-packets that split back into the same segments', async () => {
    const { a, b } = pair('gro');
    const sent = stream(20);
    a.tun.emit(sent);
    await settle();
    expect(b.tun.written.length).toBeLessThan(20);
    expect(b.tun.segmentSizes.some((size) => size > 0)).toBe(true);
    const got = resegmented(b.tun);
    expect(got.map((p) => p.readUInt32BE(24))).toEqual(sent.map((p) => p.readUInt32BE(24)));
    expect(got.map((p) => p.subarray(40).toString('hex'))).toEqual(sent.map((p) => p.subarray(40).toString('hex')));
    for (const p of got) {
      expect(p[8]).toBe(62); // 64, less one at each forwarder (A's outbound, B's inbound)
      expect(ipChecksumValid(p)).toBe(true);
      expect(p.readUInt16BE(36)).toBe(referenceTcpChecksum(p));
    }
    expect(b.fwd.counters.traffic.packetsIn).toBe(20);
    expect(b.fwd.counters.drops['tun-write-failed']).toBe(0);
    const supers = b.tun.segmentSizes.filter((size) => size > 0).length;
    expect(b.fwd.counters.superPackets).toBe(supers);
    expect(b.fwd.counters.coalescedSegments).toBe(20 - (b.tun.written.length - supers)); // every segment not written alone
  });

  it('writes anything but TCP at once, inside the datagram delivery, even with a TCP segment held', async () => {
    const { b } = pair('gro');
    const tcp = tcpSegment({ src: '10.244.1.5', dst: '10.244.2.7', seq: 1, payload: Buffer.from('held') });
    const icmp = makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.2.7', protocol: 1, payload: Buffer.from([8, 0, 0, 0, 0, 1, 0, 1]) });
    b.transport.receive(tcp, '198.18.0.11');
    expect(b.tun.written).toHaveLength(0); // held for the end of the turn
    b.transport.receive(icmp, '198.18.0.11');
    expect(b.tun.written.map((p) => p[9])).toEqual([1]); // before any setImmediate ran
    await settle(1);
    expect(b.tun.written.map((p) => p[9])).toEqual([1, 6]);
    expect(b.tun.segmentSizes).toEqual([0, 0]); // a lone segment goes as it is
  });

  it("with offload 'off' merges nothing: one write per segment, as before", async () => {
    const { a, b } = pair('off');
    const sent = stream(20);
    a.tun.emit(sent);
    await settle();
    expect(b.tun.batches).toEqual(sent.map(() => 1));
    expect(b.tun.segmentSizes).toEqual(sent.map(() => 0));
    expect(b.tun.written.map((p) => p.readUInt32BE(24))).toEqual(sent.map((p) => p.readUInt32BE(24)));
  });

  it('counts a super-packet the full TUN refuses as one tun-write-failed drop, then carries on', async () => {
    const { a, b } = pair('gro');
    b.tun.acceptNext = 0;
    a.tun.emit(stream(20));
    await settle();
    expect(b.tun.written).toHaveLength(0);
    expect(b.tun.batches).toEqual([1]); // the 20 segments went as one super-packet
    expect(b.fwd.counters.drops['tun-write-failed']).toBe(1);
    a.tun.emit(stream(20, 1000 + 20 * 1400));
    await settle();
    expect(resegmented(b.tun)).toHaveLength(20);
    expect(b.fwd.counters.drops['tun-write-failed']).toBe(1);
  });

  it('TunnelCounters.coalesced counts super-packets and the segments inside them', () => {
    const c = new TunnelCounters();
    c.coalesced(20);
    c.coalesced(3);
    expect([c.superPackets, c.coalescedSegments]).toEqual([2, 23]);
  });
});
