/**
 * The udp data path: TUN batches out to UDP datagrams, UDP datagrams in to TUN batches,
 * through the pure Forwarder. It talks to a TunDevice and a UdpTransport only (style rule 9),
 * so two of them can run in one process over in-memory fakes. Control reaches it through
 * setPeer, deletePeer, detachTun/attachTun (a failed device swapped for a new one, the socket
 * and the peers kept) and stop; each takes effect before the next packet is handled.
 *
 * Hot path: handlers are bound once; per packet there is no closure, no log line, no
 * allocation. With a TUN offload of 'gro', accepted TCP segments are held for the rest of
 * the loop turn (all datagrams of one socket read burst) and merged per flow into
 * super-packets (offload/coalesce.ts), written in one batch from setImmediate. Anything
 * else, and everything without offload, is written at once from the socket's callback.
 */
import type { TunDevice } from '../../kernel/tun-types.js';
import type { Ipv4Net } from '../../lib/ipv4.js';
import type { TrafficSnapshot } from './counters.js';
import type { DataPlane, DataPlaneTotals } from './data-plane.js';
import type { Forwarder, IcmpReason } from './forward.js';
import { TcpCoalescer } from './offload/coalesce.js';
import type { UdpTransport } from './transport.js';


const IPPROTO_TCP = 6;

/** Stands in for the device between detachTun() and attachTun(): every write fails (counted). */
const NO_DEVICE: TunDevice = { name: '', offload: 'off', start: () => undefined, write: () => 0, close: () => undefined };

export interface DataPathOptions {
  readonly forwarder: Forwarder;
  readonly tun: TunDevice;
  readonly transport: UdpTransport;
  /** The peers' UDP port (Backend.Port: every node listens on the same one). */
  readonly peerPort: number;
  /** Called for a failed send and for socket errors, so that the backend can log (not per packet). */
  readonly onError?: (err: Error, where: 'send' | 'socket') => void;
}

export class UdpDataPath implements DataPlane {
  readonly datapath = 'dgram';
  private readonly fwd: Forwarder;
  private tun: TunDevice;
  private readonly transport: UdpTransport;
  private readonly peerPort: number;
  private readonly onError: (err: Error, where: 'send' | 'socket') => void;
  /** The one-packet batch handed to tun.write(), reused (write() does not keep the array). */
  private readonly one: Buffer[] = [Buffer.alloc(0)];
  /** Set when the device takes super-packets. */
  private coalescer: TcpCoalescer | null;
  private flushQueued = false;
  private stopped = false;

  constructor(opts: DataPathOptions) {
    this.fwd = opts.forwarder;
    this.tun = opts.tun;
    this.transport = opts.transport;
    this.peerPort = opts.peerPort;
    this.onError = opts.onError ?? (() => undefined);
    this.coalescer = opts.tun.offload === 'gro' ? new TcpCoalescer() : null;
  }

  start(): void {
    this.tun.start(this.fromTun);
    this.transport.start({ onDatagram: this.fromUdp, onSendError: this.sendFailed, onSocketError: this.socketFailed });
  }

  setPeer(subnet: Ipv4Net, publicIP: string): void {
    this.fwd.setPeer(subnet, publicIP);
  }

  deletePeer(subnet: Ipv4Net): void {
    this.fwd.deletePeer(subnet);
  }

  /** Nothing to do: setPeer and deletePeer take effect at once. */
  commit(): void {}

  peerTraffic(): Map<string, TrafficSnapshot> {
    return new Map(this.fwd.peers().map((p) => [p.subnetText, p.traffic.snapshot()]));
  }

  totals(): DataPlaneTotals {
    const c = this.fwd.counters;
    return { traffic: c.traffic.snapshot(), drops: c.dropsSnapshot(), icmpSent: c.icmpSent, icmpSuppressed: c.icmpSuppressed, groSuperPackets: c.superPackets, groSegments: c.coalescedSegments };
  }

  /**
   * The device failed: closes it. Until attachTun(), datagrams from peers still arrive and are
   * counted as tun-write-failed; the socket and the peer table are untouched.
   */
  detachTun(): void {
    const old = this.tun;
    this.tun = NO_DEVICE;
    old.close();
  }

  /** A new device (after detachTun): reading starts at once. After stop() it is closed instead. */
  attachTun(tun: TunDevice): void {
    if (this.stopped) return tun.close();
    this.detachTun();
    this.tun = tun;
    this.coalescer = tun.offload === 'gro' ? (this.coalescer ?? new TcpCoalescer()) : null;
    tun.start(this.fromTun);
  }

  /** Closes the TUN first (no more reads), then the socket; datagrams still in flight are dropped. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.tun.close();
    await this.transport.close();
  }

  private readonly fromTun = (packets: readonly Buffer[]): void => {
    if (this.stopped) return;
    const fwd = this.fwd;
    for (let i = 0; i < packets.length; i++) {
      const pkt = packets[i]!;
      const verdict = fwd.outbound(pkt);
      if (typeof verdict !== 'string') this.transport.send(pkt, this.peerPort, verdict.publicIP);
      else if (verdict === 'no-route' || verdict === 'ttl-expired') this.reply(pkt, verdict);
    }
  };

  private readonly fromUdp = (msg: Buffer, from: string): void => {
    if (this.stopped) return;
    const verdict = this.fwd.inbound(msg, from);
    if (verdict === null) this.deliver(msg);
    else if (verdict === 'ttl-expired') this.reply(msg, verdict);
  };

  /** An accepted packet towards the pods: TCP waits for the end of the turn to be merged. */
  private deliver(pkt: Buffer): void {
    const coalescer = this.coalescer;
    if (coalescer === null || pkt[9] !== IPPROTO_TCP) return this.toTun(pkt);
    coalescer.add(pkt);
    if (coalescer.full) this.flush();
    else if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    const coalescer = this.coalescer;
    if (coalescer === null || coalescer.size === 0) return;
    const { packets, segmentSizes, superPackets, mergedSegments } = coalescer.take();
    if (this.stopped) return;
    let written = 0;
    try {
      written = this.tun.write(packets, segmentSizes);
    } catch {
      written = 0; // the device is gone; counted below
    }
    // Counted per write: a refused super-packet is one drop, however many segments it held.
    if (written < packets.length) this.fwd.counters.drop('tun-write-failed', packets.length - written);
    else if (superPackets > 0) this.fwd.counters.coalesced(mergedSegments, superPackets);
  };

  private toTun(pkt: Buffer): void {
    const one = this.one;
    one[0] = pkt;
    let written = 0;
    try {
      written = this.tun.write(one);
    } catch {
      written = 0; // the device is gone; counted below
    }
    if (written === 0) this.fwd.counters.drop('tun-write-failed');
  }

  private readonly sendFailed = (err: Error): void => {
    this.fwd.counters.drop('send-failed');
    this.onError(err, 'send');
  };

  private readonly socketFailed = (err: Error): void => {
    this.onError(err, 'socket');
  };

  /** ICMP errors go back into the TUN: the kernel delivers them locally or routes them to a peer. */
  private reply(pkt: Buffer, reason: IcmpReason): void {
    const icmp = this.fwd.icmpFor(pkt, reason);
    if (icmp !== null) this.toTun(icmp);
  }
}
