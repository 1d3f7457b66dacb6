import { isTwillError, TwillError } from '../../errors.js';
import { configureTun, type TunConfigOptions } from '../../kernel/tun-config.js';
import type { TunDevice, TunOffload } from '../../kernel/tun-types.js';
import type { Logger } from '../../log.js';
import { formatCidr, formatIp } from '../../lib/ipv4.js';
import type { Lease, LeaseEvent } from '../../subnet/types.js';
import type { BackendStatus } from '../../status/types.js';
import type { Backend, BackendContext } from '../backend.js';
import type { UdpFlags, UdpOptions } from './options.js';
import type { UdpDetails } from './status.js';
import { UdpDataPath } from './data-path.js';
import { openDgramTransport } from './dgram-transport.js';
import { Forwarder } from './forward.js';
import { classifyLease, TUN_TXQUEUELEN, tunAddress, UDP_OVERHEAD, UDP_TYPE, type Self } from './peers.js';
import { PeerBook } from './peer-book.js';
import { openKernelTun, type OpenTunFn } from './tun-open.js';
import type { OpenTransport, UdpTransport } from './transport.js';

export interface UdpBackendOptions {
  readonly openTun?: OpenTunFn;
  readonly openTransport?: OpenTransport;
  /** exec() and /proc writes for the device configuration (unit tests fake them). */
  readonly tunConfig?: Pick<TunConfigOptions, 'exec' | 'writeProc'>;
  /** The socket's bind address (default 0.0.0.0). */
  readonly bindAddress?: string;
  /** Clock for `since` in status() (tests). */
  readonly now?: () => Date;
}

export type UdpBackendContext = BackendContext<UdpOptions, UdpFlags>;

export function createUdpBackend(ctx: UdpBackendContext, opts: UdpBackendOptions = {}): Backend {
  return new UdpBackend(ctx, opts);
}

/**
 * flannel's udp backend: a TUN device whose packets travel as UDP payloads to the peer that
 * owns the destination subnet. The device and its route go away with stop(), as in flannel.
 */
class UdpBackend implements Backend {
  private readonly log: Logger;
  private readonly self: Self;
  private readonly forwarder: Forwarder;
  private readonly book: PeerBook;
  private readonly mtu: number;
  private dataPath: UdpDataPath | null = null;
  private device: string | null = null;
  private failure: string | undefined;
  /** Error codes already logged: a failing send is counted per packet but logged once. */
  private readonly logged = new Set<string>();
  private stopped = false;

  constructor(
    private readonly ctx: UdpBackendContext,
    private readonly opts: UdpBackendOptions,
  ) {
    this.log = ctx.logger.child({ component: 'udp' });
    this.self = { subnet: formatCidr(ctx.ownLease.subnet), publicIP: ctx.ownLease.attrs.publicIP };
    this.mtu = ctx.iface.mtu - UDP_OVERHEAD;
    this.forwarder = new Forwarder({ ownSubnet: ctx.ownLease.subnet, tunAddress: tunAddress(ctx.ownLease.subnet), mtu: this.mtu });
    this.book = new PeerBook(opts.now ?? (() => new Date()));
  }

  async start(): Promise<void> {
    if (this.dataPath || this.stopped) return;
    const tun = this.openDevice();
    let transport: UdpTransport;
    try {
      await this.configureDevice(tun.name);
      transport = await (this.opts.openTransport ?? openDgramTransport)({ port: this.port, address: this.opts.bindAddress });
    } catch (err) {
      tun.close();
      throw err;
    }
    if (this.stopped) {
      await closeBoth(tun, transport); // stop() came while the device was being set up
      return;
    }
    this.dataPath = new UdpDataPath({ forwarder: this.forwarder, tun, transport, peerPort: this.port, onError: (err, where) => this.logOnce(err, where) });
    for (const lease of this.book.pending()) this.program(lease);
    this.dataPath.start();
    this.device = tun.name;
    this.log.info({ device: tun.name, mtu: this.mtu, port: this.port, address: formatIp(tunAddress(this.ctx.ownLease.subnet)) }, 'udp backend started');
  }

