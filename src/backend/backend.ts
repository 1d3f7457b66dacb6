import type { Kernel } from '../kernel/index.js';
import type { Logger } from '../log.js';
import type { Lease, LeaseAttrs, LeaseEvent, NetworkConfig } from '../subnet/types.js';

/** The underlay interface the node talks to its peers on. */
export interface ExternalInterface {
  readonly name: string;
  readonly address: string;
  readonly mtu: number;
}

export interface BackendContext {
  readonly logger: Logger;
  readonly network: NetworkConfig;
  readonly ownLease: Lease;
  readonly iface: ExternalInterface;
  /** Runs every kernel change, bound to the agent's network namespace. */
  readonly kernel: Kernel;
  /** Name for a tunnel device, for backends that make one (--tun-name, default twill0). */
  readonly tunName: string;
}

export type PeerState = 'programmed' | 'unreachable-on-l2' | 'pending' | 'error';

export interface PeerStatus {
  readonly subnet: string;
  readonly publicIP: string;
  readonly backendType: string | null;
  readonly state: PeerState;
  readonly reason?: string;
  readonly since: string;
}

export interface BackendStatus {
  readonly type: string;
  readonly mtu: number;
  readonly device: string | null;
  readonly routes: number;
  readonly peers: readonly PeerStatus[];
}

/** A running data path. The agent feeds it lease events; it never reads etcd itself. */
export interface Backend {
  start(): Promise<void>;
  applyPeerChanges(events: readonly LeaseEvent[]): Promise<void>;
  /** Stops timers and sockets. Routes stay, so that a restart is seamless. */
  stop(): Promise<void>;
  status(): BackendStatus;
}

/** One entry of the backend table (src/backend/index.ts). */
export interface BackendFactory {
  readonly type: string;
  /** The MTU pods should use, given the underlay interface's MTU. */
  mtu(ifaceMtu: number): number;
  /** What this backend publishes in the node's lease (flannel's shapes). */
  leaseAttrs(publicIP: string): LeaseAttrs;
  create(ctx: BackendContext): Backend;
}
