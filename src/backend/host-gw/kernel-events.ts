import { inMainTable, type KernelEvent, type KernelRoute, type RouteChange } from '../../kernel/index.js';

/** What a kernel event means to host-gw: an echo of its own change, drift to repair, or nothing. */
export type EventVerdict = 'echo' | 'drift' | 'ignore';

export interface OwnRoutes {
  /** Our routes as we believe the kernel has them. */
  readonly model: ReadonlyMap<string, KernelRoute>;
  /** Changes sent to the kernel and not yet confirmed (their events may come before the reply). */
  readonly inFlight: ReadonlyMap<string, RouteChange>;
  readonly dev: string;
  readonly proto: number;
}

/**
 * Pure. Our own route events are echoes when they match what we sent or believe; anything else
 * touching our routes is drift. A change to the node's other routes in table main, or to our
 * device (IPv4 drops a downed device's routes without an event), may move an L2 verdict or our
 * routes: drift too, and the full pass that follows sorts out what changed.
 */
export function judgeKernelEvent(e: KernelEvent, own: OwnRoutes): EventVerdict {
  if (e.kind === 'device') return e.dev === own.dev ? 'drift' : 'ignore';
  if (!inMainTable(e)) return 'ignore';
  const { route } = e;
  if (route.proto !== own.proto) return 'drift';
  const sent = own.inFlight.get(route.dst);
  if (e.deleted) return sent?.op === 'delete' || !own.model.has(route.dst) ? 'echo' : 'drift';
  const believed = own.model.get(route.dst);
  const matches = (r: { gateway?: string; dev?: string } | undefined) => r !== undefined && r.gateway === route.gateway && r.dev === route.dev;
  return (sent?.op === 'replace' && matches(sent)) || matches(believed) ? 'echo' : 'drift';
}
