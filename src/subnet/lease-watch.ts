import { errorCode, isTransient, type ErrorCode, type TwillError } from '../errors.js';
import type { Logger } from '../log.js';
import { applyLeaseBatch, diffLeases, leaseId } from './lease-diff.js';
import type { LeaseRegistry, LeaseWatch, UnreadableLease } from './registry.js';
import type { Lease, LeaseEvent } from './types.js';
import { Backoff } from '../lib/backoff.js';

/** What else a batch says: the keys deleted in it, and whether it is a whole listing (a re-list). */
export interface LeaseBatchMeta {
  readonly gone: readonly string[];
  /** True for a re-list: `unreadable` then holds every key under subnets/ that is not a lease. */
  readonly complete: boolean;
}

export interface LeaseStreamOptions {
  readonly registry: LeaseRegistry;
  readonly logger: Logger;
  /** Receives every change to the lease set, in order, in batches. */
  /** With the keys under subnets/ that are not leases, as they come (every one again after a re-list). */
  readonly onEvents: (events: readonly LeaseEvent[], unreadable: readonly UnreadableLease[], meta: LeaseBatchMeta) => void;
  /** The watch stream broke (with why) or is up again. */
  readonly onConnection?: (connected: boolean, err?: TwillError) => void;
  /**
   * The owner logs etcd outages itself, one line each (the agent's outage log): an unreachable
   * etcd (TWILL_ERR_ETCD_UNAVAILABLE) is logged at debug here, other failures as before.
   */
  readonly quietOutages?: boolean;
  /** Every event the watch delivers, before de-duplication (for metrics). */
  readonly onWatchEvent?: (type: 'put' | 'delete') => void;
  /**
   * A permanent error (isTransient false: etcd refused the password or a permission) ended the
   * stream after start(): it was logged once with its code and the stream retries no more; the
   * leases it knows stay as they are. During start() such an error rejects start() instead.
   */
  readonly onFatal?: (err: unknown) => void;
  readonly retry?: { initialMs: number; maxMs: number };
}

/**
 * The lease-event stream: a snapshot of every lease, then a watch from the snapshot's revision
 * + 1. When the watch cannot continue (compaction, cancellation) it re-lists, diffs against
 * what it knows, and carries on. It retries only what `isTransient` says retrying can fix.
 */
export class LeaseStream {
  private readonly known = new Map<string, Lease>();
  private watch: LeaseWatch | null = null;
  private revision = '0';
  private stopped = false;
  private resyncing: Promise<void> | null = null;
  /** The code of the watch stream's break last logged; null while it is up. */
  private watchDown: ErrorCode | 'unknown' | null = null;
  private readonly backoff: Backoff;
  private readonly log: Logger;

  constructor(private readonly opts: LeaseStreamOptions) {
    this.log = opts.logger.child({ component: 'lease-stream' });
    this.backoff = new Backoff(opts.retry?.initialMs ?? 500, opts.retry?.maxMs ?? 10_000);
  }

  /** Lists and starts watching; retries transient failures until it succeeds or stop() is called. */
  async start(): Promise<void> {
    try {
      await this.resync('start');
    } catch (err) {
      this.halt(err);
      throw err;
    }
  }

  leases(): Lease[] {
    return [...this.known.values()];
  }

  watchRevision(): string {
    return this.revision;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.backoff.cancel();
    await this.resyncing?.catch(() => undefined);
    await this.closeWatch();
  }

  /** Re-lists and re-watches, once at a time; rejects with a permanent error. */
  resync(reason: string): Promise<void> {
    this.resyncing ??= this.relistLoop(reason).finally(() => (this.resyncing = null));
    return this.resyncing;
  }

  private async relistLoop(reason: string): Promise<void> {
    await this.closeWatch();
    let logged: ErrorCode | null = null;
    while (!this.stopped) {
      try {
        const snap = await this.opts.registry.listLeases();
        this.emit(diffLeases(this.known, snap.leases), snap.unreadable, { gone: [], complete: true });
        this.known.clear();
        for (const l of snap.leases) this.known.set(leaseId(l), l);
        this.revision = snap.revision;
        this.log.info({ reason, revision: snap.revision, leases: snap.leases.length }, 'leases listed');
        this.backoff.reset();
        this.startWatch(String(BigInt(snap.revision) + 1n));
        return;
      } catch (err) {
        if (!isTransient(err)) throw err;
        // One line per kind of failure, not one per attempt.
        if (errorCode(err) !== logged) this.log[this.level(errorCode(err))]({ err, code: errorCode(err), reason }, 'listing leases failed; retrying');
        logged = errorCode(err);
        if (!this.stopped) await this.backoff.wait(); // stop() cancels a pending wait only, not a later one
      }
    }
  }

  private startWatch(from: string): void {
    if (this.stopped) return;
    this.watch = this.opts.registry.watchLeases(from, {
      onBatch: (batch) => {
        this.revision = batch.revision;
        for (const e of batch.events) this.opts.onWatchEvent?.(e.type === 'added' ? 'put' : 'delete');
        for (let i = 0; i < batch.unreadable.length; i++) this.opts.onWatchEvent?.('put');
        this.emit(applyLeaseBatch(this.known, batch.events), batch.unreadable, { gone: batch.gone, complete: false });
      },
      onReset: (err) => {
        if (this.stopped) return;
        if (!isTransient(err)) return this.fail(err);
        this.log.warn({ code: err.code, why: err.message }, 'lease watch reset; re-listing');
        void this.resync(err.message).catch((e: unknown) => this.fail(e));
      },
      onConnection: (connected, err) => {
        if (this.stopped) return;
        this.opts.onConnection?.(connected, err);
        if (connected) {
          if (this.watchDown !== null) this.log[this.level(this.watchDown) === 'debug' ? 'debug' : 'info']('etcd watch connection restored');
          this.watchDown = null;
          return;
        }
        if (err && !isTransient(err)) return this.fail(err);
        const code = err?.code ?? 'unknown';
        // The client retries the connection by itself and says so each time: log the first.
        if (code !== this.watchDown) this.log[this.level(code)]({ code, err: err?.message }, 'etcd watch connection lost');
        this.watchDown = code;
      },
    });
  }

  /** An etcd failure's level here: debug for an unreachable etcd when the owner logs outages. */
  private level(code: ErrorCode | 'unknown'): 'warn' | 'debug' {
    return this.opts.quietOutages && code === 'TWILL_ERR_ETCD_UNAVAILABLE' ? 'debug' : 'warn';
  }

  /** A permanent error after start(): stop, say so once, and hand it on. */
  private fail(err: unknown): void {
    if (this.stopped) return;
    this.halt(err);
    this.opts.onFatal?.(err);
  }

  private halt(err: unknown): void {
    if (this.stopped) return;
    this.stopped = true;
    this.backoff.cancel();
    this.log.error({ err, code: errorCode(err) }, 'lease stream stopped: this error is not retried');
    void this.closeWatch();
  }

  private async closeWatch(): Promise<void> {
    const w = this.watch;
    this.watch = null;
    await w?.close().catch(() => undefined);
  }

  private emit(events: readonly LeaseEvent[], unreadable: readonly UnreadableLease[], meta: LeaseBatchMeta): void {
    if ((events.length > 0 || unreadable.length > 0 || meta.gone.length > 0 || meta.complete) && !this.stopped) this.opts.onEvents(events, unreadable, meta);
  }
}
