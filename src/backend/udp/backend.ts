import { isTwillError, TwillError } from '../../errors.js';
import { configureTun, type TunConfigOptions } from '../../kernel/tun-config.js';
import type { TunDevice, TunOffload } from '../../kernel/tun-types.js';
import type { Logger } from '../../log.js';
import { Backoff } from '../../lib/backoff.js';
import { formatCidr, formatIp } from '../../lib/ipv4.js';
import type { Lease, LeaseEvent } from '../../subnet/types.js';
import type { BackendStatus } from '../../status/types.js';
import type { Backend, BackendContext } from '../backend.js';
import { DirectRoutes } from '../shared/direct-routes.js';
import { TunRouteGuard } from './route-guard.js';
import type { UdpFlags, UdpOptions } from './options.js';
import type { TunnelStatus, UdpDetails } from './status.js';
import { UdpPump, type OpenPumpOptions } from '../../kernel/udp-pump.js';
import { UdpDataPath } from './data-path.js';
import type { DataPlane, DataPlaneTotals } from './data-plane.js';
import { DEFAULT_SOCKET_BUFFER, openDgramTransport } from './dgram-transport.js';
import { NativeDataPath } from './native-data-path.js';
import { Forwarder } from './forward.js';
import { classifyLease, TUN_TXQUEUELEN, tunAddress, UDP_OVERHEAD, UDP_TYPE, type Self } from './peers.js';
import { PeerBook } from './peer-book.js';
import { openKernelTun, type OpenTunFn } from './tun-open.js';
import type { OpenTransport } from './transport.js';
import { zeroDrops } from './counters.js';

export interface UdpBackendOptions {
  readonly openTun?: OpenTunFn;
  readonly openTransport?: OpenTransport;
  /** Opens the native pump's socket (tests hand in a fake to see how refused offloads are reported). */
  readonly openPump?: (opts: OpenPumpOptions) => UdpPump;
  /** exec() and /proc writes for the device configuration (unit tests fake them). */
  readonly tunConfig?: Pick<TunConfigOptions, 'exec' | 'writeProc'>;
  /** The socket's bind address (default 0.0.0.0). */
  readonly bindAddress?: string;
  /** Clock for `since` in status() and the outage's length (tests). */
  readonly now?: () => Date;
  /** Waits between attempts to recreate a failed device (tests shorten them). */
  readonly recovery?: { readonly initialMs: number; readonly maxMs: number };
  /** How often the Network's route through the device is checked (default ROUTE_CHECK_MS). */
  readonly routeCheckMs?: number;
}

/**
 * A failed device is recreated after 250 ms, then 0.5, 1, 2, 2, ... s (±25%): with the cause
 * gone, the tunnel is back within about 2.5 s. The addon reports a deleted device as a read
 * error (EBADFD) within about 50 ms, traffic or not, so no periodic check is needed.
 */
