import { afterEach, describe, expect, it } from 'vitest';
import { UdpDataPath } from '../../src/backend/udp/data-path.js';
import { openDgramTransport } from '../../src/backend/udp/dgram-transport.js';
import { FakeTun, makeIpv4Packet } from '../support/udp-fakes.js';
import { Forwarder } from '../../src/backend/udp/forward.js';
import type { UdpTransport } from '../../src/backend/udp/transport.js';
import { isTwillError } from '../../src/errors.js';
import { parseCidr } from '../../src/lib/ipv4.js';

const open: UdpTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

async function bind(address: string, port: number): Promise<UdpTransport> {
  const t = await openDgramTransport({ address, port });
  open.push(t);
  return t;
}

/** Two loopback addresses with the same free port: every node sends to the one Backend.Port. */
async function pairOnLoopback(): Promise<[UdpTransport, UdpTransport]> {
  const a = await bind('127.0.0.1', 0);
  return [a, await bind('127.0.0.2', a.port)];
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
};

describe('node:dgram transport', () => {
  it('sends a Buffer to address:port and reports the sender address', async () => {
    const [a, b] = await pairOnLoopback();
    const got: [string, string][] = [];
    b.start({ onDatagram: (msg, from) => got.push([msg.toString(), from]), onSendError: () => undefined, onSocketError: () => undefined });
    a.start({ onDatagram: () => undefined, onSendError: () => undefined, onSocketError: () => undefined });
    a.send(Buffer.from('hello'), b.port, '127.0.0.2');
    await until(() => got.length > 0);
    expect(got).toEqual([['hello', '127.0.0.1']]);
  });

  it('maps EADDRINUSE to TWILL_ERR_UDP_PORT_IN_USE and other bind failures to TWILL_ERR_UDP_SOCKET', async () => {
    const a = await bind('127.0.0.1', 0);
    const inUse = await openDgramTransport({ address: '127.0.0.1', port: a.port }).catch((e: unknown) => e);
    expect(isTwillError(inUse, 'TWILL_ERR_UDP_PORT_IN_USE')).toBe(true);
    expect(inUse).toMatchObject({ details: { port: a.port } });
    const notHere = await openDgramTransport({ address: '192.0.2.1', port: 0 }).catch((e: unknown) => e);
    expect(isTwillError(notHere, 'TWILL_ERR_UDP_SOCKET')).toBe(true);
  });

  it('reports a failed send through onSendError, once per datagram, without throwing', async () => {
    const a = await bind('127.0.0.1', 0);
    const errors: string[] = [];
    a.start({ onDatagram: () => undefined, onSendError: (e) => errors.push((e as NodeJS.ErrnoException).code ?? e.message), onSocketError: () => undefined });
    a.send(Buffer.alloc(70_000), a.port, '127.0.0.1'); // larger than any UDP datagram
    await until(() => errors.length > 0);
    expect(errors).toEqual(['EMSGSIZE']);
  });

  it('carries pod packets between two data paths over real sockets', async () => {
    const [ta, tb] = await pairOnLoopback();
    const mk = (own: string) => new Forwarder({ ownSubnet: parseCidr(own)!, tunAddress: parseCidr(own)!.addr, mtu: 1472 });
    const [fa, fb] = [mk('10.244.1.0/24'), mk('10.244.2.0/24')];
    const [tunA, tunB] = [new FakeTun(), new FakeTun()];
    const a = new UdpDataPath({ forwarder: fa, tun: tunA, transport: ta, peerPort: ta.port });
    const b = new UdpDataPath({ forwarder: fb, tun: tunB, transport: tb, peerPort: tb.port });
    a.setPeer(parseCidr('10.244.2.0/24')!, '127.0.0.2');
    b.setPeer(parseCidr('10.244.1.0/24')!, '127.0.0.1');
    a.start();
    b.start();
    tunA.emit(Array.from({ length: 50 }, () => makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.2.7', ttl: 10 })));
    await until(() => tunB.written.length === 50);
    expect(tunB.written.map((p) => p[8])).toEqual(Array(50).fill(8));
    expect(fb.counters.drops['unknown-peer']).toBe(0);
    await Promise.all([a.stop(), b.stop()]);
  });
});
