import { Coalescer } from './coalescer.js';

/**
 * The loop every reconciler runs: a pass now and then on a timer, passes coalesced so that one
 * runs at a time and requests made during a pass share the next one, and a stop that waits for
 * the pass in flight. `pass` must not reject (it logs its own failures).
 */
export class ReconcileLoop {
  private readonly coalescer: Coalescer;
  private timer: NodeJS.Timeout | null = null;

  /** `onTick` runs before each timed pass (a reconciler that does more on its periodic pass marks it). */
  constructor(
    pass: () => Promise<void>,
    private readonly intervalMs: number,
    private readonly onTick?: () => void,
  ) {
    this.coalescer = new Coalescer(pass);
  }

  /** Starts the periodic passes (the timer never keeps the process alive). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.onTick?.();
      void this.coalescer.run();
    }, this.intervalMs);
    this.timer.unref();
  }

  get started(): boolean {
    return this.timer !== null;
  }

  /** A pass now, or the one already queued; resolves when it has run. */
  run(): Promise<void> {
    return this.coalescer.run();
  }

  /** No more timed passes; resolves once the pass in flight (and any queued) is done. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.coalescer.idle();
  }
}
