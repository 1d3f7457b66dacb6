import type { TwillError } from '../errors.js';
import type { Ipv4Net } from '../lib/ipv4.js';
import type { Lease, LeaseAttrs, LeaseEvent } from './types.js';

/** A key under subnets/ that is not a lease: the key does not parse, or its value does not. */
export interface UnreadableLease {
  readonly key: string;
  readonly reason: 'bad-key' | 'bad-value';
  /** The subnet, when the key parses (a bad value over a lease removes that lease). */
  readonly subnet: Ipv4Net | null;
}

/** A point-in-time list of every lease, and the etcd revision it was read at. */
export interface LeaseSnapshot {
  readonly leases: readonly Lease[];
  readonly revision: string;
  /** Keys under subnets/ that are not leases (rejected and counted, never programmed). */
  readonly unreadable: readonly UnreadableLease[];
}

/** One watch response: etcd delivers events batched, and they travel on as one batch. */
export interface LeaseWatchBatch {
  readonly events: readonly LeaseEvent[];
  readonly unreadable: readonly UnreadableLease[];
  /** Every key deleted in this response, lease or not (so that rejected keys can be forgotten). */
  readonly gone: readonly string[];
  /** The revision of the response's last event. */
  readonly revision: string;
}

/** Errors reach the handlers already translated (fromEtcd): callers decide by `isTransient`. */
export interface LeaseWatchHandlers {
  onBatch(batch: LeaseWatchBatch): void;
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
  /** `timeoutMs`: this read's deadline (default the registry's own), linearizable as every read here. */
  getConfig(options?: { readonly timeoutMs?: number }): Promise<string | null>;
  putConfig(text: string): Promise<void>;
  /** Writes the config only if there is none (one transaction); false when one was there already. */
  createConfig(text: string): Promise<boolean>;
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