  /** Peers take effect at once: the next packet already sees the change (no pause, no reload). */
  async applyPeerChanges(events: readonly LeaseEvent[]): Promise<void> {
    if (this.stopped) return;
    for (const ev of events) {
      const verdict = ev.type === 'added' ? classifyLease(ev.lease, this.self) : null;
      if (verdict?.kind === 'peer') this.program(ev.lease);
      else this.forget(ev.lease, verdict?.kind === 'invalid' ? verdict.reason : null);
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.dataPath?.stop();
    this.dataPath = null;
    this.log.info({ device: this.device }, 'udp backend stopped; the TUN device and its route are gone');
  }

  status(): BackendStatus {
    const traffic = new Map(this.forwarder.peers().map((p) => [p.subnetText, p.traffic.snapshot()]));
    const peers = this.book.list(traffic);
    return {
      type: UDP_TYPE,
      mtu: this.mtu,
      device: this.device,
      routes: peers.filter((p) => p.state === 'programmed').length,
      peers,
      details: this.details(),
    };
  }

  private details(): UdpDetails {
    const counters = this.forwarder.counters;
    const tunnel = { ...counters.traffic.snapshot(), port: this.port, icmpSent: counters.icmpSent, groSuperPackets: counters.superPackets, groSegments: counters.coalescedSegments };
    return { tunnel: { ...tunnel, ...(this.failure ? { error: this.failure } : {}) }, drops: counters.dropsSnapshot() };
  }

  /** Hands a peer to the data path (or records it as pending before start); its PublicIP is valid. */
  private program(lease: Lease): void {
    const subnet = formatCidr(lease.subnet);
    const publicIP = lease.attrs.publicIP;
    const prev = this.book.get(subnet);
    const state = this.dataPath ? 'programmed' : 'pending';
    if (prev?.state === state && prev.lease.attrs.publicIP === publicIP) return;
    this.dataPath?.setPeer(lease.subnet, publicIP);
    this.book.set(lease, state);
    if (!prev) this.log.info({ subnet, publicIP }, 'udp peer added');
    else if (prev.lease.attrs.publicIP !== publicIP) this.log.info({ subnet, publicIP, previousPublicIP: prev.lease.attrs.publicIP }, 'udp peer moved');
  }

  /** Removes a peer (lease gone or no longer a udp peer); an invalid lease stays listed as an error. */
  private forget(lease: Lease, invalid: string | null): void {
    const subnet = formatCidr(lease.subnet);
    this.dataPath?.deletePeer(lease.subnet);
    if (invalid !== null) {
      if (this.book.set(lease, 'error', invalid)) this.log.warn({ subnet, reason: invalid }, 'udp peer ignored');
      return;
    }
    if (this.book.delete(subnet)) this.log.info({ subnet, publicIP: lease.attrs.publicIP }, 'udp peer removed');
  }

  private get port(): number {
    return this.ctx.options.port;
  }

  /** With offload, a kernel that refuses virtio headers (EINVAL) gets the device without them. */
  private openDevice(): TunDevice {
    const offload = this.ctx.flags.tunOffload;
    try {
      return this.openWith(offload);
    } catch (err) {
      if (offload === 'off' || !isTwillError(err, 'TWILL_ERR_KERNEL_TUN') || err.details['errno'] !== 'EINVAL') throw err;
      this.log.warn({ err, device: this.ctx.flags.tunName }, 'the TUN device refused virtio headers (IFF_VNET_HDR): running with --tun-offload off');
      return this.openWith('off');
    }
  }

  private openWith(offload: TunOffload): TunDevice {
    const open = this.opts.openTun ?? openKernelTun;
    try {
      return open({ name: this.ctx.flags.tunName, netns: this.ctx.kernel.netns, offload, onError: (err) => this.deviceFailed(err) });
    } catch (err) {
      if (isTwillError(err)) throw err;
      throw new TwillError('TWILL_ERR_UDP_TUN', `cannot create TUN device ${this.ctx.flags.tunName}: ${(err as Error).message}`, { cause: err, details: { name: this.ctx.flags.tunName } });
    }
  }

  private async configureDevice(dev: string): Promise<void> {
    const { network, ownLease, kernel } = this.ctx;
    const config = { dev, address: formatIp(tunAddress(ownLease.subnet)), mtu: this.mtu, txqueuelen: TUN_TXQUEUELEN, network: formatCidr(network.network) };
    try {
      await configureTun(config, { ...this.opts.tunConfig, netns: kernel.netns });
    } catch (err) {
      throw new TwillError('TWILL_ERR_UDP_TUN', `cannot configure TUN device ${dev}: ${(err as Error).message}`, { cause: err, details: { ...config } });
    }
  }

  private deviceFailed(err: Error): void {
    this.failure = err.message;
    this.log.error({ err, device: this.device }, 'the udp data path stopped: the TUN device failed');
  }

  private logOnce(err: Error, where: 'send' | 'socket'): void {
    const key = `${where}:${(err as NodeJS.ErrnoException).code ?? err.message}`;
    if (this.logged.has(key)) return;
    this.logged.add(key);
    this.log.warn({ err, where }, where === 'send' ? 'udp send failed (counted as send-failed; logged once per error code)' : 'udp socket error');
  }
}

async function closeBoth(tun: TunDevice, transport: UdpTransport): Promise<void> {
  tun.close();
  await transport.close();
}
