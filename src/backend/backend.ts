import type { Registry } from 'prom-client';
import type { Kernel } from '../kernel/index.js';
import type { Logger } from '../log.js';
import type { BackendObserver } from '../status/observer.js';
import type { BackendDetails, BackendStatus } from '../status/types.js';
import type { Lease, LeaseAttrs, LeaseEvent, NetworkConfig } from '../subnet/types.js';

/** The underlay interface the node talks to its peers on. */
export interface ExternalInterface {
  readonly name: string;
  readonly address: string;
  readonly mtu: number;
}

/** What a backend is started with. O: its parsed `Backend.*` options; F: its parsed flags. */
export interface BackendContext<O = unknown, F = unknown> {
  readonly logger: Logger;
  readonly network: NetworkConfig;
  readonly ownLease: Lease;
  readonly iface: ExternalInterface;
  /** Runs every kernel change, bound to the agent's network namespace. */
  readonly kernel: Kernel;
  /** `Backend.*` from the network config, as this backend's parseOptions returned them. */
  readonly options: O;
  /** This backend's command-line options, as its parseFlags returned them. */
  readonly flags: F;
  /** Metrics hooks (reconcile passes, route changes); absent in tests that do not care. */
  readonly observer?: BackendObserver;
}

/** A running data path. The agent feeds it lease events; it never reads etcd itself. */
export interface Backend {
  start(): Promise<void>;
  /** The first call carries the full peer set; later calls carry changes, in batches. */
  applyPeerChanges(events: readonly LeaseEvent[]): Promise<void>;
  /** Stops timers and sockets. Routes stay, so that a restart is seamless. */
  stop(): Promise<void>;
  status(): BackendStatus;
}

/** A command-line option a backend defines: `--<name> <value>`, also read from `env`. */
export interface BackendFlag {
  readonly name: string;
  readonly description: string;
  readonly env: string;
  readonly default: string;
  readonly choices?: readonly string[];
}

/** What the lab and the bench need to know of a backend. */
export interface BackendTraits {
  /** Peers behind a router are reached (udp, vxlan); host-gw needs one L2 segment. */
  readonly crossesRouters: boolean;
  /** The agent itself moves the packets (udp): its CPU is part of the data path's cost. */
  readonly carriesPackets: boolean;
}

/** `twill status` lines for a backend's details: [label, text]. */
export type StatusLines = readonly (readonly [string, string])[];

/**
 * One entry of the backend table (src/backend/index.ts): everything the shared code knows of a
 * backend. Options, flags, status details and metrics are the backend's own.
 */
export interface BackendFactory<O = unknown, F = unknown> {
  readonly type: string;
  readonly traits: BackendTraits;
  /** Checks and defaults `Backend.*` (names case-insensitive); throws TWILL_ERR_CONFIG_INVALID naming the field. */
  parseOptions(backend: Readonly<Record<string, unknown>>): O;
  /** Its command-line options; the CLI adds them to `twill agent`. */
  readonly flags: readonly BackendFlag[];
  /** Checks its flags' values (keyed by name, defaults filled in); throws TWILL_ERR_OPTION_INVALID. */
  parseFlags(values: Readonly<Record<string, string>>): F;
  /** The MTU pods should use, given the underlay interface's MTU. */
  mtu(ifaceMtu: number, options: O): number;
  /** What this backend publishes in the node's lease (flannel's shapes). */
  leaseAttrs(publicIP: string, options: O): LeaseAttrs;
  create(ctx: BackendContext<O, F>): Backend;
  /** Registers its own metrics; `details` reads its status details at scrape time (undefined when not running). */
  registerMetrics?(registry: Registry, details: () => BackendDetails | undefined): void;
  /** `twill agent --cleanup`: removes what it made on the node (its device), nothing else; says what it removed. */
  cleanup?(kernel: Kernel, flags: F | undefined): Promise<Readonly<Record<string, unknown>>>;
  /** Renders its status details for `twill status`. */
  describeStatus?(details: BackendDetails): StatusLines;
}
