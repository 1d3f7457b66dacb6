import type { Logger } from '../log.js';
import { formatCidr } from '../lib/ipv4.js';
import { TokenBucket } from '../lib/token-bucket.js';
import type { LeaseEvent } from '../subnet/types.js';

export interface PeerFeedOptions {
  /** Runs a task on the agent's backend queue (one backend call at a time, in order). */
  readonly enqueue: (task: () => Promise<void>) => void;
  /** The backend's applyPeerChanges. */
  readonly apply: (events: readonly LeaseEvent[]) => Promise<void>;
  readonly logger: Logger;
  /** Backend calls allowed: a burst, then a sustained rate (default CALLS). */
  readonly calls?: { readonly burst: number; readonly ratePerSec: number };
}

/**
 * Under churn, changes gather for a moment rather than cost a backend pass each: at 50 changes
 * a second, once the burst is spent, that is 2 passes a second (and their `ip` processes), not
 * 50, for at most 0.5 s more lag. Occasional changes (a join now and then) go at once.
 */
export const CALLS = { burst: 4, ratePerSec: 2 } as const;

/** How many subnets an info line names; the rest are counted (every one is at debug). */
const NAMED = 10;

/**
 * Peer events on their way to the backend. Whatever arrives while the backend is busy goes into
 * its next call as one batch, so a burst of N changes costs a few backend passes, not N.
 */
export class PeerFeed {
  private pending: LeaseEvent[] = [];
  private queued = false;
  private closed = false;
  private readonly calls: TokenBucket;
  /** Ends the wait before a call early (stop). */
  private wake: (() => void) | null = null;

  constructor(private readonly opts: PeerFeedOptions) {
    this.calls = new TokenBucket(opts.calls ?? CALLS);
  }

  push(events: readonly LeaseEvent[]): void {
    if (this.closed || events.length === 0) return;
    this.pending.push(...events);
    if (this.queued) return;
    this.queued = true;
    this.opts.enqueue(() => this.drain());
  }

  /** Stop: what has not reached the backend is dropped (a restart reconciles it); returns how many. */
  close(): number {
    this.closed = true;
    const dropped = this.pending.length;
    this.pending = [];
    this.wake?.();
    return dropped;
  }

  private async drain(): Promise<void> {
    const wait = this.calls.msUntilToken();
    if (wait > 0 && !this.closed) await new Promise<void>((resolve) => ((this.wake = resolve), setTimeout(resolve, wait)));
    this.wake = null;
    this.queued = false; // from here on, a push queues the next call
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    this.calls.take();
    logBatch(this.opts.logger, batch);
    await this.opts.apply(batch);
  }
}

/** One info line per backend call (counts, a few subnets), one debug line per peer. */
function logBatch(log: Logger, events: readonly LeaseEvent[]): void {
  const s = summarize(events);
  log.info({ added: s.added, removed: s.removed, subnets: s.subnets, ...(s.more > 0 && { more: s.more }) }, 'peers changed');
  if (!log.isLevelEnabled('debug')) return;
  for (const e of events) log.debug({ subnet: formatCidr(e.lease.subnet), publicIP: e.lease.attrs.publicIP || undefined }, e.type === 'added' ? 'peer added' : 'peer removed');
}

export interface BatchSummary {
  readonly added: number;
  readonly removed: number;
  /** Up to ten, as "+10.244.2.0/24" or "-10.244.3.0/24". */
  readonly subnets: readonly string[];
  readonly more: number;
}

/** Pure: a batch of peer events in a few numbers and names. */
export function summarize(events: readonly LeaseEvent[]): BatchSummary {
  const added = events.filter((e) => e.type === 'added').length;
  const subnets = events.slice(0, NAMED).map((e) => `${e.type === 'added' ? '+' : '-'}${formatCidr(e.lease.subnet)}`);
  return { added, removed: events.length - added, subnets, more: Math.max(0, events.length - NAMED) };
}
