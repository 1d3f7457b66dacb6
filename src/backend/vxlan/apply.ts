import type { FdbChange, Kernel, NeighChange, RouteChange } from '../../kernel/index.js';
import type { Logger } from '../../log.js';
import type { BackendObserver } from '../../status/observer.js';
import type { VxlanPlan } from './plan.js';
import type { VxlanPeer } from './vtep.js';

/** How many subnets an info line names. */
const NAMED = 10;

export interface Applied {
  /** Peers with an entry that did not apply, by subnet: what the kernel said. */
  readonly failed: ReadonlyMap<string, string>;
  /** Entries no peer wants whose removal failed (one text per entry). */
  readonly staleFailed: readonly string[];
}

/**
 * Applies a plan in flannel's order: neighbours (one `ip -batch`), FDB entries (one
 * `bridge -batch`), routes last (one `ip -batch`), so that a route never points into the tunnel
 * before its peer's MAC and VTEP are known. Failures are returned by peer, never thrown.
 */
export async function applyPlan(kernel: Kernel, plan: VxlanPlan, peers: readonly VxlanPeer[], log: Logger, observer?: BackendObserver): Promise<Applied> {
  const failed = new Map<string, string>();
  const staleFailed: string[] = [];
  const byGateway = new Map(peers.map((p) => [p.gateway, p.subnet]));
  const byMac = new Map(peers.map((p) => [p.vtepMac, p.subnet]));
  const fail = (subnet: string | undefined, stale: string, reason: string) => {
    if (subnet === undefined) staleFailed.push(`${stale}: ${reason}`);
    else if (!failed.has(subnet)) failed.set(subnet, `${stale}: ${reason}`);
  };
  const neigh = plan.neigh.length === 0 ? [] : await kernel.neigh.apply(plan.neigh);
  for (const f of neigh) fail(f.change.op === 'replace' ? byGateway.get(f.change.ip) : undefined, `neigh ${f.change.op} ${f.change.ip}`, f.reason);
  const fdb = plan.fdb.length === 0 ? [] : await kernel.fdb.apply(plan.fdb);
  for (const f of fdb) fail(f.change.op === 'replace' ? byMac.get(f.change.mac) : undefined, `fdb ${f.change.op} ${f.change.mac} dst ${f.change.dst}`, f.reason);
  const routes = plan.routes.length === 0 ? [] : (await kernel.routes.apply(plan.routes)).failed;
  const failedRoutes = new Set(routes.map((f) => f.change));
  for (const f of routes) fail(f.change.op === 'replace' ? f.change.dst : undefined, `route ${f.change.op} ${f.change.dst}`, f.reason);
  for (const c of plan.routes) observer?.routeChange(c.op === 'delete' ? 'delete' : 'replace', failedRoutes.has(c) ? 'error' : 'ok');
  logApplied(log, plan, fdb.length + neigh.length + routes.length);
  return { failed, staleFailed };
}

/** One info line per pass that changed something: counts and a few subnets; every entry at debug. */
function logApplied(log: Logger, plan: VxlanPlan, failures: number): void {
  const total = plan.fdb.length + plan.neigh.length + plan.routes.length;
  if (total === 0) return;
  const count = (cs: readonly (FdbChange | NeighChange | RouteChange)[]) => ({ set: cs.filter((c) => c.op === 'replace').length, removed: cs.filter((c) => c.op === 'delete').length });
  const subnets = [...new Set(plan.routes.map((r) => r.dst))];
  if (log.isLevelEnabled('debug')) for (const c of [...plan.fdb, ...plan.neigh, ...plan.routes]) log.debug({ change: c }, 'vxlan entry');
  const more = subnets.length > NAMED ? { more: subnets.length - NAMED } : {};
  log.info({ fdb: count(plan.fdb), neighbours: count(plan.neigh), routes: count(plan.routes), failed: failures, subnets: subnets.slice(0, NAMED), ...more }, 'vxlan entries programmed');
}
