import { errorCode, isTwillError, TwillError } from '../errors.js';
import type { Logger } from '../log.js';
import { ReconcileLoop } from '../lib/reconcile-loop.js';
import { changedFields, parseNetworkConfig } from '../subnet/config.js';
import type { LeaseRegistry } from '../subnet/registry.js';
import type { NetworkConfig } from '../subnet/types.js';

export interface EtcdProbeOptions {
  readonly registry: Pick<LeaseRegistry, 'getConfig'>;
  readonly logger: Logger;
  /** The config the agent runs on; etcd's is compared with it. */
  readonly running: NetworkConfig;
  /** After every read: whether etcd answered in time, and why not. */
  readonly onContact: (reached: boolean, err?: TwillError) => void;
  /** What differs in etcd from the running config (empty: nothing), each time that changes. */
  readonly onChanged: (changed: readonly string[]) => void;
  /** How often etcd is asked (default 5 s). */
  readonly intervalMs?: number;
  /** How long an answer may take before etcd counts as unreachable (default 3 s). */
  readonly timeoutMs?: number;
}

/** The differences between etcd's config and the running one, and how to say so. */
interface Drift {
  readonly changed: readonly string[];
  readonly fields?: Record<string, unknown>;
  readonly msg: string;
}

const IN_STEP: Drift = { changed: [], msg: 'network config in etcd matches the running one again' };

/**
 * Asks etcd something cheap on a timer, so that a frozen etcd, or a member cut off from its
 * quorum, shows as such within seconds instead of when the next lease renewal fails: a
 * linearizable read of the config key with a short deadline (it needs the leader; a member
 * without quorum cannot answer it). The answer is also compared with the config the agent runs
 * on: a change cannot be applied live, so it is said once, with the fields that differ.
 */
export class EtcdProbe {
  private readonly loop: ReconcileLoop;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private drift: Drift = IN_STEP;
  private stopped = false;
  /** Ends the read in flight at once (stop() does not wait for a frozen etcd). */
  private abandon: (() => void) | null = null;

  constructor(private readonly opts: EtcdProbeOptions) {
    this.log = opts.logger.child({ component: 'etcd-probe' });
    this.timeoutMs = opts.timeoutMs ?? 3000;
    this.loop = new ReconcileLoop(() => this.pass(), opts.intervalMs ?? 5000);
  }

  /** Reads now, then on the timer. */
  start(): void {
    this.loop.start();
    void this.loop.run();
  }

  /** One read now (or the one in flight); resolves when it is done. */
  probe(): Promise<void> {
    return this.loop.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abandon?.();
    await this.loop.stop();
  }

  private async pass(): Promise<void> {
    if (this.stopped) return;
    let text: string | null;
    try {
      text = await this.read();
    } catch (err) {
      if (this.stopped) return;
      const e = isTwillError(err) ? err : new TwillError('TWILL_ERR_ETCD_UNAVAILABLE', `read the network config: ${String(err)}`, { cause: err });
      const reached = e.code !== 'TWILL_ERR_ETCD_UNAVAILABLE'; // etcd answered, with a refusal
      if (reached) this.log.debug({ code: errorCode(e), why: e.message }, 'etcd refused the config read');
      this.opts.onContact(reached, e);
      return;
    }
    if (this.stopped) return;
    this.opts.onContact(true);
    this.compare(text);
  }

  /** The config key, or a rejection once the deadline passes (the registry's own call may linger). */
  private read(): Promise<string | null> {
    return new Promise((resolve, reject) => {
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        if (this.abandon === abandon) this.abandon = null;
        settle();
      };
      const timer = setTimeout(() => finish(() => reject(new TwillError('TWILL_ERR_ETCD_UNAVAILABLE', `read the network config: etcd did not answer within ${this.timeoutMs} ms`))), this.timeoutMs);
      const abandon = () => finish(() => reject(new TwillError('TWILL_ERR_ETCD_UNAVAILABLE', 'read the network config: stopped')));
      this.abandon = abandon;
      this.opts.registry.getConfig({ timeoutMs: this.timeoutMs }).then(
        (text) => finish(() => resolve(text)),
        (err: unknown) => finish(() => reject(err)),
      );
    });
  }

  private compare(text: string | null): void {
    const drift = this.driftOf(text);
    if (drift.changed.join('\n') === this.drift.changed.join('\n')) return;
    this.drift = drift;
    if (drift.changed.length === 0) this.log.info({ changed: [] }, drift.msg);
    else this.log.warn({ changed: drift.changed, ...drift.fields }, drift.msg);
    this.opts.onChanged(drift.changed);
  }

  private driftOf(text: string | null): Drift {
    if (text === null) return { changed: ['(deleted)'], msg: 'network config deleted from etcd; the agent keeps running on the one it started with' };
    let next: NetworkConfig;
    try {
      next = parseNetworkConfig(text);
    } catch (err) {
      const fields = { code: errorCode(err), why: err instanceof Error ? err.message : String(err) };
      return { changed: ['(invalid)'], fields, msg: 'network config in etcd is invalid; the agent keeps running on the one it started with' };
    }
    const changed = changedFields(this.opts.running, next);
    return changed.length === 0 ? IN_STEP : { changed, msg: 'network config changed in etcd; restart the agent to apply it' };
  }
}
