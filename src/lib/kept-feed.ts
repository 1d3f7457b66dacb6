import { Backoff } from './backoff.js';

/** What a long-lived feed of changes (e.g. `ip monitor`) tells its owner. */
export interface FeedHandlers<E> {
  event(e: E): void;
  /** Events may have been missed (e.g. a netlink overflow). */
  lost(reason: string): void;
  /** The feed is gone: stopped (null) or failed. Called once. */
  end(err: Error | null): void;
}

/** A running feed; stop() ends it without calling `end`. */
export interface Feed {
  stop(): void;
}

export type FeedStarter<E> = (handlers: FeedHandlers<E>) => Feed;

export interface KeptFeedOptions<E> {
  readonly start: FeedStarter<E>;
  readonly event: (e: E) => void;
  /**
   * Events may have been missed, so the owner should look at everything: the feed was lost, ended,
   * or has just become trusted (`settleMs` after a start). Also where the owner re-reads `trusted`.
   */
  readonly gap: (reason: string) => void;
  /** The feed failed; it is restarted with backoff. */
  readonly failed?: (err: Error) => void;
  /** A feed cannot say when its subscription is in place: it is trusted this long after it started. */
  readonly settleMs?: number;
  /** Losses come in storms (a burst overflowing a buffer): the gap is reported this long after the first. */
  readonly lostDelayMs?: number;
  readonly backoff?: Backoff;
}

/** A feed that ran this long before it ended starts again at the shortest backoff. */
const STABLE_MS = 30_000;

/**
 * Keeps a feed of changes running, restarted with backoff when it ends, so that its owner can
 * react to changes as they happen and poll slowly while the feed is `trusted`.
 */
export class KeptFeed<E> {
  private feed: Feed | null = null;
  private settle: NodeJS.Timeout | null = null;
  private lostTimer: NodeJS.Timeout | null = null;
  private startedAt = 0;
  private generation = 0;
  private settled = false;
  private stopped = true;
  private readonly backoff: Backoff;

  constructor(private readonly opts: KeptFeedOptions<E>) {
    this.backoff = opts.backoff ?? new Backoff(1_000, 60_000);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    this.backoff.cancel();
    if (this.lostTimer) clearTimeout(this.lostTimer);
    this.lostTimer = null;
    this.close();
  }

  /** Running, and long enough that no change since it started can have been missed. */
  get trusted(): boolean {
    return this.feed !== null && this.settled;
  }

  private open(): void {
    if (this.stopped) return;
    const generation = ++this.generation;
    const current = () => generation === this.generation;
    this.startedAt = performance.now();
    const feed = this.opts.start({
      event: (e) => current() && this.opts.event(e),
      lost: (reason) => current() && this.lost(reason),
      end: (err) => current() && this.ended(err ?? new Error('the feed ended')),
    });
    if (!current()) return feed.stop(); // it ended while starting
    this.feed = feed;
    this.settle = setTimeout(() => {
      this.settle = null;
      this.settled = true;
      this.opts.gap('feed started');
    }, this.opts.settleMs ?? 1_000);
    this.settle.unref();
  }

  /** One gap for a storm of losses, once it has likely passed (an owner's full look costs more mid-burst). */
  private lost(reason: string): void {
    if (this.lostTimer) return;
    this.lostTimer = setTimeout(() => {
      this.lostTimer = null;
      if (!this.stopped) this.opts.gap(`changes lost: ${reason}`);
    }, this.opts.lostDelayMs ?? 1_000);
    this.lostTimer.unref();
  }

  /** Stops the feed; callbacks it still makes are ignored. */
  private close(): void {
    this.generation += 1;
    if (this.settle) clearTimeout(this.settle);
    this.settle = null;
    this.settled = false;
    const feed = this.feed;
    this.feed = null;
    feed?.stop();
  }

  private ended(err: Error): void {
    if (this.stopped) return;
    if (performance.now() - this.startedAt >= STABLE_MS) this.backoff.reset();
    this.close();
    this.opts.failed?.(err);
    this.opts.gap('feed ended');
    void this.backoff.wait().then(() => this.open());
  }
}
