import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LEASE_REJECT_REASONS, type AgentObserver } from '../status/observer.js';
import type { BackendFactory } from '../backend/backend.js';
import type { AgentStatus, BackendDetails } from '../status/types.js';

export interface MetricsOptions {
  /** Read at scrape time for every gauge and each backend's counters (once per scrape). */
  readonly status: () => AgentStatus;
  /** Each backend registers its own metrics, read from its status details. */
  readonly backends: readonly BackendFactory[];
  readonly version: string;
  /** Process metrics (cpu, memory, event loop); off in tests that count samples. */
  readonly defaultMetrics?: boolean;
}

export interface Metrics {
  /** A registry of our own: nothing goes into prom-client's global one. */
  readonly registry: Registry;
  readonly observer: AgentObserver;
}

const LEASE_EVENTS = ['acquired', 'renewed', 'lost'] as const;
const WATCH_TYPES = ['put', 'delete'] as const;
const ROUTE_OPS = ['add', 'replace', 'delete'] as const;
const RESULTS = ['ok', 'error'] as const;

/**
 * twill's metrics. Events (lease, watch, route changes, reconcile passes) come in through the
 * observer; everything that is a state (peers, routes, lease expiry, etcd up, a backend's own
 * counters) is read from the status when Prometheus scrapes, so a packet path is never touched.
 */
export function createMetrics(opts: MetricsOptions): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) addProcessMetrics(registry);
  const status = oncePerTick(opts.status);
  const registers = [registry];

  const leaseEvents = new Counter({ name: 'twill_lease_events_total', help: 'Lease events of this node, by event (acquired, renewed, lost).', labelNames: ['event'], registers });
  const watchEvents = new Counter({ name: 'twill_etcd_watch_events_total', help: 'Events received on the etcd lease watch, by type (put, delete).', labelNames: ['type'], registers });
  const rejected = new Counter({ name: 'twill_lease_rejected_total', help: 'Keys under subnets/ the agent refused to program, by reason (bad-key, bad-value, outside-network, overlaps-own, overlaps-peer); once per key and reason.', labelNames: ['reason'], registers });
  const routeChanges = new Counter({ name: 'twill_route_changes_total', help: 'Kernel route changes made by the backend, by op (add, replace, delete) and result (ok, error).', labelNames: ['op', 'result'], registers });
  const reconcile = new Histogram({
    name: 'twill_reconcile_duration_seconds',
    help: 'Duration of one backend reconcile pass (read kernel routes, diff, apply).',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  for (const event of LEASE_EVENTS) leaseEvents.inc({ event }, 0);
  for (const type of WATCH_TYPES) watchEvents.inc({ type }, 0);
  for (const reason of LEASE_REJECT_REASONS) rejected.inc({ reason }, 0);
  for (const op of ROUTE_OPS) for (const result of RESULTS) routeChanges.inc({ op, result }, 0);

  registerStateMetrics(registers, status, opts.version);
  for (const factory of opts.backends) factory.registerMetrics?.(registry, () => backendDetails(status(), factory.type));

  const observer: AgentObserver = {
    leaseEvent: (event) => leaseEvents.inc({ event }),
    watchEvent: (type) => watchEvents.inc({ type }),
    leaseRejected: (reason) => rejected.inc({ reason }),
    reconcileDuration: (seconds) => reconcile.observe(seconds),
    routeChange: (op, result) => routeChanges.inc({ op, result }),
  };
  return { registry, observer };
}

function registerStateMetrics(registers: Registry[], status: () => AgentStatus, version: string): void {
  new Gauge({
    name: 'twill_peers',
    help: 'Peers (other nodes with a lease) the backend knows.',
    registers,
    collect() {
      this.set(status().peers.length);
    },
  });
  new Gauge({
    name: 'twill_routes',
    help: 'Kernel routes the backend owns now, by backend.',
    labelNames: ['backend'],
    registers,
    collect() {
      this.reset();
      const b = status().backend;
      if (b) this.set({ backend: b.type }, b.routes);
    },
  });
  new Gauge({
    name: 'twill_lease_expiry_timestamp_seconds',
    help: "When this node's lease expires unless renewed (Unix time; +Inf for a reservation), by subnet. Absent while no lease is held.",
    labelNames: ['subnet'],
    registers,
    collect() {
      this.reset();
      const lease = status().lease;
      if (lease) this.set({ subnet: lease.subnet }, lease.expiresAt === null ? Infinity : Date.parse(lease.expiresAt) / 1000);
    },
  });
  new Gauge({
    name: 'twill_etcd_up',
    help: '1 while etcd answers (the last RPC reached it and the lease watch is connected), else 0.',
    registers,
    collect() {
      this.set(status().etcd.connected ? 1 : 0);
    },
  });
  new Gauge({
    name: 'twill_config_stale',
    help: "1 while etcd's network config differs from the one the agent runs on (a restart applies it), else 0.",
    registers,
    collect() {
      this.set((status().network?.changedInEtcd.length ?? 0) > 0 ? 1 : 0);
    },
  });
  new Gauge({
    name: 'twill_ready',
    help: '1 when /readyz answers 200: lease held, backend programmed, subnet file written.',
    registers,
    collect() {
      this.set(status().ready ? 1 : 0);
    },
  });
  new Gauge({ name: 'twill_build_info', help: 'Always 1; the labels name the build.', labelNames: ['version', 'nodejs'], registers }).set(
    { version, nodejs: process.version },
    1,
  );
}

/** How often the event-loop lag is sampled: prom-client's 10 ms default alone cost an idle agent 0.6 % of a core. */
const EVENT_LOOP_SAMPLE_MS = 100;

/**
 * prom-client's process and Node.js metrics, less three gauges named *_total that
 * `promtool check metrics` rejects ("non-counter metrics should not have _total suffix");
 * their per-type twins (nodejs_active_handles{type}, ...) stay.
 */
function addProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
}

/** A backend's details while it is the one running. */
function backendDetails(status: AgentStatus, type: string): BackendDetails | undefined {
  return status.backend?.type === type ? status.backend.details : undefined;
}

/** One status() per scrape: every collect() of a scrape runs in the same tick. */
function oncePerTick<T>(fn: () => T): () => T {
  let cached: { value: T } | null = null;
  return () => {
    if (cached) return cached.value;
    cached = { value: fn() };
    queueMicrotask(() => (cached = null));
    return cached.value;
  };
}
