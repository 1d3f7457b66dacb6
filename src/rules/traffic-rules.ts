import { KeptFeed } from '../lib/kept-feed.js';
import { ReconcileLoop } from '../lib/reconcile-loop.js';
import { errorCode, isTransient, isTwillError, type ErrorCode } from '../errors.js';
import type { Kernel } from '../kernel/index.js';
import type { Logger } from '../log.js';
import { FORWARD_CHAIN, FORWARD_TABLE, forwardRuleSpecs, parseForwardChain, planForward, type RuleSpec } from './forward-rules.js';
import { normalizeNft, renderTwillTable, replaceScript, tableDrift, TWILL_NFT_FAMILY, TWILL_NFT_TABLE } from './nft-ruleset.js';
import { touchesTrafficRules } from './rule-events.js';

/** Half the 10 s promise: a table or rule deleted by hand is back well within it. */
export const DEFAULT_RULES_RESYNC_MS = 5_000;
/** The same while ruleset changes are watched (`nft monitor`): a safety net. */
export const DEFAULT_RULES_WATCHED_RESYNC_MS = 60_000;

export type RepairKind = 'nft-table' | 'forward-rules';

export interface TrafficRulesOptions {
  readonly kernel: Pick<Kernel, 'nft' | 'iptables'>;
  readonly logger: Logger;
  /** The cluster network N (CIDR). */
  readonly network: string;
  readonly ipMasq: boolean;
  readonly forwardRules: boolean;
  readonly resyncMs?: number;
  readonly watchedResyncMs?: number;
  /** Called on each repair of drift (for metrics); the count is also in status(). */
  readonly onRepair?: (kind: RepairKind) => void;
}

export interface TrafficRulesStatus {
  readonly ipMasq: boolean;
  readonly forwardRules: boolean;
  /** How many times a deleted or changed table or rule was put back. */
  readonly repairs: number;
  readonly lastError: string | null;
}

/**
 * Keeps twill's traffic rules in place: the ip-masq table (nft) and the forward ACCEPT rules
 * (iptables FORWARD). Reconciled at start, on a lease change, when `nft monitor` shows a change
 * to them, and every 5 s (every 60 s while that works); logs only on change.
 * Rules stay when the agent stops, like routes; `twill agent --cleanup` removes them.
 */
export class TrafficRules {
  private readonly log: Logger;
  private readonly loop: ReconcileLoop;
  private readonly events: KeptFeed<string> | null;
  /** Whether `nft monitor` shows changes to the forward rules: not when iptables is legacy. */
  private forwardWatched = false;
  private subnet: string | null = null;
  /** What we last applied or found in place; undefined before the first look. */
  private tableInPlace: string | null | undefined = undefined;
  private forwardInPlace: string | undefined = undefined;
  private iptablesMissingLogged = false;
  private repairs = 0;
  private lastError: string | null = null;
  /** The code of the failure last logged: a failure is logged when its code changes, not its text. */
  private lastCode: ErrorCode | null = null;

  constructor(private readonly opts: TrafficRulesOptions) {
    this.log = opts.logger.child({ component: 'traffic-rules' });
    const [fastMs, slowMs] = [opts.resyncMs ?? DEFAULT_RULES_RESYNC_MS, opts.watchedResyncMs ?? DEFAULT_RULES_WATCHED_RESYNC_MS];
    this.loop = new ReconcileLoop(() => this.reconcile(), () => (this.watched() ? slowMs : fastMs));
    this.events = this.watchRules();
  }

  /** The first reconcile; throws only what retrying cannot fix (nft missing with --ip-masq). */
  async start(subnet: string): Promise<void> {
    this.subnet = subnet;
    await this.reconcileOnce().catch((err: unknown) => {
      if (!isTransient(err)) throw err;
      this.report(err);
    });
    this.forwardWatched = !this.opts.forwardRules || (await this.opts.kernel.iptables.usesNftables().catch((err: unknown) => isTwillError(err, 'TWILL_ERR_KERNEL_NOT_FOUND')));
    this.loop.start();
    this.events?.start();
  }

  /** The lease changed: rules for the old subnet go, in the same transaction as the new ones come. */
  async setSubnet(subnet: string): Promise<void> {
    this.subnet = subnet;
    await this.loop.run();
  }

  /** One reconcile now (what the timer does); never throws, a failure is logged. */
  reconcileNow(): Promise<void> {
    return this.loop.run();
  }

  async stop(): Promise<void> {
    this.events?.stop();
    await this.loop.stop();
  }

  status(): TrafficRulesStatus {
    return { ipMasq: this.opts.ipMasq, forwardRules: this.opts.forwardRules, repairs: this.repairs, lastError: this.lastError };
  }

  private watched(): boolean {
    return this.forwardWatched && this.events?.trusted === true;
  }

