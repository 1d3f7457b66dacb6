import { errorCode } from '../../errors.js';
import { KERNEL_VXLAN_PORT, TWILL_ROUTE_PROTO, type KernelEvent, type VxlanSpec } from '../../kernel/index.js';
import { formatCidr } from '../../lib/ipv4.js';
import { KeptFeed } from '../../lib/kept-feed.js';
import { ReconcileLoop } from '../../lib/reconcile-loop.js';
import type { Logger } from '../../log.js';
import type { BackendStatus } from '../../status/types.js';
import type { Lease, LeaseEvent } from '../../subnet/types.js';
import type { Backend, BackendContext } from '../backend.js';
import { L2Cache } from '../shared/l2-cache.js';
import { applyPlan, type Applied } from './apply.js';
import { deviceSpec, ensureDevice } from './device.js';
import { callsForPass } from './kernel-events.js';
import type { VxlanOptions } from './options.js';
import { VxlanPeerTable } from './peer-status.js';
import { planVxlan, type VxlanPlan } from './plan.js';
import { RepairBook } from './repairs.js';
import type { VxlanDetails } from './status.js';
import { classifyLease, VXLAN_TYPE, type Self, type VxlanPeer } from './vtep.js';

/**
 * How often the device and its entries are read and repaired: a deleted one is back within this
 * (the promise is 10 s). Neighbours and FDB entries have no event in the route feed; a deleted
 * device or route does, and is put back at once while that feed runs.
 */
export const DEFAULT_VXLAN_RESYNC_MS = 5_000;
/** How long an L2 verdict (DirectRouting) is trusted while the node's own routes do not change. */
export const DEFAULT_VXLAN_L2_MAX_AGE_MS = 60_000;

export interface VxlanBackendOptions {
  readonly resyncMs?: number;
  readonly l2MaxAgeMs?: number;
  /** Clock for `since` in status() (tests). */
  readonly now?: () => Date;
}

export type VxlanBackendContext = BackendContext<VxlanOptions, unknown>;

export function createVxlanBackend(ctx: VxlanBackendContext, opts: VxlanBackendOptions = {}): Backend {
  return new VxlanBackend(ctx, opts);
}

/**
 * flannel's vxlan backend: one kernel VXLAN device, and per peer a permanent neighbour, a
 * permanent FDB entry and an onlink route (or, with DirectRouting and a peer on our L2 segment,
 * one route via its PublicIP). Every pass reads the device and its entries and plans from what
 * is there (plan.ts), so a peer batch and a timed repair are the same pass. Nothing is done
 * before the first applyPeerChanges (the full peer set): an empty set would flush every entry.
 */
class VxlanBackend implements Backend {
  private readonly log: Logger;
  private readonly self: Self;
  private readonly spec: VxlanSpec;
  private readonly leases = new Map<string, Lease>();
  private readonly peers: VxlanPeerTable;
  private readonly loop: ReconcileLoop;
  private readonly l2: L2Cache;
  /** Device and route events (`ip monitor`); null where they cannot be watched. */
  private readonly events: KeptFeed<KernelEvent> | null;
  private readonly book: RepairBook;
  /** Leases changed since the last pass: a pass without such changes that still changes the kernel repairs drift. */
  private leasesChanged = false;
  private readonly reportedForeign = new Set<string>();
  private lastFailure: string | null = null;
  private synced = false;
  private stopped = false;

  constructor(
    private readonly ctx: VxlanBackendContext,
    opts: VxlanBackendOptions,
  ) {
    this.log = ctx.logger.child({ component: 'vxlan' });
    this.self = { subnet: formatCidr(ctx.ownLease.subnet), publicIP: ctx.ownLease.attrs.publicIP };
    this.spec = deviceSpec(ctx);
    this.book = new RepairBook(this.log, this.spec.name);
    this.peers = new VxlanPeerTable(opts.now ?? (() => new Date()));
    const l2MaxAgeMs = opts.l2MaxAgeMs ?? DEFAULT_VXLAN_L2_MAX_AGE_MS;
    this.l2 = new L2Cache(ctx.iface.name, () => l2MaxAgeMs);
    this.loop = new ReconcileLoop(() => this.pass(), opts.resyncMs ?? DEFAULT_VXLAN_RESYNC_MS);
    this.events = this.watchKernel();
  }

  /** The device exists (and is configured) before start() returns, so subnet.env follows a working device. */
  async start(): Promise<void> {
    if (this.loop.started || this.stopped) return;
    this.book.deviceAction(await ensureDevice(this.ctx.kernel, this.spec));
    const { name, vni, mac, mtu, local, address } = this.spec;
    this.log.info({ device: name, vni, vtepMAC: mac, mtu, local, address, port: this.port, directRouting: this.ctx.options.directRouting }, 'vxlan backend started');
    this.loop.start();
    this.events?.start();
  }

  async applyPeerChanges(events: readonly LeaseEvent[]): Promise<void> {
    if (this.stopped) return;
    for (const ev of events) {
      const key = formatCidr(ev.lease.subnet);
      if (ev.type === 'added') this.leases.set(key, ev.lease);
      else this.leases.delete(key);
    }
    this.leasesChanged = true;
    this.synced = true;
    await this.loop.run();
  }

