import { Coalescer } from './coalescer.js';

/**
 * The loop every reconciler runs: a pass now and then on a timer, passes coalesced so that one
 * runs at a time and requests made during a pass share the next one, and a stop that waits for
 * the pass in flight. `pass` must not reject (it logs its own failures).
 */
export class ReconcileLoop {
  private readonly coalescer: Coalescer;
  private readonly periodMs: () => number;
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  /**
   * `periodMs` is read before each wait (a reconciler that watches changes polls slowly while
   * it can trust them); `onTick` runs before each timed pass (one that does more then marks it).
   */
  constructor(
    pass: () => Promise<void>,
    periodMs: number | (() => number),
    private readonly onTick?: () => void,
  ) {
    this.coalescer = new Coalescer(pass);
    this.periodMs = typeof periodMs === 'number' ? () => periodMs : periodMs;
  }

  /** Starts the periodic passes (the timer never keeps the process alive). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule();
  }

  get started(): boolean {
    return this.running;
  }

  /** Waits the period as it is now, from now (call when what decides the period changed). */
  reschedule(): void {
    if (this.running) this.schedule();
  }

  /** A pass now, or the one already queued; resolves when it has run. */
  run(): Promise<void> {
    return this.coalescer.run();
  }

  /** No more timed passes; resolves once the pass in flight (and any queued) is done. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.coalescer.idle();
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.onTick?.();
      void this.coalescer.run();
      this.schedule();
    }, this.periodMs());
    this.timer.unref();
  }
}
