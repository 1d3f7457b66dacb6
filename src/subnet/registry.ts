import type { TwillError } from '../errors.js';
import type { Ipv4Net } from '../lib/ipv4.js';
import type { Lease, LeaseAttrs, LeaseEvent } from './types.js';

/** A point-in-time list of every lease, and the etcd revision it was read at. */
export interface LeaseSnapshot {
  readonly leases: readonly Lease[];
  readonly revision: string;
  /** Keys under subnets/ whose value could not be read (logged, otherwise ignored). */
  readonly unreadable: readonly string[];
}

/** Errors reach the handlers already translated (fromEtcd): callers decide by `isTransient`. */
export interface LeaseWatchHandlers {
  onEvent(event: LeaseEvent, revision: string): void;
  /** The watch has ended (etcd cancelled it: compacted revision, permission): re-list if transient. */
  onReset(err: TwillError): void;
  /** The watch stream broke (with why) or is back; the client reconnects it by itself. */
  onConnection(connected: boolean, err?: TwillError): void;
}

export interface LeaseWatch {
  close(): Promise<void>;
}

/** The registry: etcd reads, writes and watch, with no policy. Errors leave it as TwillErrors. */
export interface LeaseRegistry {
  getConfig(): Promise<string | null>;
  putConfig(text: string): Promise<void>;
  listLeases(): Promise<LeaseSnapshot>;
  /** Creates the key only if it does not exist; null when another node got there first. */
  createLease(subnet: Ipv4Net, attrs: LeaseAttrs, ttlSeconds: number): Promise<Lease | null>;
  /**
   * Takes over an existing lease (same key): keeps its etcd lease when it is alive and has the
   * wanted TTL, keeps a reservation a reservation, and writes our attrs. Null when the key
   * changed since it was read.
   */
  takeOverLease(lease: Lease, attrs: LeaseAttrs, ttlSeconds: number): Promise<Lease | null>;
  /** Refreshes the etcd lease; resolves to the remaining TTL, or throws TWILL_ERR_LEASE_LOST. */
  renewLease(lease: Lease): Promise<number>;
  deleteLease(subnet: Ipv4Net): Promise<void>;
  /** Best effort: frees an etcd lease that no longer holds our key. */
  revokeLease(etcdLeaseId: string): Promise<void>;
  watchLeases(fromRevision: string, handlers: LeaseWatchHandlers): LeaseWatch;
  close(): void;
}
