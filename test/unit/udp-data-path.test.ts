import { afterEach, describe, expect, it } from 'vitest';
import { headerChecksumValid } from '../../src/backend/udp/checksum.js';
import { UdpDataPath } from '../../src/backend/udp/data-path.js';
import { FakeTun, FakeUdpNetwork, makeIpv4Packet } from '../../src/backend/udp/fakes.js';
import { Forwarder } from '../../src/backend/udp/forward.js';
import { parseIpv4Header } from '../../src/backend/udp/packet.js';
import { parseCidr, parseIp } from '../../src/subnet/ipv4.js';

const PORT = 8285;
const net = (s: string) => parseCidr(s)!;

interface Node {
  readonly tun: FakeTun;
  readonly fwd: Forwarder;
  readonly path: UdpDataPath;
  readonly errors: string[];
}

const running: UdpDataPath[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop()));
});

/** One node: its fake TUN, its transport on the shared fake network, its data path. */
function node(network: FakeUdpNetwork, subnet: string, publicIP: string): Node {
  const tun = new FakeTun();
  const own = net(subnet);
  const fwd = new Forwarder({ ownSubnet: own, tunAddress: own.addr, mtu: 1472 });
  const errors: string[] = [];
  const path = new UdpDataPath({ forwarder: fwd, tun, transport: network.bind(publicIP, PORT), peerPort: PORT, onError: (err, where) => errors.push(`${where}: ${err.message}`) });
  path.start();
  running.push(path);
  return { tun, fwd, path, errors };
}

/** Two nodes that know each other: A 10.244.1.0/24 at 198.18.0.11, B 10.244.2.0/24 at 198.18.0.12. */
function pair() {
  const network = new FakeUdpNetwork();
  const a = node(network, '10.244.1.0/24', '198.18.0.11');
  const b = node(network, '10.244.2.0/24', '198.18.0.12');
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
