import { TWILL_ROUTE_PROTO, type BatchFailure, type KernelEvent, type KernelRoute, type RouteChange } from '../../kernel/index.js';
import type { Logger } from '../../log.js';
import { errorCode } from '../../errors.js';
import { formatCidr } from '../../lib/ipv4.js';
import { KeptFeed } from '../../lib/kept-feed.js';
import { ReconcileLoop } from '../../lib/reconcile-loop.js';
import type { Lease, LeaseEvent } from '../../subnet/types.js';
import type { PeerState, BackendStatus } from '../../status/types.js';
import type { Backend, BackendContext } from '../backend.js';
import { judgeKernelEvent } from './kernel-events.js';
import { L2Cache } from '../shared/l2-cache.js';
import { PeerStatusTable } from './peer-status.js';
import { asPeer, HOST_GW_TYPE, planRoutes, planSubnets, validPublicIP, type DesiredRoute, type Peer, type Self } from './route-plan.js';
import { logRouteChanges } from './route-log.js';

/** How often the kernel is re-read and repaired, so that a route deleted by hand comes back. */
export const DEFAULT_RESYNC_MS = 5_000; // half the 10 s promise, so a route deleted by hand is back well within it
/** The same while route events are watched (`ip monitor`): drift is repaired as it happens, this is a safety net. */
export const DEFAULT_WATCHED_RESYNC_MS = 300_000;
/** How long an L2 verdict is trusted when the node's own routes do not change. */
export const DEFAULT_L2_MAX_AGE_MS = 60_000;
/** The same while route events are watched: a change to the node's routes or device re-judges at once. */
export const WATCHED_L2_MAX_AGE_MS = 600_000;

export interface HostGwOptions {
  readonly resyncMs?: number;
  readonly watchedResyncMs?: number;
  readonly l2MaxAgeMs?: number;
  /** Clock for `since` in status() (tests). */
  readonly now?: () => Date;
}

export function createHostGwBackend(ctx: BackendContext, opts: HostGwOptions = {}): Backend {
  return new HostGwBackend(ctx, opts);
}

/**
 * Keeps one route per host-gw peer: `<subnet> via <PublicIP> dev <iface> proto 116`.
 * A peer batch is planned incrementally: only its subnets are examined, against the routes we
 * know we have, with cached L2 verdicts. A full pass lists table main once and repairs any drift:
 * when the kernel's route events show drift, and every `resyncMs` (every `watchedResyncMs` while
 * those events are watched). Nothing is reconciled before the first applyPeerChanges (the agent's
 * initial snapshot): reconciling an empty peer set after a restart would flush every route.
 */
class HostGwBackend implements Backend {
  private readonly log: Logger;
  private readonly self: Self;
  private readonly leases = new Map<string, Lease>();
  private readonly peers: PeerStatusTable;
  private readonly loop: ReconcileLoop;
  private readonly l2: L2Cache;
  /** Subnets changed since the last pass. */
  private readonly dirty = new Set<string>();
  /** Our routes as the kernel has them, after the last listing and the changes since; null = unknown. */
  private model: Map<string, KernelRoute> | null = null;
  /** Changes handed to the kernel whose reply has not come back. */
  private readonly inFlight = new Map<string, RouteChange>();
  /** The kernel's route events; null where they cannot be watched (then only the timer finds drift). */
  private readonly events: KeptFeed<KernelEvent> | null;
  private fullDue = true;
  /** Stale routes whose delete failed, with the reason last logged (so it is logged once). */
  private readonly failingDeletes = new Map<string, string>();
  private lastFailure: string | null = null;
  /** A pass threw or a route change failed: retry every resyncMs, even while events are watched, until a full pass is clean. */
  private retrying = false;
  private changesFailed = false;
  private lastFeedFailure: string | null = null;
  private synced = false;
  private stopped = false;

  constructor(
    private readonly ctx: BackendContext,
    opts: HostGwOptions,
  ) {
    this.log = ctx.logger.child({ component: 'host-gw' });
    this.self = { subnet: formatCidr(ctx.ownLease.subnet), publicIP: ctx.ownLease.attrs.publicIP };
    this.peers = new PeerStatusTable(opts.now ?? (() => new Date()));
    const l2MaxAgeMs = opts.l2MaxAgeMs ?? DEFAULT_L2_MAX_AGE_MS;
    this.l2 = new L2Cache(ctx.iface.name, () => (this.events?.trusted ? Math.max(l2MaxAgeMs, WATCHED_L2_MAX_AGE_MS) : l2MaxAgeMs));
    const resyncMs = opts.resyncMs ?? DEFAULT_RESYNC_MS;
    const watchedMs = opts.watchedResyncMs ?? DEFAULT_WATCHED_RESYNC_MS;
    this.events = this.watchKernel();
    this.loop = new ReconcileLoop(() => this.pass(), () => (this.events?.trusted && !this.retrying ? watchedMs : resyncMs), () => (this.fullDue = true));
    this.log.info({ iface: ctx.iface.name, resyncMs, watchedResyncMs: this.events ? watchedMs : null }, 'host-gw backend created');
  }

