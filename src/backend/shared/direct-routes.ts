import { errorCode } from '../../errors.js';
import { TWILL_ROUTE_PROTO, type Kernel } from '../../kernel/index.js';
import { ReconcileLoop } from '../../lib/reconcile-loop.js';
import type { Logger } from '../../log.js';
import type { BackendObserver } from '../../status/observer.js';
import { L2Cache } from './l2-cache.js';
import { planRoutes, type DesiredRoute } from './route-diff.js';

/** A peer that may be reached without the tunnel. */
export interface DirectPeer {
  readonly subnet: string;
  readonly publicIP: string;
}

export interface DirectRoutesOptions {
  readonly kernel: Kernel;
  /** The underlay interface: a peer is direct when its PublicIP is on-link through it. */
  readonly iface: string;
  readonly log: Logger;
  readonly observer?: BackendObserver;
  readonly resyncMs: number;
  readonly l2MaxAgeMs: number;
}

/**
 * DirectRouting for a tunnel that has its own device route (udp): each peer on our L2 segment
 * gets `<subnet> via <PublicIP> dev <iface>` (proto 116), more specific than the tunnel's route
 * to the Network, so its traffic bypasses the tunnel; every other proto-116 route through
 * `iface` goes (routes through other devices, the tunnel's among them, are left alone). The
 * kernel is re-read every `resyncMs`, so a route deleted by hand, or one the kernel dropped with
 * the underlay's address, comes back. Nothing is done before the first setPeers.
 */
export class DirectRoutes {
  private peers: readonly DirectPeer[] | null = null;
  private readonly l2: L2Cache;
  private readonly loop: ReconcileLoop;
  private direct = new Set<string>();
  private lastFailure: string | null = null;

  constructor(private readonly opts: DirectRoutesOptions) {
    this.l2 = new L2Cache(opts.iface, () => opts.l2MaxAgeMs);
    this.loop = new ReconcileLoop(() => this.pass(), opts.resyncMs);
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** The whole peer set now; resolves once a pass has applied it. */
  setPeers(peers: readonly DirectPeer[]): Promise<void> {
    this.peers = peers;
    return this.loop.run();
  }

  /** Whether this subnet is routed directly now. */
  isDirect(subnet: string): boolean {
    return this.direct.has(subnet);
  }

  private async pass(): Promise<void> {
    const peers = this.peers;
    if (peers === null) return;
    try {
      await this.reconcile(peers);
      if (this.lastFailure !== null) this.opts.log.info('direct routes work again');
      this.lastFailure = null;
    } catch (err) {
      const code = errorCode(err);
      if (code !== this.lastFailure) this.opts.log.warn({ err, code }, 'direct routes failed; retrying on the next tick');
      this.lastFailure = code;
    }
  }

  private async reconcile(peers: readonly DirectPeer[]): Promise<void> {
    const { kernel, iface, log, observer } = this.opts;
    const main = await kernel.routes.listMain();
    const ips = peers.map((p) => p.publicIP);
    const all = this.l2.stale(main, TWILL_ROUTE_PROTO);
    const lookup = all ? [...new Set(ips)] : this.l2.missing(ips);
    if (lookup.length > 0 || all) this.l2.store(await kernel.routes.getMany(lookup), all);
    this.l2.retain(new Set(ips));
    const want: DesiredRoute[] = peers.filter((p) => this.l2.get(p.publicIP)?.onLink === true).map((p) => ({ dst: p.subnet, gateway: p.publicIP, dev: iface }));
    // Only our routes through the underlay: the tunnel's own route (`<Network> dev twill0`, proto 116 too) is not ours to touch.
    const have = main.filter((r) => r.proto === TWILL_ROUTE_PROTO && r.dev === iface);
    const changes = planRoutes(want, have, TWILL_ROUTE_PROTO);
    const failed = changes.length === 0 ? [] : (await kernel.routes.apply(changes)).failed;
    const failedDst = new Set(failed.map((f) => f.change.dst));
    for (const c of changes) observer?.routeChange(c.op === 'delete' ? 'delete' : 'replace', failedDst.has(c.dst) ? 'error' : 'ok');
    this.direct = new Set(want.map((w) => w.dst).filter((dst) => !failedDst.has(dst)));
    if (changes.length > 0) log.info({ set: changes.filter((c) => c.op === 'replace').length, removed: changes.filter((c) => c.op === 'delete').length, failed: failed.length, direct: this.direct.size }, 'direct routes programmed');
  }
}
