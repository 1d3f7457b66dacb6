/**
 * In-memory stand-ins for the TUN device and the UDP network, with the same shapes as the
 * real ones (like wireguard-go's tuntest and bindtest). Unit tests and the benchmark run two
 * udp data paths in one process on these, without root.
 */
import { TwillError } from '../../src/errors.js';
import type { TunDevice, TunOffload } from '../../src/kernel/tun-types.js';
import { parseIp } from '../../src/lib/ipv4.js';
import { writeHeaderChecksum } from '../../src/backend/udp/checksum.js';
import type { OpenTransport, TransportHandlers, UdpTransport } from '../../src/backend/udp/transport.js';

export class FakeTun implements TunDevice {
  /** Packets the data path wrote (copies, so later changes cannot rewrite history). */
  readonly written: Buffer[] = [];
  /** The size of each write() batch. */
  readonly batches: number[] = [];
  /** The segment size of each packet in `written` (0: an ordinary packet). */
  readonly segmentSizes: number[] = [];
  closed = false;
  /** How many packets the next write() accepts (then unlimited again); simulates a full queue. */
  acceptNext: number | null = null;
  private onPackets: ((packets: readonly Buffer[]) => void) | null = null;

  constructor(
    readonly name = 'twill0',
    readonly offload: TunOffload = 'off',
  ) {}

  start(onPackets: (packets: readonly Buffer[]) => void): void {
    this.onPackets = onPackets;
  }

  write(packets: readonly Buffer[], segmentSizes?: Uint32Array): number {
    if (this.closed) return 0;
    this.batches.push(packets.length);
    const n = Math.min(packets.length, this.acceptNext ?? packets.length);
    this.acceptNext = null;
    for (let i = 0; i < n; i++) {
      this.written.push(Buffer.from(packets[i]!));
      this.segmentSizes.push(this.offload === 'gro' ? (segmentSizes?.[i] ?? 0) : 0);
    }
    return n;
  }

  close(): void {
    this.closed = true;
    this.onPackets = null;
  }

  /** Hands packets to the data path as if the kernel had routed them into the device. */
  emit(packets: readonly Buffer[]): void {
    this.onPackets?.(packets);
  }
}

interface Datagram {
  readonly to: string;
  readonly msg: Buffer;
  readonly from: string;
}

/** A UDP network of fake hosts: a datagram sent to `address:port` reaches the transport bound there. */
export class FakeUdpNetwork {
  private readonly bound = new Map<string, FakeTransport>();
  private queue: Datagram[] = [];
  private scheduled = false;
  /** Addresses whose outgoing datagrams fail to send (like EPERM from a firewall). */
  readonly failingSenders = new Set<string>();

  /** An opener for the transport of the host with address `hostAddress`. */
  opener(hostAddress: string): OpenTransport {
    return async (opts) => this.bind(hostAddress, opts.port);
  }

  bind(hostAddress: string, port: number): FakeTransport {
    const key = `${hostAddress}:${port}`;
    if (this.bound.has(key)) throw new TwillError('TWILL_ERR_UDP_PORT_IN_USE', `UDP port ${key} is already in use`, { details: { port } });
    const transport = new FakeTransport(this, hostAddress, port, () => this.bound.delete(key));
    this.bound.set(key, transport);
    return transport;
  }

  /** Queues a copy (the wire never shares memory); delivery is asynchronous, in one batch per turn. */
  send(from: string, to: string, msg: Buffer): void {
    this.queue.push({ from, to, msg: Buffer.from(msg) });
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.deliver);
  }

  private readonly deliver = (): void => {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    for (const d of batch) this.bound.get(d.to)?.receive(d.msg, d.from);
  };
}

export class FakeTransport implements UdpTransport {
  sent = 0;
  private handlers: TransportHandlers | null = null;

  constructor(
    private readonly net: FakeUdpNetwork,
    private readonly address: string,
    readonly port: number,
    private readonly unbind: () => void,
  ) {}

  start(handlers: TransportHandlers): void {
    this.handlers = handlers;
  }

  send(packet: Buffer, port: number, address: string): void {
    this.sent++;
    if (this.net.failingSenders.has(this.address)) {
      const handlers = this.handlers;
      setImmediate(() => handlers?.onSendError(Object.assign(new Error('send EPERM'), { code: 'EPERM' })));
      return;
    }
    this.net.send(this.address, `${address}:${port}`, packet);
  }

  receive(msg: Buffer, from: string): void {
    this.handlers?.onDatagram(msg, from);
  }

  close(): Promise<void> {
    this.handlers = null;
    this.unbind();
    return Promise.resolve();
  }
}

export interface PacketSpec {
  readonly src: string;
  readonly dst: string;
  readonly ttl?: number;
  readonly protocol?: number;
  readonly payload?: Buffer;
  /** IP options, a multiple of 4 bytes (at most 40). */
  readonly options?: Buffer;
  readonly fragmentOffset?: number;
}

/** A well-formed IPv4 packet with a valid header checksum (UDP-protocol by default). */
export function makeIpv4Packet(spec: PacketSpec): Buffer {
  const options = spec.options ?? Buffer.alloc(0);
  const payload = spec.payload ?? Buffer.from('twill-payload');
  const hl = 20 + options.length;
  const pkt = Buffer.alloc(hl + payload.length);
  pkt[0] = 0x40 | (hl >>> 2);
  pkt.writeUInt16BE(pkt.length, 2);
  pkt.writeUInt16BE(0x1234, 4);
  pkt.writeUInt16BE((spec.fragmentOffset ?? 0) & 0x1fff, 6);
  pkt[8] = spec.ttl ?? 64;
  pkt[9] = spec.protocol ?? 17;
  pkt.writeUInt32BE(parseIp(spec.src) ?? 0, 12);
  pkt.writeUInt32BE(parseIp(spec.dst) ?? 0, 16);
  options.copy(pkt, 20);
  payload.copy(pkt, hl);
  writeHeaderChecksum(pkt);
  return pkt;
}