  async start(): Promise<void> {
    if (this.loop.started || this.stopped) return;
    this.loop.start();
    this.events?.start();
  }

  async applyPeerChanges(events: readonly LeaseEvent[]): Promise<void> {
    if (this.stopped) return;
    for (const ev of events) {
      const key = formatCidr(ev.lease.subnet);
      if (ev.type === 'added') this.leases.set(key, ev.lease);
      else this.leases.delete(key);
      this.dirty.add(key);
      const peer = ev.type === 'added' ? asPeer(ev.lease, this.self) : null;
      if (peer && this.peers.get(peer.subnet)?.publicIP !== peer.publicIP) this.peers.set(peer, 'pending');
    }
    this.synced = true;
    await this.loop.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.events?.stop();
    await this.loop.stop();
  }

  status(): BackendStatus {
    const { iface } = this.ctx;
    return { type: HOST_GW_TYPE, mtu: iface.mtu, device: null, routes: this.peers.count('programmed'), peers: this.peers.list() };
  }

  private watchKernel(): KeptFeed<KernelEvent> | null {
    const start = this.ctx.kernel.routes.events;
    if (!start) return null;
    return new KeptFeed({
      start,
      event: (e) => this.kernelEvent(e),
      gap: (reason) => this.fullPassSoon(reason),
      failed: (err) => this.feedFailed(err),
    });
  }

  private feedFailed(err: Error): void {
    const code = errorCode(err);
    if (code === this.lastFeedFailure) return;
    this.lastFeedFailure = code;
    this.log.warn({ err, code }, 'route events not watched; re-reading the kernel every resync until they are');
  }

  private kernelEvent(e: KernelEvent): void {
    if (this.model === null || this.fullDue) return; // a full pass is coming anyway
    if (judgeKernelEvent(e, { model: this.model, inFlight: this.inFlight, dev: this.ctx.iface.name, proto: TWILL_ROUTE_PROTO }) !== 'drift') return;
    this.log.debug({ event: e }, 'kernel changed under us; full pass');
    this.fullPassSoon('drift');
  }

  private fullPassSoon(why: string): void {
    this.fullDue = true;
    this.loop.reschedule();
    if (why !== 'drift') this.log.debug({ why }, 'full pass');
    void this.loop.run();
  }

  /** Never throws: a failure is logged once per kind, nothing is deleted because of it, and a full pass follows. */
  private async pass(): Promise<void> {
    if (!this.synced || this.stopped) return;
    const t0 = performance.now();
    const wasRetrying = this.retrying;
    try {
      this.changesFailed = false;
      const full = this.fullDue || this.model === null;
      if (full) await this.fullPass();
      else await this.incrementalPass();
      if (this.lastFailure !== null) this.log.info('reconcile works again');
      this.lastFailure = null;
      this.retrying = this.changesFailed || (this.retrying && !full);
    } catch (err) {
      this.fullDue = true;
      this.retrying = true;
      const code = errorCode(err);
      if (code !== this.lastFailure) this.log.warn({ err, code }, 'reconcile failed; retrying on the next tick');
      this.lastFailure = code;
    }
    if (this.retrying !== wasRetrying) this.loop.reschedule();
    this.ctx.observer?.reconcileDuration((performance.now() - t0) / 1000);
  }

  /** One listing of table main: our routes (drift), and everyone else's (have L2 verdicts gone stale?). */
  private async fullPass(): Promise<void> {
    this.fullDue = false;
    this.dirty.clear();
    const main = await this.ctx.kernel.routes.listMain();
    const have = new Map<string, KernelRoute>();
    for (const r of main) if (r.proto === TWILL_ROUTE_PROTO && !have.has(r.dst)) have.set(r.dst, r);
    const peers = new Map<string, Peer>();
    for (const lease of this.leases.values()) {
      const peer = asPeer(lease, this.self);
      if (peer) peers.set(peer.subnet, peer);
    }
    this.peers.retain(new Set(peers.keys()));
    await this.judge(peers.values(), this.l2.stale(main, TWILL_ROUTE_PROTO));
    this.l2.retain(new Set([...peers.values()].map((p) => p.publicIP)));
    const want = this.desired(peers.values());
    this.model = have;
    await this.apply(planRoutes([...want.values()], [...have.values()], TWILL_ROUTE_PROTO), want);
  }

