import type { Ipv4Net } from '../lib/ipv4.js';

/** The cluster network config, validated, with flannel's defaults filled in. */
export interface NetworkConfig {
  readonly network: Ipv4Net;
  readonly subnetLen: number;
  /** Network addresses (uint32) of the lowest and highest subnet that may be leased. */
  readonly subnetMin: number;
  readonly subnetMax: number;
  readonly backend: BackendConfig;
}

export interface BackendConfig {
  /** Lower-cased Backend.Type ("udp" when Backend is missing). */
  readonly type: string;
  /** The Backend object as written; each backend parses its own fields from it. */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** What a node publishes in its lease value (flannel's lease JSON). */
export interface LeaseAttrs {
  readonly publicIP: string;
  readonly publicIPv6: string | null;
  /** Absent for udp: flannel's udp backend writes no BackendType. */
  readonly backendType?: string;
  readonly backendData?: unknown;
}

export interface Lease {
  readonly subnet: Ipv4Net;
  readonly attrs: LeaseAttrs;
  /** etcd lease ID as a decimal string; "0" for a reservation (a key with no etcd lease). */
  readonly etcdLeaseId: string;
  /** etcd mod_revision of the key, for compare-and-swap. */
  readonly modRevision: string;
}

export type LeaseEvent =
  | { readonly type: 'added'; readonly lease: Lease }
  | { readonly type: 'removed'; readonly lease: Lease };
