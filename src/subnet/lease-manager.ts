import { randomInt } from 'node:crypto';
import { errorCode, isTransient, isTwillError, TwillError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { chooseSubnet, subnetCapacity } from './allocate.js';
import { Backoff } from '../lib/backoff.js';
import { formatCidr, sameNet, type Ipv4Net } from '../lib/ipv4.js';
import type { LeaseRegistry } from './registry.js';
import type { Lease, LeaseAttrs, NetworkConfig } from './types.js';

export interface LeaseManagerOptions {
  readonly registry: LeaseRegistry;
  readonly logger: Logger;
  readonly config: NetworkConfig;
  readonly attrs: LeaseAttrs;
  readonly ttlSeconds: number;
  /** The subnet this node had before (from its subnet file), tried before a random pick. */
  readonly preferred: Ipv4Net | null;
  /** Called whenever the held lease is first acquired or replaced after a loss. */
  readonly onLease: (lease: Lease, previous: Lease | null) => void;
  readonly onLost?: (lease: Lease, reason: string) => void;
  readonly onRenewed?: (lease: Lease, ttlSeconds: number) => void;
  /**
   * A permanent error (isTransient false: etcd refused the password or a permission) while
   * renewing or re-acquiring after a loss: logged once with its code, and the manager stops (the
   * etcd lease runs out at its TTL). During acquire() such an error rejects acquire() instead.
   */
  readonly onFatal?: (err: unknown) => void;
  readonly random?: (n: number) => number;
  readonly retry?: { initialMs: number; maxMs: number };
  /**
   * The owner logs etcd outages itself, one line each (the agent's outage log): an unreachable
   * etcd (TWILL_ERR_ETCD_UNAVAILABLE) is logged at debug here, other failures as before.
   */
  readonly quietOutages?: boolean;
}

/**
 * The lease policy: choose and hold this node's subnet. It acquires (own PublicIP's lease first,
 * then the preferred subnet, then a random free one), renews the etcd lease before it expires,
 * and when the lease vanishes anyway, re-acquires, preferring the same subnet. It retries what
 * `isTransient` says retrying can fix, forever, and gives up on anything else.
 */
export class LeaseManager {
  private lease: Lease | null = null;
  private preferred: Ipv4Net | null;
  private stopped = false;
  private renewTimer: NodeJS.Timeout | null = null;
  private acquiring: Promise<Lease> | null = null;
  /** The code of the renewal failure last logged; null after a renewal succeeds. */
  private renewFailure: ErrorCode | null = null;
  private readonly backoff: Backoff;
  private readonly log: Logger;

  constructor(private readonly opts: LeaseManagerOptions) {
    this.preferred = opts.preferred;
    this.backoff = new Backoff(opts.retry?.initialMs ?? 1000, opts.retry?.maxMs ?? 30_000);
    this.log = opts.logger.child({ component: 'lease' });
  }

  current(): Lease | null {
    return this.lease;
  }

  /** Resolves once a lease is held; retries transient failures (etcd down, network full) forever. */
  acquire(): Promise<Lease> {
    this.acquiring ??= this.acquireLoop().finally(() => (this.acquiring = null));
    return this.acquiring;
  }

  /** The watch saw our key deleted, or a renewal found the etcd lease gone. */
  handleLost(reason: string): void {
    const lost = this.lease;
    if (!lost || this.stopped) return;
    this.lease = null;
    this.preferred = lost.subnet;
    this.clearRenewal();
    this.log.warn({ subnet: formatCidr(lost.subnet), reason }, 'lease lost; re-acquiring');
    this.opts.onLost?.(lost, reason);
    void this.opts.registry.revokeLease(lost.etcdLeaseId).catch(() => undefined); // don't leave a grant behind
    this.acquire().catch((err: unknown) => this.fail(err));
  }

  /** Does this etcd key deletion concern our lease? */
  isOwn(subnet: Ipv4Net): boolean {
    return this.lease !== null && sameNet(this.lease.subnet, subnet);
  }

  stop(): void {
    this.stopped = true;
    this.clearRenewal();
    this.backoff.cancel();
  }

  private async acquireLoop(): Promise<Lease> {
    let logged: ErrorCode | null = null;
    for (;;) {
      if (this.stopped) throw new TwillError('TWILL_ERR_LEASE_LOST', 'stopped before a lease was acquired');
      try {
        const lease = await this.tryAcquire();
        if (lease) return this.hold(lease);
        this.log.info('lost the race for a subnet to another node; retrying');
      } catch (err) {
        if (!isTransient(err)) {
          if (!this.stopped) this.log.error(failure(err), 'cannot acquire a lease: this error is not retried');
          throw err;
        }
        // One line per kind of failure (a full network, etcd down), not one per attempt.
        if (errorCode(err) !== logged) this.log[this.quiet(err) ? 'debug' : 'error'](failure(err), 'cannot acquire a lease yet; retrying');
        logged = errorCode(err);
        if (!this.stopped) await this.backoff.wait(); // stop() cancels a pending wait only, not a later one
      }
    }
  }

  /** One attempt; null when another node won a race (create or take-over) and we should retry. */
  private async tryAcquire(): Promise<Lease | null> {
    const { registry, config, attrs, ttlSeconds } = this.opts;
    const snap = await registry.listLeases();
    const random = this.opts.random ?? ((n: number) => randomInt(n));
    const choice = chooseSubnet({ config, leases: snap.leases, publicIP: attrs.publicIP, preferred: this.preferred, random });
    switch (choice.kind) {
      case 'existing':
        return registry.takeOverLease(choice.lease, attrs, ttlSeconds);
      case 'new':
        return registry.createLease(choice.subnet, attrs, ttlSeconds);
      case 'full':
        throw new TwillError('TWILL_ERR_LEASE_NETWORK_FULL', `no free subnet: ${subnetCapacity(config)} and all of them are leased`);
    }
  }

  private hold(lease: Lease): Lease {
    const previous = this.lease;
    this.lease = lease;
    this.preferred = lease.subnet;
    this.backoff.reset();
    const kind = lease.etcdLeaseId === '0' ? 'reservation' : 'lease';
    this.log.info({ subnet: formatCidr(lease.subnet), etcdLeaseId: lease.etcdLeaseId, kind, ttl: this.opts.ttlSeconds }, 'lease acquired');
    this.opts.onLease(lease, previous);
    this.scheduleRenewal(this.renewIntervalMs());
    return lease;
  }

  private renewIntervalMs(): number {
    // A third of the TTL, as etcd's own clients do, but at least every 10 min so that a lease
    // revoked behind our back is noticed in reasonable time.
    return Math.min(Math.max((this.opts.ttlSeconds * 1000) / 3, 1000), 10 * 60_000);
  }

  private scheduleRenewal(ms: number): void {
    this.clearRenewal();
    if (this.stopped || !this.lease || this.lease.etcdLeaseId === '0') return;
    this.renewTimer = setTimeout(() => void this.renew(), ms);
  }

  private async renew(): Promise<void> {
    const lease = this.lease;
    if (!lease || this.stopped) return;
    try {
      const ttl = await this.opts.registry.renewLease(lease);
      if (this.lease !== lease) return;
      this.renewFailure = null;
      this.log.info({ subnet: formatCidr(lease.subnet), ttl }, 'lease renewed');
      this.opts.onRenewed?.(lease, ttl);
      this.scheduleRenewal(this.renewIntervalMs());
    } catch (err) {
      if (this.lease !== lease || this.stopped) return;
      if (isTwillError(err, 'TWILL_ERR_LEASE_LOST')) return this.handleLost('etcd lease expired');
      if (!isTransient(err)) {
        this.log.error({ ...failure(err), subnet: formatCidr(lease.subnet) }, 'lease renewal failed: this error is not retried');
        return this.fail(err);
      }
      if (errorCode(err) !== this.renewFailure) this.log[this.quiet(err) ? 'debug' : 'warn'](failure(err), 'lease renewal failed; retrying');
      this.renewFailure = errorCode(err);
      this.scheduleRenewal(Math.min(this.renewIntervalMs(), 2000));
    }
  }

  /** An unreachable etcd, which the owner logs (quietOutages). */
  private quiet(err: unknown): boolean {
    return this.opts.quietOutages === true && errorCode(err) === 'TWILL_ERR_ETCD_UNAVAILABLE';
  }

  /** Gives up after a permanent error (already logged) and hands it to the owner. */
  private fail(err: unknown): void {
    if (this.stopped) return;
    this.stop();
    this.opts.onFatal?.(err);
  }

  private clearRenewal(): void {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.renewTimer = null;
  }
}

/** How a failure is logged here: its code (the line's `code` field, as everywhere), and code and message under err. */
function failure(err: unknown): { code: ErrorCode; err: { code: ErrorCode; message: string } } {
  const code = errorCode(err);
  return { code, err: { code, message: err instanceof Error ? err.message : String(err) } };
}
