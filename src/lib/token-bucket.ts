/**
 * A token bucket: `burst` tokens at most, refilled at `ratePerSec`, one taken per event.
 * Pure: time comes from the injected clock (ms; any monotonic origin), so tests step it.
 * take() does no allocation, so it may sit on a packet path.
 */
export interface TokenBucketOptions {
  readonly ratePerSec: number;
  readonly burst: number;
  /** Milliseconds from any fixed origin; default performance.now(). */
  readonly now?: () => number;
}

export class TokenBucket {
  private readonly perMs: number;
  private readonly burst: number;
  private readonly now: () => number;
  private tokens: number;
  private last: number;

  constructor(opts: TokenBucketOptions) {
    this.perMs = opts.ratePerSec / 1000;
    this.burst = opts.burst;
    this.now = opts.now ?? (() => performance.now());
    this.tokens = opts.burst; // starts full: the first burst goes through
    this.last = this.now();
  }

  /** Takes one token if there is one; false means the event should be suppressed. */
  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** How long until a token is there (0: now). */
  msUntilToken(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : (1 - this.tokens) / this.perMs;
  }

  private refill(): void {
    const t = this.now();
    // A clock that steps back (a test, or a reset origin) refills nothing, never a negative amount.
    if (t > this.last) this.tokens = Math.min(this.burst, this.tokens + (t - this.last) * this.perMs);
    this.last = t;
  }
}