const RECOVERY = { initialMs: 250, maxMs: 2000 } as const;
/** The Network's route through the device is read this often while route events are not watched (while they are: at once, and every ROUTE_WATCHED_CHECK_MS). */
export const ROUTE_CHECK_MS = 5_000;
export const ROUTE_WATCHED_CHECK_MS = 300_000;
/** DirectRouting: how often the direct routes are re-read and repaired, and how long an L2 verdict is trusted. */
const DIRECT = { resyncMs: 5_000, l2MaxAgeMs: 60_000 } as const;

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
  /** DirectRouting's routes for peers on our L2 segment; null without it. */
  private readonly direct: DirectRoutes | null;
  private readonly routeGuard: TunRouteGuard;
  private readonly mtu: number;
  private dataPath: DataPlane | null = null;
  private device: string | null = null;
  /** Set while the data path has no working device (BackendStatus.problem). */
  private problem: string | undefined;
  /** What failed, for the problem's text while recreating the device fails. */
  private outage = '';
  /** Bumped at each open: a failure reported by an older device is ignored. */
  private generation = 0;
  private recovery: Promise<void> | null = null;
  /** A failure of the device being recreated, reported before it was attached. */
  private lateFailure: Error | null = null;
  private readonly backoff: Backoff;
  private deviceRecreated = 0;
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
    const recovery = opts.recovery ?? RECOVERY;
    this.backoff = new Backoff(recovery.initialMs, recovery.maxMs);
    this.direct = ctx.options.directRouting === true ? new DirectRoutes({ kernel: ctx.kernel, iface: ctx.iface.name, log: this.log, observer: ctx.observer, ...DIRECT }) : null;
    const device = () => (this.dataPath && !this.recovery ? this.device : null);
    const network = formatCidr(ctx.network.network);
    this.routeGuard = new TunRouteGuard({ kernel: ctx.kernel, network, device, configure: (dev) => this.configureDevice(dev), log: this.log, periodMs: opts.routeCheckMs ?? ROUTE_CHECK_MS, watchedPeriodMs: ROUTE_WATCHED_CHECK_MS });
  }

  async start(): Promise<void> {
    if (this.dataPath || this.stopped) return;
    this.lateFailure = null;
    const tun = this.openDevice();
    let plane: DataPlane;
    try {
      await this.configureDevice(tun.name);
      plane = await this.openPlane(tun);
    } catch (err) {
      tun.close();
      throw err;
    }
    if (this.stopped) {
      await plane.stop(); // stop() came while the device was being set up
      return;
    }
    const late = this.lateFailure as Error | null; // set by deviceFailed() meanwhile
    if (late) {
      await plane.stop();
      throw new TwillError('TWILL_ERR_UDP_TUN', `TUN device ${tun.name} failed while it was being set up: ${late.message}`, { cause: late, details: { name: tun.name } });
    }
    this.dataPath = plane;
    for (const lease of this.book.pending()) this.program(lease);
    plane.start();
    this.direct?.start();
    this.routeGuard.start();
    this.device = tun.name;
    const offloads = plane.totals().offloads;
    this.log.info({ device: tun.name, mtu: this.mtu, port: this.port, address: formatIp(tunAddress(this.ctx.ownLease.subnet)), datapath: plane.datapath, offloads }, 'udp backend started');
    this.warnRefusedOffloads(offloads);
  }

  /** The native pump on its own socket, or the Node.js reference on a node:dgram one; either owns the device from here. */
  private async openPlane(tun: TunDevice): Promise<DataPlane> {
    if (this.ctx.flags.datapath === 'native') {
      const { subnet } = this.ctx.ownLease;
      const pump = (this.opts.openPump ?? UdpPump.open)({ address: this.opts.bindAddress ?? '0.0.0.0', port: this.port, bufferBytes: DEFAULT_SOCKET_BUFFER, udpOffloads: true, ownSubnet: subnet, mtu: this.mtu, tunAddress: tunAddress(subnet) });
      return new NativeDataPath(pump, tun, (err) => this.deviceFailed(err));
    }
    const transport = await (this.opts.openTransport ?? openDgramTransport)({ port: this.port, address: this.opts.bindAddress });
    return new UdpDataPath({ forwarder: this.forwarder, tun, transport, peerPort: this.port, onError: (err, where) => this.logOnce(err, where) });
  }

  /** One warning per offload the kernel refused: the pump runs without it. */
  private warnRefusedOffloads(offloads: Readonly<Record<string, boolean>> | undefined): void {
    for (const [name, on] of Object.entries(offloads ?? {})) {
      if (!on && (!name.startsWith('tun') || this.ctx.flags.tunOffload === 'gro')) this.log.warn({ offload: name }, `the kernel refused ${name}: the udp pump runs without it`);
    }
  }

  /** Peers take effect at once: the next packet already sees the change (no pause, no reload). */
  async applyPeerChanges(events: readonly LeaseEvent[]): Promise<void> {
    if (this.stopped) return;
    for (const ev of events) {
      const verdict = ev.type === 'added' ? classifyLease(ev.lease, this.self) : null;
      if (verdict?.kind === 'peer') this.program(ev.lease);
      else this.forget(ev.lease, verdict?.kind === 'invalid' ? verdict.reason : null);
    }
    this.dataPath?.commit();
    await this.direct?.setPeers(this.book.peers()); // the tunnel carries them meanwhile
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.backoff.cancel();
    await this.recovery;
    await this.routeGuard.stop();
    await this.direct?.stop(); // its routes stay, as host-gw's do
    await this.dataPath?.stop();
    this.dataPath = null;
    this.log.info({ device: this.device }, 'udp backend stopped; the TUN device and its route are gone');
  }

  status(): BackendStatus {
    const traffic = this.dataPath?.peerTraffic() ?? new Map();
    const direct = this.direct;
    const peers = this.book.list(traffic, direct ? (subnet) => (direct.isDirect(subnet) ? 'direct' : UDP_TYPE) : undefined);
    return {
      type: UDP_TYPE,
      mtu: this.mtu,
      device: this.device,
      routes: peers.filter((p) => p.state === 'programmed').length,
      peers,
      details: this.details(),
      ...(this.problem === undefined ? {} : { problem: this.problem }),
    };
  }

  private details(): UdpDetails {
    const t = this.dataPath?.totals() ?? emptyTotals();
    const icmp = { icmpSent: t.icmpSent, icmpSuppressed: t.icmpSuppressed };
    const tunnel: TunnelStatus = { ...t.traffic, port: this.port, ...icmp, groSuperPackets: t.groSuperPackets, groSegments: t.groSegments, deviceRecreated: this.deviceRecreated, routeRepaired: this.routeGuard.repaired };
    const datapath = this.dataPath?.datapath ?? this.ctx.flags.datapath;
    return { tunnel, drops: t.drops, datapath, ...(t.offloads ? { offloads: t.offloads } : {}), ...(t.pump ? { pump: t.pump } : {}) };
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
    if (!prev) this.log.debug({ subnet, publicIP }, 'udp peer added');
    else if (prev.lease.attrs.publicIP !== publicIP) this.log.debug({ subnet, publicIP, previousPublicIP: prev.lease.attrs.publicIP }, 'udp peer moved');
  }

  /** Removes a peer (lease gone or no longer a udp peer); an invalid lease stays listed as an error. */
  private forget(lease: Lease, invalid: string | null): void {
    const subnet = formatCidr(lease.subnet);
    this.dataPath?.deletePeer(lease.subnet);
    if (invalid !== null) {
      if (this.book.set(lease, 'error', invalid)) this.log.warn({ subnet, reason: invalid }, 'udp peer ignored');
      return;
    }
    if (this.book.delete(subnet)) this.log.debug({ subnet, publicIP: lease.attrs.publicIP }, 'udp peer removed');
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
    const generation = ++this.generation;
    const onError = (err: Error): void => {
      if (generation === this.generation) this.deviceFailed(err);
    };
    try {
      return open({ name: this.ctx.flags.tunName, netns: this.ctx.kernel.netns, offload, tso: this.ctx.flags.datapath === 'native', onError });
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

  /** The device failed (deleted, read error): drop it, keep socket and peers, recreate it with backoff. */
  private deviceFailed(err: Error): void {
    if (this.stopped) return;
    if (this.recovery || !this.dataPath) {
      this.lateFailure = err; // a device failed while being set up: start() fails, recover() retries
      return;
    }
    const device = this.device ?? this.ctx.flags.tunName;
    const errno = isTwillError(err) ? err.details['errno'] : undefined;
    this.outage = `TUN device ${device} failed (${typeof errno === 'string' ? errno : err.message})`;
    this.problem = this.outage;
    this.log.error({ err, device }, 'the udp data path is down: the TUN device failed; recreating it with backoff');
    this.dataPath.detachTun();
    this.device = null;
    const recovery = this.recover(this.dataPath);
    this.recovery = recovery;
    void recovery.finally(() => {
      if (this.recovery === recovery) this.recovery = null;
    });
  }

  /** Retries until a new device is configured and attached, or until stop(). Never rejects. */
  private async recover(dataPath: DataPlane): Promise<void> {
    const since = this.now();
    this.backoff.reset();
    for (let attempt = 1; !this.stopped; attempt++) {
      await this.backoff.wait(); // stop() cancels it
      if (this.stopped) return;
      let tun: TunDevice;
      try {
        this.lateFailure = null;
        tun = this.openDevice();
      } catch (err) {
        this.retryLater(attempt, err);
        continue;
      }
      try {
        await this.configureDevice(tun.name);
        const late = this.lateFailure as Error | null; // set by deviceFailed() meanwhile
        if (late) throw late;
        if (this.stopped) return tun.close();
        dataPath.attachTun(tun);
      } catch (err) {
        tun.close();
        this.retryLater(attempt, err);
        continue;
      }
      this.recovery = null; // from here on, a failure of the new device starts a new outage
      this.device = tun.name;
      this.deviceRecreated++;
      this.problem = undefined;
      const downMs = this.now().getTime() - since.getTime();
      this.log.info({ device: tun.name, downMs, attempts: attempt }, 'the udp data path is back: TUN device recreated and configured');
      return;
    }
  }

  /** The problem says what failed, then how recreating the device goes. */
  private retryLater(attempt: number, err: unknown): void {
    const why = err instanceof Error ? err.message : String(err);
    this.problem = `${this.outage}; recreating it failed ${attempt} time(s), last: ${why}`;
    this.log.debug({ err, attempt }, 'recreating the TUN device failed; retrying');
  }

  private now(): Date {
    return this.opts.now?.() ?? new Date();
  }

  private logOnce(err: Error, where: 'send' | 'socket'): void {
    const key = `${where}:${(err as NodeJS.ErrnoException).code ?? err.message}`;
    if (this.logged.has(key)) return;
    this.logged.add(key);
    this.log.warn({ err, where }, where === 'send' ? 'udp send failed (counted as send-failed; logged once per error code)' : 'udp socket error');
  }
}

function emptyTotals(): DataPlaneTotals {
  return { traffic: { packetsIn: 0, bytesIn: 0, packetsOut: 0, bytesOut: 0 }, drops: zeroDrops(), icmpSent: 0, icmpSuppressed: 0, groSuperPackets: 0, groSegments: 0 };
}
