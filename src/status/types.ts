import type { PeerStatus, TunnelStatus } from '../backend/backend.js';

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
  readonly node: NodeStatus;
  /** The network config in force; null until one was read and validated. */
  readonly network: NetworkStatus | null;
  /** The lease held now; null before the first acquisition and while a lost one is re-acquired. */
  readonly lease: LeaseStatus | null;
  /** null until the backend is created. */
  readonly backend: BackendSummary | null;
  readonly etcd: EtcdStatus;
  readonly peers: readonly PeerStatus[];
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
}

export interface LeaseStatus {
  readonly subnet: string;
  /** null for a reservation (a key with no etcd lease): it never expires. */
  readonly expiresAt: string | null;
  /** Decimal etcd lease ID; "0" for a reservation. */
  readonly etcdLeaseId: string;
  readonly acquiredAt: string;
}

export interface BackendSummary {
  readonly type: string;
  readonly mtu: number;
  readonly device: string | null;
  /** Kernel routes the backend owns now. */
  readonly routes: number;
  /** udp: packets dropped, by reason. */
  readonly drops?: Readonly<Record<string, number>>;
  /** udp: the tunnel's totals. */
  readonly tunnel?: TunnelStatus;
}

export interface EtcdStatus {
  readonly endpoints: readonly string[];
  /** The last RPC or watch signal reached etcd. */
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
