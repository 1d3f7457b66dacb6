/** Capped exponential backoff with jitter, cancellable so that stop() never waits on a sleep. */
export class Backoff {
  private delay: number;
  private timer: NodeJS.Timeout | null = null;
  private wake: (() => void) | null = null;

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
  ) {
    this.delay = initialMs;
  }

  wait(): Promise<void> {
    const ms = this.delay * (0.75 + Math.random() / 2);
    this.delay = Math.min(this.delay * 2, this.maxMs);
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }

  reset(): void {
    this.delay = this.initialMs;
  }

  /** Ends a pending wait now. */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
    this.timer = null;
    this.wake = null;
  }
}
