/**
 * The udp data path: TUN batches out to UDP datagrams, UDP datagrams in to TUN batches,
 * through the pure Forwarder. It talks to a TunDevice and a UdpTransport only (style rule 9),
 * so two of them can run in one process over in-memory fakes. Control reaches it through
 * setPeer, deletePeer and stop; each takes effect before the next packet is handled.
 *
 * Hot path: handlers are bound once; per packet there is no closure, no log line, no
 * try/catch; accepted datagrams are collected and written to the TUN once per event-loop turn.
 */
import type { TunDevice } from '../../kernel/tun-types.js';
import type { Ipv4Net } from '../../subnet/ipv4.js';
import type { Forwarder, IcmpReason, UdpPeer } from './forward.js';
import type { UdpTransport } from './transport.js';

/** Packets per TUN write at most; a full batch is written at once instead of waiting for the turn to end. */
export const MAX_TUN_BATCH = 64;

export interface DataPathOptions {
  readonly forwarder: Forwarder;
  readonly tun: TunDevice;
  readonly transport: UdpTransport;
  /** The peers' UDP port (Backend.Port: every node listens on the same one). */
  readonly peerPort: number;
  /** Called for a failed send and for socket errors, so that the backend can log (not per packet). */
  readonly onError?: (err: Error, where: 'send' | 'socket') => void;
  /** Runs the TUN flush after the current I/O callbacks (default setImmediate). */
  readonly defer?: (fn: () => void) => void;
}

export class UdpDataPath {
  private readonly fwd: Forwarder;
  private readonly tun: TunDevice;
  private readonly transport: UdpTransport;
  private readonly peerPort: number;
  private readonly defer: (fn: () => void) => void;
  private readonly onError: (err: Error, where: 'send' | 'socket') => void;
  /** Packets waiting for the TUN; reused across flushes (write() does not keep the array). */
  private readonly pending: Buffer[] = [];
  private flushQueued = false;
  private stopped = false;

  constructor(opts: DataPathOptions) {
    this.fwd = opts.forwarder;
    this.tun = opts.tun;
    this.transport = opts.transport;
    this.peerPort = opts.peerPort;
    this.defer = opts.defer ?? setImmediate;
    this.onError = opts.onError ?? (() => undefined);
  }

  start(): void {
    this.tun.start(this.fromTun);
    this.transport.start({ onDatagram: this.fromUdp, onSendError: this.sendFailed, onSocketError: this.socketFailed });
  }

  setPeer(subnet: Ipv4Net, publicIP: string): UdpPeer | null {
    return this.fwd.setPeer(subnet, publicIP);
  }

  deletePeer(subnet: Ipv4Net): boolean {
    return this.fwd.deletePeer(subnet);
  }

  /** Closes the TUN first (no more reads), then the socket; packets still queued are dropped. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.pending.length = 0;
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
    if (verdict === null) this.queue(msg);
    else if (verdict === 'ttl-expired') this.reply(msg, verdict);
  };

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
    if (icmp !== null) this.queue(icmp);
  }

  private queue(pkt: Buffer): void {
    this.pending.push(pkt);
    if (this.pending.length >= MAX_TUN_BATCH) this.flush();
    else if (!this.flushQueued) {
      this.flushQueued = true;
      this.defer(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    const batch = this.pending;
    if (batch.length === 0 || this.stopped) return;
    let written = 0;
    try {
      written = this.tun.write(batch);
    } catch {
      written = 0; // the device is gone; the packets are counted below
    }
    for (let i = written; i < batch.length; i++) this.fwd.counters.drop('tun-write-failed');
    batch.length = 0;
  };
}
