import { errorCode, isTransient, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { applyLeaseEvent, diffLeases, leaseId } from './lease-diff.js';
import type { LeaseRegistry, LeaseWatch } from './registry.js';
import type { Lease, LeaseEvent } from './types.js';
import { Backoff } from '../lib/backoff.js';

export interface LeaseStreamOptions {
  readonly registry: LeaseRegistry;
  readonly logger: Logger;
  /** Receives every change to the lease set, in order, in batches. */
  readonly onEvents: (events: readonly LeaseEvent[]) => void;
  readonly onConnection?: (connected: boolean) => void;
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
        for (const key of snap.unreadable) this.log.warn({ key }, 'ignoring lease with unreadable value');
        this.emit(diffLeases(this.known, snap.leases));
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
        if (errorCode(err) !== logged) this.log.warn({ err, code: errorCode(err), reason }, 'listing leases failed; retrying');
        logged = errorCode(err);
        if (!this.stopped) await this.backoff.wait(); // stop() cancels a pending wait only, not a later one
      }
    }
  }

  private startWatch(from: string): void {
    if (this.stopped) return;
    this.watch = this.opts.registry.watchLeases(from, {
      onEvent: (event, revision) => {
        this.revision = revision;
        this.opts.onWatchEvent?.(event.type === 'added' ? 'put' : 'delete');
        const effective = applyLeaseEvent(this.known, event);
        if (effective) this.emit([effective]);
      },
      onReset: (err) => {
        if (this.stopped) return;
        if (!isTransient(err)) return this.fail(err);
        this.log.warn({ code: err.code, why: err.message }, 'lease watch reset; re-listing');
        void this.resync(err.message).catch((e: unknown) => this.fail(e));
      },
      onConnection: (connected, err) => {
        if (this.stopped) return;
        this.opts.onConnection?.(connected);
        if (connected) {
          if (this.watchDown !== null) this.log.info('etcd watch connection restored');
          this.watchDown = null;
          return;
        }
        if (err && !isTransient(err)) return this.fail(err);
        const code = err?.code ?? 'unknown';
        // The client retries the connection by itself and says so each time: log the first.
        if (code !== this.watchDown) this.log.warn({ code, err: err?.message }, 'etcd watch connection lost');
        this.watchDown = code;
      },
    });
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

  private emit(events: readonly LeaseEvent[]): void {
    if (events.length > 0 && !this.stopped) this.opts.onEvents(events);
  }
}
