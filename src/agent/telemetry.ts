import type { ExternalInterface } from '../backend/backend.js';
import type { TwillError } from '../errors.js';
import { REJECTED_LISTED, type AgentStatus, type BackendStatus, type BackendSummary, type EtcdStatus, type LeaseStatus, type NetworkStatus, type ReadinessCondition, type RejectedLease } from '../status/types.js';
import { formatCidr, formatIp } from '../lib/ipv4.js';
import type { Lease, NetworkConfig } from '../subnet/types.js';
import { NO_OBSERVER, type AgentObserver } from '../status/observer.js';

export interface TelemetryOptions {
  readonly nodeName: string;
  readonly etcdEndpoints: readonly string[];
  readonly version: string;
  readonly observer?: AgentObserver;
  readonly now?: () => Date;
  /** After every etcd contact signal, with the connected state it leaves and, when down, why (the agent's outage log). */
  readonly onEtcdContact?: (connected: boolean, why: TwillError | null) => void;
}

/** What the agent holds when status() is asked; the telemetry adds what it recorded. */
export interface AgentParts {
  readonly state: string;
  readonly iface: ExternalInterface | null;
  readonly config: NetworkConfig | null;
  readonly backend: BackendStatus | null;
  readonly watchRevision: string | null;
}

const CONDITIONS: readonly ReadinessCondition[] = ['lease', 'backend', 'subnet-file'];

/**
 * What the agent learns as it runs and reports in /v1/status, /readyz and the metrics:
 * readiness (lease held, backend programmed, subnet.env written), the held lease with its
 * expiry, and whether etcd answers. The agent calls the hooks; nothing here does I/O.
 */
export class Telemetry {
  private readonly met = new Set<ReadinessCondition>();
  private lease: LeaseStatus | null = null;
  /** The last RPC reached etcd; with why the last one did not. */
  private rpcReached = false;
  private rpcError: TwillError | null = null;
  /** The lease watch's stream; null before there is one (then it counts for nothing). */
  private watchConnected: boolean | null = null;
  private watchError: TwillError | null = null;
  private lastContact: Date | null = null;
  /** Fields of etcd's network config that differ from the one in force. */
  private configChanges: readonly string[] = [];
  private rejected: readonly RejectedLease[] = [];
  /** Also handed to the backend (reconcile passes, route changes). */
  readonly observer: AgentObserver;
  private readonly now: () => Date;

  constructor(private readonly opts: TelemetryOptions) {
    this.observer = opts.observer ?? NO_OBSERVER;
    this.now = opts.now ?? (() => new Date());
  }

  leaseAcquired(lease: Lease, ttlSeconds: number): void {
    this.lease = { subnet: formatCidr(lease.subnet), expiresAt: this.expiry(lease, ttlSeconds), etcdLeaseId: lease.etcdLeaseId, acquiredAt: this.now().toISOString() };
    this.met.add('lease');
    this.observer.leaseEvent('acquired');
  }

  leaseRenewed(lease: Lease, ttlSeconds: number): void {
    if (this.lease) this.lease = { ...this.lease, expiresAt: this.expiry(lease, ttlSeconds) };
    this.observer.leaseEvent('renewed');
  }

  /** Not ready until a lease is held again. */
  leaseLost(): void {
    this.lease = null;
    this.met.delete('lease');
    this.observer.leaseEvent('lost');
  }

  /** A backend is (re)starting: not ready until its first peer batch is applied. */
  backendStarting(): void {
    this.met.delete('backend');
  }

  backendProgrammed(): void {
    this.met.add('backend');
  }

  subnetFileWritten(): void {
    this.met.add('subnet-file');
  }

  /** An RPC came back: `reached` is false only when etcd could not be reached at all (`err` says why). */
  etcdRpc(reached: boolean, err?: TwillError): void {
    this.rpcReached = reached;
    this.rpcError = reached ? null : (err ?? null);
    this.etcdContact(reached);
  }

  /** The lease watch's stream broke (`err` says why) or is up. A break also voids the last RPC's answer: contact is back only once an RPC reaches etcd after it. */
  etcdWatch(connected: boolean, err?: TwillError): void {
    if (!connected) this.rpcReached = false;
    this.watchConnected = connected;
    this.watchError = connected ? null : (err ?? null);
    this.etcdContact(connected);
  }

  /** Connected: the last RPC reached etcd and the lease watch, once there is one, is up. */
  get etcdConnected(): boolean {
    return this.rpcReached && this.watchConnected !== false;
  }

  private etcdContact(reached: boolean): void {
    if (reached) this.lastContact = this.now();
    const connected = this.etcdConnected;
    this.opts.onEtcdContact?.(connected, connected ? null : (this.watchConnected === false ? this.watchError : this.rpcError));
  }

  /** etcd's network config differs from the running one in these fields (empty: it agrees again). */
  configChanged(fields: readonly string[]): void {
    this.configChanges = fields;
  }

  watchEvent(type: 'put' | 'delete'): void {
    this.lastContact = this.now();
    this.observer.watchEvent(type);
  }

  /** The lease gate's verdicts: `fresh` are new (counted), `all` is every key rejected now. */
  leasesRejected(fresh: readonly RejectedLease[], all: readonly RejectedLease[]): void {
    for (const r of fresh) this.observer.leaseRejected(r.reason);
    this.rejected = all;
  }

  /** `backendProblem`: the backend reports its data path broken, so it counts as not programmed. */
  waitingFor(backendProblem = false): ReadinessCondition[] {
    return CONDITIONS.filter((c) => !this.met.has(c) || (c === 'backend' && backendProblem));
  }

  status(parts: AgentParts): AgentStatus {
    const problem = parts.backend?.problem;
    const waitingFor = this.waitingFor(problem !== undefined);
    const { backend, peers } = splitPeers(parts.backend);
    return {
      version: this.opts.version,
      state: parts.state,
      ready: waitingFor.length === 0 && (parts.state === 'starting' || parts.state === 'running'),
      waitingFor,
      ...(problem === undefined ? {} : { reason: `backend: ${problem}` }),
      node: { name: this.opts.nodeName, publicIP: parts.iface?.address ?? null, iface: parts.iface?.name ?? null },
      network: parts.config && networkStatus(parts.config, this.configChanges),
      lease: this.lease,
      backend,
      etcd: this.etcdStatus(parts.watchRevision),
      peers,
      rejectedLeases: { total: this.rejected.length, leases: this.rejected.slice(0, REJECTED_LISTED) },
    };
  }

  private etcdStatus(watchRevision: string | null): EtcdStatus {
    return { endpoints: this.opts.etcdEndpoints, connected: this.etcdConnected, lastContact: this.lastContact?.toISOString() ?? null, watchRevision };
  }

  private expiry(lease: Lease, ttlSeconds: number): string | null {
    if (lease.etcdLeaseId === '0' || !Number.isFinite(ttlSeconds)) return null;
    return new Date(this.now().getTime() + ttlSeconds * 1000).toISOString();
  }
}

/** The backend's status less its peers, which /v1/status lists at the top level. */
function splitPeers(b: BackendStatus | null): { backend: BackendSummary | null; peers: BackendStatus['peers'] } {
  if (!b) return { backend: null, peers: [] };
  const { peers, ...backend } = b;
  return { backend, peers };
}

function networkStatus(c: NetworkConfig, changedInEtcd: readonly string[]): NetworkStatus {
  return { network: formatCidr(c.network), subnetLen: c.subnetLen, subnetMin: formatIp(c.subnetMin), subnetMax: formatIp(c.subnetMax), backendType: c.backend.type, changedInEtcd };
}