  /** Only the subnets that changed, against the routes we know we have. */
  private async incrementalPass(): Promise<void> {
    const dsts = [...this.dirty];
    this.dirty.clear();
    const peers: Peer[] = [];
    for (const dst of dsts) {
      const lease = this.leases.get(dst);
      const peer = lease && asPeer(lease, this.self);
      if (peer) peers.push(peer);
      else this.peers.delete(dst);
    }
    await this.judge(peers, false);
    const want = this.desired(peers);
    await this.apply(planSubnets(dsts, want, this.model!, TWILL_ROUTE_PROTO), want);
  }

  /** L2 verdicts for these peers: all looked up again when `all`, else only the ones not cached (one process). */
  private async judge(peers: Iterable<Peer>, all: boolean): Promise<void> {
    const ips: string[] = [];
    for (const p of peers) {
      if (validPublicIP(p)) ips.push(p.publicIP);
      else this.transition(p, 'error', `invalid PublicIP "${p.publicIP}"`);
    }
    const lookup = all ? [...new Set(ips)] : this.l2.missing(ips);
    if (lookup.length === 0 && !all) return;
    this.l2.store(await this.ctx.kernel.routes.getMany(lookup), all);
  }

  /** The routes on-link peers get; the others are marked, not routed. */
  private desired(peers: Iterable<Peer>): Map<string, DesiredRoute> {
    const want = new Map<string, DesiredRoute>();
    for (const p of peers) {
      const verdict = validPublicIP(p) ? this.l2.get(p.publicIP) : undefined;
      if (!verdict) continue;
      if (!verdict.onLink) this.transition(p, 'unreachable-on-l2', verdict.reason);
      else want.set(p.subnet, { dst: p.subnet, gateway: p.publicIP, dev: this.ctx.iface.name });
    }
    return want;
  }

  private async apply(changes: readonly RouteChange[], want: ReadonlyMap<string, DesiredRoute>): Promise<void> {
    const model = this.model!;
    const before = new Map([...changes].map((c) => [c.dst, model.get(c.dst)]));
    for (const c of changes) this.inFlight.set(c.dst, c);
    const { failed } = changes.length === 0 ? { failed: [] } : await this.ctx.kernel.routes.apply(changes).finally(() => this.inFlight.clear());
    const failedByDst = new Map(failed.map((f) => [f.change.dst, f]));
    if (failed.length > 0) [this.changesFailed, this.fullDue] = [true, true];
    for (const c of changes) {
      if (failedByDst.has(c.dst)) continue;
      if (c.op === 'delete') model.delete(c.dst);
      else model.set(c.dst, { dst: c.dst, gateway: c.gateway, dev: c.dev, proto: c.proto });
    }
    this.record(changes, before, failedByDst, want);
  }

  private record(changes: readonly RouteChange[], before: ReadonlyMap<string, KernelRoute | undefined>, failedByDst: ReadonlyMap<string, BatchFailure>, want: ReadonlyMap<string, DesiredRoute>): void {
    for (const c of changes) {
      const failure = failedByDst.get(c.dst);
      const op = c.op === 'delete' ? 'delete' : before.get(c.dst) ? 'replace' : 'add';
      this.ctx.observer?.routeChange(op, failure ? 'error' : 'ok');
      if (c.op === 'delete' && failure) this.deleteFailed(c.dst, failure);
      else if (c.op === 'delete') this.failingDeletes.delete(c.dst);
    }
    logRouteChanges(this.log, changes, before, failedByDst);
    for (const [dst, d] of want) {
      const failure = failedByDst.get(dst);
      const peer = { subnet: dst, publicIP: d.gateway };
      if (failure) this.transition(peer, 'error', `${failure.line || 'route'}: ${failure.reason}`);
      else this.transition(peer, 'programmed');
    }
  }

  private deleteFailed(dst: string, failure: BatchFailure): void {
    if (this.failingDeletes.get(dst) === failure.reason) return;
    this.failingDeletes.set(dst, failure.reason);
    this.log.warn({ subnet: dst, line: failure.line, reason: failure.reason }, 'stale route not removed');
  }

  /** Records a peer's state and logs only when it changes (no log spam on every tick). */
  private transition(peer: Peer, state: PeerState, reason?: string): void {
    const { changed, previous } = this.peers.set(peer, state, reason);
    if (!changed) return;
    const fields = { subnet: peer.subnet, publicIP: peer.publicIP, ...(reason === undefined ? {} : { reason }) };
    if (state === 'unreachable-on-l2') this.log.warn(fields, 'peer unreachable on L2');
    else if (state === 'error') this.log.warn(fields, 'peer route failed');
    else if (previous === 'unreachable-on-l2') this.log.info(fields, 'peer reachable on L2 again');
  }
}
