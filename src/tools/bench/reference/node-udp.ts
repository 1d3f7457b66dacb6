/**
 * The floor for a forwarder in Node.js, not part of twill: flannel's udp proxy loop (the same
 * as native/reference/flannel_udp.c) written with node:dgram and twill's TUN addon, and nothing
 * more. No peer table, no acceptance checks, no ICMP, no offload, no counters. `twill bench
 * --cases node-udp` runs it in place of the agents, to show how much of the udp backend's cost
 * is Node.js itself and how much is twill.
 *
 *   node node-udp.js DEV PORT PEER_IP PEER_SUBNET/LEN
 *
 * It takes the leanest path Node offers at each step: TUN reads on the event loop's own poll
 * handle, and a connected socket sent to without a callback (no address lookup, no nextTick).
 * The device is created here; the bench gives it its address, MTU and route.
 */
import dgram from 'node:dgram';
import { dstI32 } from '../../../backend/udp/packet.js';
import { decrementTtl } from '../../../backend/udp/checksum.js';
import { DEFAULT_SOCKET_BUFFER } from '../../../backend/udp/dgram-transport.js';
import { openTun } from '../../../kernel/tun.js';
import { contains, parseCidr, parseIp, type Ipv4Net } from '../../../lib/ipv4.js';

const IPV4_HEADER = 20;

interface Args {
  readonly dev: string;
  readonly port: number;
  readonly peer: string;
  readonly route: Ipv4Net;
}

function parseArgs(argv: readonly string[]): Args | null {
  const [dev, port, peer, subnet] = argv;
  const route = parseCidr(subnet ?? '', false);
  if (argv.length !== 4 || !dev || !/^\d+$/.test(port ?? '') || !peer || parseIp(peer) === null || route === null) return null;
  return { dev, port: Number(port), peer, route };
}

/**
 * Binds to the port and connects to the peer's; rejects with the socket's error (port in use,
 * no route). bind() reports it as an 'error' event, connect() to its callback.
 */
async function bindAndConnect(socket: dgram.Socket, args: Args): Promise<void> {
  const step = (start: (done: (err?: Error | null) => void) => void): Promise<void> =>
    new Promise((resolve, reject) => {
      socket.once('error', reject);
      start((err) => {
        socket.off('error', reject);
        if (err) reject(err);
        else resolve();
      });
    });
  await step((done) => socket.bind({ port: args.port, exclusive: true }, done));
  socket.setRecvBufferSize(DEFAULT_SOCKET_BUFFER);
  socket.setSendBufferSize(DEFAULT_SOCKET_BUFFER);
  await step((done) => socket.connect(args.port, args.peer, done));
}

/** Runs until killed (the bench stops it with SIGTERM); its own entry point, so it sets exitCode rather than exiting. */
async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args === null) {
    process.stderr.write('usage: node-udp DEV PORT PEER_IP PEER_SUBNET/LEN\n');
    process.exitCode = 2;
    return;
  }
  const tun = openTun({ name: args.dev, readMode: 'poll', offload: 'off' });
  const socket = dgram.createSocket('udp4');
  try {
    await bindAndConnect(socket, args);
  } catch (err) {
    tun.close();
    socket.close();
    throw err;
  }
  socket.on('error', (err) => process.stderr.write(`node-udp: ${err.message}\n`)); // flannel's loop goes on too

  socket.on('message', (packet: Buffer) => {
    if (packet.length >= IPV4_HEADER && decrementTtl(packet)) tun.write([packet]);
  });
  tun.start((packets) => {
    for (const packet of packets) {
      if (packet.length >= IPV4_HEADER && contains(args.route, dstI32(packet) >>> 0) && decrementTtl(packet)) socket.send(packet);
    }
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`node-udp: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
