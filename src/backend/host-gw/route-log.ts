import type { BatchFailure, KernelRoute, RouteChange } from '../../kernel/index.js';
import type { Logger } from '../../log.js';

/** How many subnets an info line names; every change is at debug. */
const NAMED = 10;

/** One info line per applied batch (counts and a few subnets), one debug line per route. */
export function logRouteChanges(log: Logger, changes: readonly RouteChange[], before: ReadonlyMap<string, KernelRoute | undefined>, failed: ReadonlyMap<string, BatchFailure>): void {
  const ok = changes.filter((c) => !failed.has(c.dst));
  if (ok.length === 0) return;
  const count = { added: 0, replaced: 0, removed: 0 };
  for (const c of ok) {
    const old = before.get(c.dst);
    if (c.op === 'delete') count.removed++;
    else if (old) count.replaced++;
    else count.added++;
    if (!log.isLevelEnabled('debug')) continue;
    if (c.op === 'delete') log.debug({ subnet: c.dst, via: old?.gateway ?? null }, 'route removed');
    else log.debug({ subnet: c.dst, via: c.gateway, dev: c.dev, ...(old && { previousVia: old.gateway ?? null }) }, old ? 'route replaced' : 'route added');
  }
  const subnets = ok.slice(0, NAMED).map((c) => c.dst);
  log.info({ ...count, subnets, ...(ok.length > NAMED && { more: ok.length - NAMED }) }, 'routes programmed');
}
