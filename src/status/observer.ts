export type RouteOp = 'add' | 'replace' | 'delete';

/** What a route-programming backend reports as it works. */
export interface BackendObserver {
  reconcileDuration(seconds: number): void;
  routeChange(op: RouteOp, result: 'ok' | 'error'): void;
}

export type LeaseEventKind = 'acquired' | 'renewed' | 'lost';
/** Why a key under subnets/ is not programmed (the lease gate's reasons, `src/subnet/lease-check.ts`). */
export const LEASE_REJECT_REASONS = ['bad-key', 'bad-value', 'outside-network', 'overlaps-own', 'overlaps-peer'] as const;
export type LeaseRejectReason = (typeof LEASE_REJECT_REASONS)[number];
export type WatchEventType = 'put' | 'delete';

/**
 * What the agent reports as it happens (counters, durations). Gauges are not pushed: the
 * metrics read them from the status at scrape time. Components get these as optional
 * callbacks and never import the metrics module.
 */
export interface AgentObserver extends BackendObserver {
  leaseEvent(event: LeaseEventKind): void;
  watchEvent(type: WatchEventType): void;
  /** A key newly rejected by the lease gate (once per key and reason). */
  leaseRejected(reason: LeaseRejectReason): void;
}

export const NO_OBSERVER: AgentObserver = Object.freeze({
  leaseEvent: () => undefined,
  watchEvent: () => undefined,
  leaseRejected: () => undefined,
  reconcileDuration: () => undefined,
  routeChange: () => undefined,
});