  private watchRules(): KeptFeed<string> | null {
    const start = this.opts.kernel.nft.events;
    if (!start) return null;
    const now = () => {
      this.loop.reschedule();
      void this.loop.run();
    };
    return new KeptFeed({
      start,
      event: (line) => touchesTrafficRules(line) && now(),
      gap: now,
      failed: (err) => this.log.debug({ err, code: errorCode(err) }, 'ruleset changes not watched; re-reading the rules every 5 s until they are'),
    });
  }

  private async reconcile(): Promise<void> {
    try {
      await this.reconcileOnce();
      if (this.lastError !== null) this.log.info('traffic rules reconciled again');
      this.lastError = null;
      this.lastCode = null;
    } catch (err) {
      this.report(err);
    }
  }

  private report(err: unknown): void {
    const code = errorCode(err);
    if (code !== this.lastCode) this.log.warn({ err, code }, 'traffic rules not reconciled; retrying');
    this.lastCode = code;
    this.lastError = err instanceof Error ? err.message : String(err);
  }

  private async reconcileOnce(): Promise<void> {
    const subnet = this.subnet;
    if (subnet === null) return;
    // Independent steps: a failing nft must not keep the forward rules from being repaired.
    let failure: unknown = null;
    for (const step of [() => this.syncTable(subnet), () => this.syncForward()]) {
      await step().catch((err: unknown) => (failure ??= err));
    }
    if (failure !== null) throw failure;
  }

  private async syncTable(subnet: string): Promise<void> {
    const { nft } = this.opts.kernel;
    const desired = this.opts.ipMasq ? renderTwillTable({ network: this.opts.network, subnet }) : null;
    const actual = await nft.listTable(TWILL_NFT_FAMILY, TWILL_NFT_TABLE).catch((err: unknown) => {
      // Without --ip-masq and without nft there is no table to remove.
      if (desired === null && isTwillError(err, 'TWILL_ERR_KERNEL_NOT_FOUND')) return null;
      throw err;
    });
    const drift = tableDrift(desired, actual);
    const expected = this.tableInPlace !== undefined && sameTable(this.tableInPlace, desired);
    if (drift !== 'in-sync') {
      await nft.apply(replaceScript(desired));
      const fields = { table: `${TWILL_NFT_FAMILY} ${TWILL_NFT_TABLE}`, network: this.opts.network, subnet };
      if (expected) this.repaired('nft-table', fields, drift === 'missing' ? 'nft table restored' : 'nft table rules restored');
      else if (drift === 'unwanted') this.log.info(fields, 'nft table removed');
      else this.log.info(fields, drift === 'missing' ? 'nft table installed' : 'nft table updated');
    }
    this.tableInPlace = desired;
  }

  private async syncForward(): Promise<void> {
    const { iptables } = this.opts.kernel;
    const desired = this.opts.forwardRules ? forwardRuleSpecs(this.opts.network) : [];
    const listing = await iptables.listChain(FORWARD_TABLE, FORWARD_CHAIN).catch((err: unknown) => {
      if (!isTwillError(err, 'TWILL_ERR_KERNEL_NOT_FOUND')) throw err;
      // No iptables, no iptables FORWARD policy to get past.
      if (desired.length > 0 && !this.iptablesMissingLogged) this.log.warn({ code: err.code }, 'iptables is not installed; forward rules skipped');
      this.iptablesMissingLogged = true;
      return null;
    });
    if (listing === null) return;
    const plan = planForward(desired, parseForwardChain(listing).owned);
    const key = desired.map((s) => s.join(' ')).join('\n');
    const expected = this.forwardInPlace === key;
    for (const spec of plan.remove) await iptables.delete(FORWARD_TABLE, FORWARD_CHAIN, spec);
    for (const spec of plan.insert) await iptables.insert(FORWARD_TABLE, FORWARD_CHAIN, 1, spec);
    this.forwardInPlace = key;
    if (plan.insert.length === 0 && plan.remove.length === 0) return;
    const fields = { chain: `${FORWARD_TABLE} ${FORWARD_CHAIN}`, added: plan.insert.map(describe).reverse(), removed: plan.remove.map(describe) };
    if (expected) this.repaired('forward-rules', fields, 'forward rules restored');
    else this.log.info(fields, desired.length === 0 ? 'forward rules removed' : 'forward rules installed');
  }

  private repaired(kind: RepairKind, fields: Record<string, unknown>, msg: string): void {
    this.repairs += 1;
    this.log.warn({ ...fields, repairs: this.repairs }, msg);
    this.opts.onRepair?.(kind);
  }
}

function sameTable(a: string | null, b: string | null): boolean {
  return a === null || b === null ? a === b : normalizeNft(a) === normalizeNft(b);
}

const describe = (spec: RuleSpec): string => spec.join(' ');