  /** Stops the timer; the device and its entries stay, so a restart is seamless. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.events?.stop();
    await this.loop.stop();
  }

  status(): BackendStatus {
    const programmed = this.peers.count((p) => p.state === 'programmed');
    return { type: VXLAN_TYPE, mtu: this.spec.mtu, device: this.spec.name, routes: programmed, peers: this.peers.list(), details: this.details() };
  }

  private watchKernel(): KeptFeed<KernelEvent> | null {
    const start = this.ctx.kernel.routes.events;
    if (!start) return null;
    const watched = { device: this.spec.name, iface: this.ctx.iface.name, proto: TWILL_ROUTE_PROTO, directRouting: this.ctx.options.directRouting };
    const soon = () => void this.loop.run();
    return new KeptFeed({ start, event: (e) => callsForPass(e, watched) && soon(), gap: soon });
  }

  private get port(): number {
    return this.spec.port === 0 ? KERNEL_VXLAN_PORT : this.spec.port;
  }

  private details(): VxlanDetails {
    const { vni, mac } = this.spec;
    const via = (v: string) => this.peers.count((p) => p.state === 'programmed' && p.via === v);
    return { vni, port: this.port, vtepMAC: mac, directRouting: this.ctx.options.directRouting, peersDirect: via('direct'), peersVxlan: via('vxlan'), repairs: this.book.repairs };
  }

  /** Never throws: a failure is logged once per kind and retried on the next tick; nothing is deleted because of it. */
  private async pass(): Promise<void> {
    if (!this.synced || this.stopped) return;
    const t0 = performance.now();
    try {
      await this.reconcile();
      if (this.lastFailure !== null) this.log.info('reconcile works again');
      this.lastFailure = null;
    } catch (err) {
      const code = errorCode(err);
      if (code !== this.lastFailure) this.log.warn({ err, code }, 'reconcile failed; retrying on the next tick');
      this.lastFailure = code;
      this.leasesChanged = true; // what the next pass changes may be this pass's work, not drift
    }
    this.ctx.observer?.reconcileDuration((performance.now() - t0) / 1000);
  }

  private async reconcile(): Promise<void> {
    // The leases as they are now: a batch arriving meanwhile is the next pass's (and not drift).
    const timed = !this.leasesChanged;
    this.leasesChanged = false;
    const peers = this.classify();
    const { kernel, iface, options } = this.ctx;
    const device = this.book.deviceAction(await ensureDevice(kernel, this.spec));
    const main = await kernel.routes.listMain();
    if (options.directRouting) await this.judge(peers, this.l2.stale(main, TWILL_ROUTE_PROTO));
    const [neighbours, fdb] = await Promise.all([kernel.neigh.listPermanent(this.spec.name), kernel.fdb.listPermanent(this.spec.name)]);
    const routes = main.filter((r) => r.proto === TWILL_ROUTE_PROTO);
    const plan = planVxlan({ peers, device: this.spec.name, iface: iface.name, directRouting: options.directRouting, verdict: (ip) => this.l2.get(ip), proto: TWILL_ROUTE_PROTO, kernel: { neighbours, fdb, routes } });
    if (timed && device === 'kept') this.book.drift(plan);
    const applied = await applyPlan(kernel, plan, peers, this.log, this.ctx.observer);
    for (const entry of applied.staleFailed) this.book.staleFailed(entry);
    this.record(peers, plan, applied);
  }

  /** The leases this backend programs; the others get their status (foreign types reported once). */
  private classify(): VxlanPeer[] {
    const peers: VxlanPeer[] = [];
    const live = new Set<string>();
    for (const [subnet, lease] of this.leases) {
      const v = classifyLease(lease, this.self);
      if (v.kind === 'self') continue;
      live.add(subnet);
      const ref = { subnet, publicIP: lease.attrs.publicIP, backendType: lease.attrs.backendType ?? null };
      if (v.kind === 'peer') peers.push(v.peer);
      else if (v.kind === 'invalid' && this.peers.set(ref, 'error', { reason: v.reason })) this.log.warn({ ...ref, reason: v.reason }, 'vxlan peer not programmed');
      else if (v.kind === 'foreign') this.foreign(ref);
    }
    for (const p of this.peers.list()) if (!live.has(p.subnet)) this.peers.delete(p.subnet);
    return peers;
  }

  private foreign(ref: { subnet: string; publicIP: string; backendType: string | null }): void {
    this.peers.set(ref, 'skipped', { reason: `BackendType ${ref.backendType ?? '(none: udp)'}, not vxlan` });
    const key = `${ref.subnet} ${ref.backendType}`;
    if (this.reportedForeign.has(key)) return;
    this.reportedForeign.add(key);
    this.log.warn(ref, 'peer of another backend type; skipped');
  }

  /** L2 verdicts (DirectRouting): all looked up again when `all`, else only the PublicIPs not judged yet (one process). */
  private async judge(peers: readonly VxlanPeer[], all: boolean): Promise<void> {
    const ips = peers.map((p) => p.publicIP);
    const lookup = all ? [...new Set(ips)] : this.l2.missing(ips);
    if (lookup.length > 0 || all) this.l2.store(await this.ctx.kernel.routes.getMany(lookup), all);
    this.l2.retain(new Set(ips));
  }

  private record(peers: readonly VxlanPeer[], plan: VxlanPlan, applied: Applied): void {
    for (const p of peers) {
      const ref = { subnet: p.subnet, publicIP: p.publicIP, backendType: VXLAN_TYPE };
      const reason = plan.conflicts.get(p.subnet) ?? applied.failed.get(p.subnet);
      const changed = reason === undefined ? this.peers.set(ref, 'programmed', { via: plan.via.get(p.subnet) ?? 'vxlan' }) : this.peers.set(ref, 'error', { reason });
      if (changed && reason !== undefined) this.log.warn({ ...ref, reason }, 'vxlan peer not programmed');
      else if (changed) this.log.debug({ ...ref, via: plan.via.get(p.subnet) }, 'vxlan peer programmed');
    }
  }
}
