import { errorCode } from '../../errors.js';
import { inMainTable, TWILL_ROUTE_PROTO, type Kernel, type KernelEvent } from '../../kernel/index.js';
import { KeptFeed } from '../../lib/kept-feed.js';
import { ReconcileLoop } from '../../lib/reconcile-loop.js';
import type { Logger } from '../../log.js';

export interface TunRouteGuardOptions {
  readonly kernel: Kernel;
  /** The Network, as the kernel lists it (10.244.0.0/16). */
  readonly network: string;
  /** The device that should carry it now; null while there is none (being recreated). */
  readonly device: () => string | null;
  /** Configures the device again: every line of that is a `replace`, the route among them. */
  readonly configure: (dev: string) => Promise<void>;
  readonly log: Logger;
  /** How often the routes are read while route events are not watched. */
  readonly periodMs: number;
  /** The same while they are (a safety net). */
  readonly watchedPeriodMs: number;
}

/**
 * The Network's route through the TUN (`<Network> dev twill0 proto 116`) is set when the device
 * is configured, and nothing else would see it deleted by hand: pod traffic would silently leave
 * by the default route instead. The kernel's route events (`ip monitor`) show its deletion, and
 * the route is put back at once by configuring the device again; twill's routes are also read
 * every `watchedPeriodMs`, or every `periodMs` while the events are not watched. Reading them
 * means starting `ip`, and forking the agent stalls the pump thread for milliseconds (the page
 * tables are copied, its buffers become copy-on-write): polling every few seconds showed as a
 * round-trip outlier every few seconds.
 */
export class TunRouteGuard {
  private readonly loop: ReconcileLoop;
  private readonly events: KeptFeed<KernelEvent> | null;
  private failing: string | null = null;
  private repairs = 0;

  constructor(private readonly opts: TunRouteGuardOptions) {
    const start = opts.kernel.routes.events;
    this.events = start ? new KeptFeed({ start, event: (e) => this.event(e), gap: () => void this.loop.run() }) : null;
    this.loop = new ReconcileLoop(() => this.pass(), () => (this.events?.trusted ? opts.watchedPeriodMs : opts.periodMs));
  }

  start(): void {
    this.events?.start();
    this.loop.start();
  }

  stop(): Promise<void> {
    this.events?.stop();
    return this.loop.stop();
  }

  /** Times the route was found gone and put back. */
  get repaired(): number {
    return this.repairs;
  }

  /** One check now (tests; the timer and the events do the same). */
  check(): Promise<void> {
    return this.loop.run();
  }

  private event(e: KernelEvent): void {
    if (inMainTable(e) && e.deleted && e.route.dst === this.opts.network && e.route.proto === TWILL_ROUTE_PROTO) void this.loop.run();
  }

  private async pass(): Promise<void> {
    const dev = this.opts.device();
    if (dev === null) return;
    const { kernel, network, log } = this.opts;
    try {
      const ours = await kernel.routes.list(TWILL_ROUTE_PROTO);
      if (!ours.some((r) => r.dst === network && r.dev === dev)) {
        await this.opts.configure(dev);
        this.repairs++;
        log.warn({ device: dev, network }, `the route to ${network} through ${dev} was gone; put back`);
      }
      this.failing = null;
    } catch (err) {
      const code = errorCode(err);
      if (code !== this.failing) log.warn({ err, code, device: dev }, 'cannot check the route through the TUN device; retrying on the next tick');
      this.failing = code;
    }
  }
}
