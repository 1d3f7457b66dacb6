import { TWILL_ROUTE_PROTO, type BatchFailure, type KernelRoute, type RouteChange } from '../../kernel/index.js';
import type { Logger } from '../../log.js';
import { formatCidr } from '../../lib/ipv4.js';
import type { Lease, LeaseEvent } from '../../subnet/types.js';
import type { PeerState, BackendStatus } from '../../status/types.js';
import type { Backend, BackendContext } from '../backend.js';
import { PeerStatusTable } from './peer-status.js';
import { HOST_GW_TYPE, hostGwPeers, l2Verdict, planRoutes, validPublicIP, type Peer, type Self } from './route-plan.js';
import { ReconcileLoop } from '../../lib/reconcile-loop.js';

/** How often the kernel is re-read and repaired, so that a route deleted by hand comes back. */
export const DEFAULT_RESYNC_MS = 5_000; // half the 10 s promise, so a route deleted by hand is back well within it

export interface HostGwOptions {
  readonly resyncMs?: number;
  /** Clock for `since` in status() (tests). */
  readonly now?: () => Date;
}

export function createHostGwBackend(ctx: BackendContext, opts: HostGwOptions = {}): Backend {
  return new HostGwBackend(ctx, opts);
}

/**
 * Keeps one route per host-gw peer: `<subnet> via <PublicIP> dev <iface> proto 116`.
 * Nothing is reconciled before the first applyPeerChanges (the agent's initial snapshot):
 * reconciling an empty peer set after a restart would flush every route.
 */
class HostGwBackend implements Backend {
  private readonly log: Logger;
  private readonly self: Self;
  private readonly leases = new Map<string, Lease>();
  private readonly peers: PeerStatusTable;
  private readonly loop: ReconcileLoop;
  /** Stale routes whose delete failed, with the reason last logged (so it is logged once). */
  private readonly failingDeletes = new Map<string, string>();
  private readonly resyncMs: number;
  private synced = false;
  private stopped = false;

  constructor(
    private readonly ctx: BackendContext,
    opts: HostGwOptions,
  ) {
    this.log = ctx.logger.child({ component: 'host-gw' });
    this.self = { subnet: formatCidr(ctx.ownLease.subnet), publicIP: ctx.ownLease.attrs.publicIP };
    this.peers = new PeerStatusTable(opts.now ?? (() => new Date()));
    this.resyncMs = opts.resyncMs ?? DEFAULT_RESYNC_MS;
    this.loop = new ReconcileLoop(() => this.reconcile(), this.resyncMs);
  }

  async start(): Promise<void> {
    if (this.loop.started || this.stopped) return;
    this.loop.start();
    this.log.info({ iface: this.ctx.iface.name, resyncMs: this.resyncMs }, 'host-gw backend started');
  }

  async applyPeerChanges(events: readonly LeaseEvent[]): Promise<void> {
    if (this.stopped) return;
    for (const ev of events) {
      const key = formatCidr(ev.lease.subnet);
      if (ev.type === 'added') this.leases.set(key, ev.lease);
      else this.leases.delete(key);
    }
    for (const peer of hostGwPeers(this.leases.values(), this.self)) {
      if (this.peers.get(peer.subnet)?.publicIP !== peer.publicIP) this.peers.set(peer, 'pending');
    }
    this.synced = true;
    await this.loop.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop.stop();
  }

  status(): BackendStatus {
    const { iface } = this.ctx;
    return { type: HOST_GW_TYPE, mtu: iface.mtu, device: null, routes: this.peers.count('programmed'), peers: this.peers.list() };
  }

  /** Never throws: a failure is logged, nothing is deleted because of it, and the next tick retries. */
  private async reconcile(): Promise<void> {
    if (!this.synced || this.stopped) return;
    const t0 = performance.now();
    try {
      await this.reconcileOnce();
    } catch (err) {
      this.log.warn({ err }, 'reconcile failed; retrying on the next tick');
    }
    this.ctx.observer?.reconcileDuration((performance.now() - t0) / 1000);
  }

  private async reconcileOnce(): Promise<void> {
    const { kernel, iface } = this.ctx;
    const peers = hostGwPeers(this.leases.values(), this.self);
    this.peers.retain(new Set(peers.map((p) => p.subnet)));
    const onLink = await this.checkL2(peers);
    const desired = onLink.map((p) => ({ dst: p.subnet, gateway: p.publicIP, dev: iface.name }));
    const actual = await kernel.routes.list(TWILL_ROUTE_PROTO);
    const changes = planRoutes(desired, actual, TWILL_ROUTE_PROTO);
    const { failed } = changes.length === 0 ? { failed: [] } : await kernel.routes.apply(changes);
    this.record(onLink, actual, changes, failed);
  }

  /** Returns the peers whose PublicIP is on our L2 segment; the others are marked, not routed. */
  private async checkL2(peers: readonly Peer[]): Promise<Peer[]> {
    const valid = peers.filter(validPublicIP);
    for (const p of peers) if (!validPublicIP(p)) this.transition(p, 'error', `invalid PublicIP "${p.publicIP}"`);
    if (valid.length === 0) return [];
    const lookups = await this.ctx.kernel.routes.getMany(valid.map((p) => p.publicIP));
    return valid.filter((p) => {
      const verdict = l2Verdict(lookups.get(p.publicIP), this.ctx.iface.name);
      if (!verdict.onLink) this.transition(p, 'unreachable-on-l2', verdict.reason);
      return verdict.onLink;
    });
  }

  private record(onLink: readonly Peer[], actual: readonly KernelRoute[], changes: readonly RouteChange[], failed: readonly BatchFailure[]): void {
    const failedByDst = new Map(failed.map((f) => [f.change.dst, f]));
    const before = new Map(actual.map((r) => [r.dst, r]));
    for (const change of changes) {
      const failure = failedByDst.get(change.dst);
      const op = change.op === 'delete' ? 'delete' : before.has(change.dst) ? 'replace' : 'add';
      this.ctx.observer?.routeChange(op, failure ? 'error' : 'ok');
      if (change.op === 'delete') this.recordDelete(change.dst, before.get(change.dst), failure);
      else if (!failure) this.logReplace(change, before.get(change.dst));
    }
    for (const dst of this.failingDeletes.keys()) if (!failedByDst.has(dst)) this.failingDeletes.delete(dst);
    for (const p of onLink) {
      const failure = failedByDst.get(p.subnet);
      if (failure) this.transition(p, 'error', `${failure.line || 'route'}: ${failure.reason}`);
      else this.transition(p, 'programmed');
    }
  }

  private logReplace(change: RouteChange & { op: 'replace' }, old: KernelRoute | undefined): void {
    const fields = { subnet: change.dst, via: change.gateway, dev: change.dev };
    if (old) this.log.info({ ...fields, previousVia: old.gateway ?? null }, 'route replaced');
    else this.log.info(fields, 'route added');
  }

  private recordDelete(dst: string, old: KernelRoute | undefined, failure: BatchFailure | undefined): void {
    if (!failure) {
      this.log.info({ subnet: dst, via: old?.gateway ?? null }, 'route removed');
      return;
    }
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
