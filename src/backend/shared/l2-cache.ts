import type { KernelRoute, RouteLookup } from '../../kernel/index.js';
import { l2Verdict, type L2Verdict } from './l2-verdict.js';

/**
 * The L2 verdict per PublicIP, so that a lease change costs no `ip route get` for peers already
 * judged. The verdicts are refreshed all at once when they are older than `maxAgeMs`, or when
 * the node's own routes change (a link going down or an address moving changes them): every
 * full pass lists table main anyway, and this compares what is not ours.
 */
export class L2Cache {
  private readonly verdicts = new Map<string, L2Verdict>();
  private refreshedAt = -Infinity;
  private fingerprint: string | null = null;

  constructor(
    private readonly dev: string,
    /** Read at each check: the owner trusts verdicts longer while it watches what they depend on. */
    private readonly maxAgeMs: () => number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** True when every verdict must be looked up again: too old, or the node's own routes changed. */
  stale(mainTable: readonly KernelRoute[], ownProto: number): boolean {
    const print = fingerprintOf(mainTable, ownProto);
    const changed = this.fingerprint !== null && print !== this.fingerprint;
    this.fingerprint = print;
    return changed || this.now() - this.refreshedAt >= this.maxAgeMs();
  }

  /** The PublicIPs among `ips` that have no verdict yet. */
  missing(ips: Iterable<string>): string[] {
    const out = new Set<string>();
    for (const ip of ips) if (!this.verdicts.has(ip)) out.add(ip);
    return [...out];
  }

  /** Stores lookups; with `all`, forgets every other verdict and restarts the age. */
  store(lookups: ReadonlyMap<string, RouteLookup | null>, all: boolean): void {
    if (all) {
      this.verdicts.clear();
      this.refreshedAt = this.now();
    }
    for (const [ip, lookup] of lookups) this.verdicts.set(ip, l2Verdict(lookup, this.dev));
  }

  get(ip: string): L2Verdict | undefined {
    return this.verdicts.get(ip);
  }

  /** Drops verdicts of PublicIPs no peer uses any more. */
  retain(ips: ReadonlySet<string>): void {
    for (const ip of this.verdicts.keys()) if (!ips.has(ip)) this.verdicts.delete(ip);
  }
}

/** The routes that are not ours, in a stable order: what decides how a PublicIP is reached. */
function fingerprintOf(routes: readonly KernelRoute[], ownProto: number): string {
  return routes
    .filter((r) => r.proto !== ownProto)
    .map((r) => `${r.dst} ${r.gateway ?? ''} ${r.dev ?? ''}`)
    .sort()
    .join('\n');
}
