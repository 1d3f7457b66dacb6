export type RouteOp = 'add' | 'replace' | 'delete';

/** What a route-programming backend reports as it works. */
export interface BackendObserver {
  reconcileDuration(seconds: number): void;
  routeChange(op: RouteOp, result: 'ok' | 'error'): void;
}

export type LeaseEventKind = 'acquired' | 'renewed' | 'lost';
export type WatchEventType = 'put' | 'delete';

/**
 * What the agent reports as it happens (counters, durations). Gauges are not pushed: the
 * metrics read them from the status at scrape time. Components get these as optional
 * callbacks and never import the metrics module.
 */
export interface AgentObserver extends BackendObserver {
  leaseEvent(event: LeaseEventKind): void;
  watchEvent(type: WatchEventType): void;
}

export const NO_OBSERVER: AgentObserver = Object.freeze({
  leaseEvent: () => undefined,
  watchEvent: () => undefined,
  reconcileDuration: () => undefined,
  routeChange: () => undefined,
});
