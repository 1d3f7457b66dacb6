import type { LeaseRejectReason } from './observer.js';

/**
 * The JSON of `GET /v1/status`, in one place: the API serves it, `twill status` and
 * `twill lab status` render it, and the metrics read their gauges from it.
 * Times are ISO 8601 strings; absent things are null, never missing.
 */
export interface AgentStatus {
  readonly version: string;
  /** Lifecycle state: created, starting, running, stopping, stopped. */
  readonly state: string;
  readonly ready: boolean;
  /** What readiness still waits for (empty when ready). */
  readonly waitingFor: readonly ReadinessCondition[];
  /** Why, when a met condition broke again (e.g. the backend's `problem`); absent otherwise. */
  readonly reason?: string;
  readonly node: NodeStatus;
  /** The network config in force; null until one was read and validated. */
  readonly network: NetworkStatus | null;
  /** The lease held now; null before the first acquisition and while a lost one is re-acquired. */
  readonly lease: LeaseStatus | null;
  /** null until the backend is created. */
  readonly backend: BackendSummary | null;
  readonly etcd: EtcdStatus;
  readonly peers: readonly PeerStatus[];
  /** Keys under subnets/ the agent refuses to program, and why. */
  readonly rejectedLeases: RejectedLeases;
}

/** At most REJECTED_LISTED keys are listed (oldest first); `total` counts them all. */
export interface RejectedLeases {
  readonly total: number;
  readonly leases: readonly RejectedLease[];
}

export const REJECTED_LISTED = 100;

export interface RejectedLease {
  /** The etcd key (a lease's key in its IPv4 form). */
  readonly key: string;
  /** null when the key does not parse. */
  readonly subnet: string | null;
  /** null when the value does not parse. */
  readonly publicIP: string | null;
  readonly reason: LeaseRejectReason;
  readonly detail: string;
  /** When this key was first rejected for this reason. */
  readonly since: string;
}

export type ReadinessCondition = 'lease' | 'backend' | 'subnet-file';

export interface NodeStatus {
  /** os.hostname() unless --node-name is given. */
  readonly name: string;
  /** null until the interface is resolved. */
  readonly publicIP: string | null;
  readonly iface: string | null;
}

export interface NetworkStatus {
  readonly network: string;
  readonly subnetLen: number;
  readonly subnetMin: string;
  readonly subnetMax: string;
  readonly backendType: string;
  /**
   * The fields in which etcd's config now differs from this one (`SubnetLen`, `Backend.Port`;
   * `(deleted)`, `(invalid)`): the agent cannot apply them live, a restart does. Empty while
   * etcd agrees (checked every 5 s).
   */
  readonly changedInEtcd: readonly string[];
}

export interface LeaseStatus {
  readonly subnet: string;
  /** null for a reservation (a key with no etcd lease): it never expires. */
  readonly expiresAt: string | null;
  /** Decimal etcd lease ID; "0" for a reservation. */
  readonly etcdLeaseId: string;
  readonly acquiredAt: string;
}

/** `skipped`: a lease of another BackendType, which a route-programming backend (vxlan) leaves alone, as flannel does. */
export type PeerState = 'programmed' | 'unreachable-on-l2' | 'pending' | 'error' | 'skipped';

/** Packets and bytes a backend carried itself: "in" = received from peers, "out" = sent to peers. */
export interface TrafficStatus {
  readonly packetsIn: number;
  readonly bytesIn: number;
  readonly packetsOut: number;
  readonly bytesOut: number;
}

export interface PeerStatus {
  readonly subnet: string;
  readonly publicIP: string;
  readonly backendType: string | null;
  readonly state: PeerState;
  readonly reason?: string;
  readonly since: string;
  /** Backends that carry packets themselves (udp): this peer's share. */
  readonly traffic?: TrafficStatus;
  /** How the backend reaches this peer where it has a choice: vxlan's `direct` (DirectRouting, same L2 segment) or `vxlan`. */
  readonly via?: string;
}

/** A backend's own status fields, in its own shape (JSON-safe values only). */
export type BackendDetails = Readonly<Record<string, unknown>>;

/** What every backend reports: the common fields, its peers, and its own details under one field. */
export interface BackendStatus {
  readonly type: string;
  readonly mtu: number;
  readonly device: string | null;
  /** Kernel routes (or tunnel entries) the backend owns now. */
  readonly routes: number;
  readonly peers: readonly PeerStatus[];
  /** The backend's own shape (udp: its tunnel totals and drops); absent when it has none. */
  readonly details?: BackendDetails;
  /** Set while the backend's data path is broken (why, one line); the agent is not ready meanwhile. */
  readonly problem?: string;
}

/** The backend in /v1/status: its status less the peers, which the agent lists at the top level. */
export type BackendSummary = Omit<BackendStatus, 'peers'>;

export interface EtcdStatus {
  readonly endpoints: readonly string[];
  /**
   * etcd answers: the last RPC reached it (a linearizable read every 5 s with a 3 s deadline
   * among them) and the lease watch, once started, is connected (it requires a leader).
   */
  readonly connected: boolean;
  readonly lastContact: string | null;
  /** The revision the lease watch has seen; null before the first list. */
  readonly watchRevision: string | null;
}

/** What the API reads; the agent implements it, tests fake it. */
export interface StatusSource {
  status(): AgentStatus;
  /** /healthz: false once the agent is stopping or stopped. */
  live(): boolean;
}
