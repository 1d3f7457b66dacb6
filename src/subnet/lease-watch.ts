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
}

/**
 * The lease-event stream: a snapshot of every lease, then a watch from the snapshot's revision
 * + 1. When the watch cannot continue (compaction, cancellation) it re-lists, diffs against
 * what it knows, and carries on.
 */
export class LeaseStream {
  private readonly known = new Map<string, Lease>();
  private watch: LeaseWatch | null = null;
  private revision = '0';
  private stopped = false;
  private resyncing: Promise<void> | null = null;
  private readonly backoff = new Backoff(500, 10_000);
  private readonly log: Logger;

  constructor(private readonly opts: LeaseStreamOptions) {
    this.log = opts.logger.child({ component: 'lease-stream' });
  }

  /** Lists and starts watching; retries the first list until it succeeds or stop() is called. */
  async start(): Promise<void> {
    await this.resync('start');
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
    await this.watch?.close();
    this.watch = null;
  }

  /** Re-lists and re-watches, once at a time. */
  resync(reason: string): Promise<void> {
    this.resyncing ??= this.relistLoop(reason).finally(() => (this.resyncing = null));
    return this.resyncing;
  }

  private async relistLoop(reason: string): Promise<void> {
    await this.watch?.close().catch(() => undefined);
    this.watch = null;
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
        this.log.warn({ err, reason }, 'listing leases failed; retrying');
        await this.backoff.wait();
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
      onReset: (why) => {
        if (this.stopped) return;
        this.log.warn({ why }, 'lease watch reset; re-listing');
        void this.resync(why);
      },
      onConnection: (connected, err) => {
        if (connected) this.log.info('etcd watch connection restored');
        else this.log.warn({ err: err?.message }, 'etcd watch connection lost');
        this.opts.onConnection?.(connected);
      },
    });
  }

  private emit(events: readonly LeaseEvent[]): void {
    if (events.length > 0 && !this.stopped) this.opts.onEvents(events);
  }
}
