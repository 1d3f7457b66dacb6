import { errorCode } from '../../errors.js';
import { TWILL_ROUTE_PROTO, type Kernel } from '../../kernel/index.js';
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
  readonly periodMs: number;
}

/**
 * The Network's route through the TUN (`<Network> dev twill0 proto 116`) is set when the device
 * is configured, and nothing else would see it deleted by hand: pod traffic would silently leave
 * by the default route instead. Every `periodMs` twill's routes are read, and a missing one is
 * put back by configuring the device again.
 */
export class TunRouteGuard {
  private readonly loop: ReconcileLoop;
  private failing: string | null = null;
  private repairs = 0;

  constructor(private readonly opts: TunRouteGuardOptions) {
    this.loop = new ReconcileLoop(() => this.pass(), opts.periodMs);
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** Times the route was found gone and put back. */
  get repaired(): number {
    return this.repairs;
  }

  /** One check now (tests; the timer does the same). */
  check(): Promise<void> {
    return this.loop.run();
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
