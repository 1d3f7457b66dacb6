import { containsNet, formatCidr, sameNet, size, type Ipv4Net } from '../lib/ipv4.js';
import { leaseKey } from './lease-format.js';
import type { UnreadableLease } from './registry.js';
import type { LeaseBatchMeta } from './lease-watch.js';
import type { Lease, LeaseEvent } from './types.js';

/** Why a key under subnets/ is not programmed; stable strings (metric label, status, logs). */
export const REJECT_REASONS = ['bad-key', 'bad-value', 'outside-network', 'overlaps-own', 'overlaps-peer'] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** A key that is not programmed, as the status lists it. */
export interface Rejection {
  /** The etcd key (a lease's key in its IPv4 form). */
  readonly key: string;
  /** null when the key does not parse. */
  readonly subnet: string | null;
  /** null when the value does not parse. */
  readonly publicIP: string | null;
  readonly reason: RejectReason;
  readonly detail: string;
  /** ISO 8601: when this key was first rejected for this reason. */
  readonly since: string;
}

export interface GateResult {
  /** What the backend is to apply: only leases that pass, and removals of leases that had passed. */
  readonly events: LeaseEvent[];
  /** Rejections new since the last call (a key, or a key's reason, not rejected before): log and count these. */
  readonly rejected: Rejection[];
}

export interface LeaseGateOptions {
  readonly network: Ipv4Net;
  readonly own: Ipv4Net;
  /** The etcd prefix, to name leases by their keys. */
  readonly etcdPrefix: string;
  readonly now?: () => Date;
}

interface Entry {
  readonly id: string;
  readonly key: string;
  /** null for a key that is not a lease. */
  lease: Lease | null;
  /** Seniority: the order the gate first saw the lease in (a batch by modRevision). */
  seq: number;
  state: 'accepted' | 'rejected' | 'own';
  rejection: Rejection | null;
}

type Verdict = 'ok' | 'own' | { readonly reason: RejectReason; readonly detail: string };


const NOT_A_LISTING: LeaseBatchMeta = { gone: [], complete: false };

/**
 * The gate between the lease stream and the backend. A lease is programmed only if its subnet
 * lies inside the Network, stays clear of this node's subnet, and overlaps no lease accepted
 * before it. Another prefix length than SubnetLen is accepted, as flannel does: flannel checks
 * SubnetLen only for its own lease (isSubnetConfigCompat) and routes any peer lease.
 * Between overlapping peers the older wins: the one accepted first; within one batch, the lower
 * modRevision. An accepted lease is only ever displaced by its own removal or a new own subnet.
 * Pure: no I/O; the agent logs, counts and shows what it returns.
 */
export class LeaseGate {
  private own: Ipv4Net;
  private readonly entries = new Map<string, Entry>();
  private readonly accepted = new DisjointNets();
  private seq = 0;
  private readonly now: () => Date;

  constructor(private readonly opts: LeaseGateOptions) {
    this.own = opts.own;
    this.now = opts.now ?? (() => new Date());
  }

  /**
   * One batch of the lease stream: its events (in order), the keys in it that are not leases,
   * and (meta) the keys it deleted and whether it is a whole listing.
   */
  apply(events: readonly LeaseEvent[], unreadable: readonly UnreadableLease[], meta: LeaseBatchMeta = NOT_A_LISTING): GateResult {
    const out: GateResult = { events: [], rejected: [] };
    this.forgetUnreadable(meta, unreadable);
    // One verdict per key: its last event in the batch counts (a re-list has one per key anyway).
    const last = new Map<string, LeaseEvent>();
    for (const e of events) last.set(formatCidr(e.lease.subnet), e);
    const candidates: Entry[] = [];
    const fresh: Lease[] = [];
    let freed = false;
    for (const [id, e] of last) {
      const entry = this.entries.get(id);
      if (e.type === 'removed') freed = this.drop(id, out) || freed;
      else if (!entry?.lease) fresh.push(e.lease);
      else if (entry.state === 'accepted') this.update(entry, e.lease, out);
      else {
        entry.lease = e.lease; // a new value over a key kept out (or our own): judged again, seniority kept
        candidates.push(entry);
      }
    }
    for (const u of unreadable) {
      const id = u.subnet ? formatCidr(u.subnet) : u.key;
      if (last.get(id)?.type === 'added') continue; // a readable value came later in the same response
      const entry = this.entries.get(id);
      if (entry?.state === 'accepted') freed = this.drop(id, out) || freed; // a removal the stream did not send
      const e = this.entries.get(id) ?? this.enter(id, u.key, null);
      e.lease = null;
      this.reject(e, u.reason, u.reason === 'bad-key' ? 'the key is not <a.b.c.d>-<prefix length>' : 'the value is not lease JSON with an IPv4 PublicIP', out);
    }
    fresh.sort((a, b) => compareRevisions(a.modRevision, b.modRevision));
    for (const l of fresh) candidates.push(this.enter(formatCidr(l.subnet), leaseKey(this.opts.etcdPrefix, l.subnet), l));
    if (freed) candidates.push(...this.waiting('overlaps-peer'));
    this.judgeAll(candidates, out);
    return out;
  }

  /** A key that was not a lease and is gone (deleted, or absent from a re-list) is no longer reported. */
  private forgetUnreadable(meta: LeaseBatchMeta, unreadable: readonly UnreadableLease[]): void {
    const gone = new Set(meta.gone);
    const present = new Set(unreadable.map((u) => u.key));
    for (const [id, e] of this.entries) {
      if (e.lease !== null || e.state !== 'rejected') continue;
      if (gone.has(e.key) || (meta.complete && !present.has(e.key))) this.entries.delete(id);
    }
  }

  /** This node's subnet changed (a lease re-acquired elsewhere): what that lets in and shuts out. */
  setOwn(own: Ipv4Net): GateResult {
    const out: GateResult = { events: [], rejected: [] };
    if (sameNet(own, this.own)) return out;
    this.own = own;
    const candidates = [...this.entries.values()].filter((e) => e.state === 'own' || e.rejection?.reason === 'overlaps-own' || e.rejection?.reason === 'overlaps-peer');
    for (const e of this.entries.values()) {
      if (e.state !== 'accepted' || !overlaps(e.lease!.subnet, own)) continue;
      this.unaccept(e, out);
      candidates.push(e);
    }
    this.judgeAll(candidates, out);
    return out;
  }

  /** The leases that pass, for a backend that starts afresh. */
  acceptedLeases(): Lease[] {
    return [...this.entries.values()].filter((e) => e.state === 'accepted').map((e) => e.lease!);
  }

  /** Every key rejected now, oldest first. */
  rejections(): Rejection[] {
    return [...this.entries.values()].flatMap((e) => (e.rejection ? [e.rejection] : [])).sort((a, b) => a.since.localeCompare(b.since));
  }

  private enter(id: string, key: string, lease: Lease | null): Entry {
    const e: Entry = { id, key, lease, seq: this.seq++, state: 'rejected', rejection: null };
    this.entries.set(id, e);
    return e;
  }

  /** A key gone: a removal for the backend if it had the lease; a rejected key just goes. Returns whether room was freed. */
  private drop(id: string, out: GateResult): boolean {
    const e = this.entries.get(id);
    if (!e) return false;
    const was = e.state;
    if (was === 'accepted') this.unaccept(e, out);
    this.entries.delete(id);
    return was === 'accepted';
  }

  private unaccept(e: Entry, out: GateResult): void {
    this.accepted.delete(e.lease!.subnet);
    e.state = 'rejected';
    out.events.push({ type: 'removed', lease: e.lease! });
  }

  /** A new value over an accepted lease: re-checked in place (it keeps its seniority). */
  private update(e: Entry, lease: Lease, out: GateResult): void {
    const v = this.verdict(lease.subnet, e);
    if (v === 'ok') {
      e.lease = lease;
      out.events.push({ type: 'added', lease });
      return;
    }
    this.unaccept(e, out);
    e.lease = lease;
    this.judge(e, out);
  }

  private waiting(reason: RejectReason): Entry[] {
    return [...this.entries.values()].filter((e) => e.rejection?.reason === reason);
  }

  private judgeAll(candidates: Entry[], out: GateResult): void {
    const seen = new Set<string>();
    for (const e of candidates.sort((a, b) => a.seq - b.seq)) {
      if (seen.has(e.id) || this.entries.get(e.id) !== e) continue;
      seen.add(e.id);
      this.judge(e, out);
    }
  }

  /** Decides a lease that is not accepted now. */
  private judge(e: Entry, out: GateResult): void {
    const lease = e.lease!;
    const v = this.verdict(lease.subnet, e);
    if (v === 'own') {
      e.state = 'own'; // this node's own key: the agent deals with it, the backend never sees it
      e.rejection = null;
    } else if (v === 'ok') {
      this.accepted.add(lease.subnet, e);
      e.state = 'accepted';
      e.rejection = null;
      out.events.push({ type: 'added', lease });
    } else {
      this.reject(e, v.reason, v.detail, out);
    }
  }

  private verdict(subnet: Ipv4Net, self: Entry): Verdict {
    const { network } = this.opts;
    if (sameNet(subnet, this.own)) return 'own';
    if (!containsNet(network, subnet)) return { reason: 'outside-network', detail: `${formatCidr(subnet)} is not inside the Network ${formatCidr(network)}` };
    if (overlaps(subnet, this.own)) return { reason: 'overlaps-own', detail: `${formatCidr(subnet)} overlaps this node's subnet ${formatCidr(this.own)}` };
    const other = this.accepted.overlapping(subnet);
    if (other && other !== self) {
      const l = other.lease!;
      return { reason: 'overlaps-peer', detail: `${formatCidr(subnet)} overlaps ${formatCidr(l.subnet)} (PublicIP ${l.attrs.publicIP}), accepted before it` };
    }
    return 'ok';
  }

  private reject(e: Entry, reason: RejectReason, detail: string, out: GateResult): void {
    const prev = e.rejection;
    const again = prev?.reason === reason;
    // An entry's id is its subnet, or the raw key of a key that does not parse.
    const subnet = e.lease ? formatCidr(e.lease.subnet) : e.id === e.key ? null : e.id;
    e.state = 'rejected';
    e.rejection = { key: e.key, subnet, publicIP: e.lease?.attrs.publicIP ?? null, reason, detail, since: again ? prev.since : this.now().toISOString() };
    if (!again) out.rejected.push(e.rejection);
  }
}

/** Whether two networks share an address (for CIDRs: one contains the other). */
export function overlaps(a: Ipv4Net, b: Ipv4Net): boolean {
  return containsNet(a, b) || containsNet(b, a);
}

function compareRevisions(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

const lastAddr = (n: Ipv4Net): number => n.addr + size(n) - 1;

/** The accepted nets: pairwise disjoint, sorted by address, so an overlap test looks at two neighbours. */
class DisjointNets {
  private readonly items: { readonly net: Ipv4Net; readonly entry: Entry }[] = [];

  /** The entry whose net overlaps `net`, if any (at most one can contain it; any it contains starts at or after it). */
  overlapping(net: Ipv4Net): Entry | undefined {
    const i = this.lowerBound(net.addr);
    const next = this.items[i];
    if (next && next.net.addr <= lastAddr(net)) return next.entry;
    const prev = this.items[i - 1];
    if (prev && lastAddr(prev.net) >= net.addr) return prev.entry;
    return undefined;
  }

  add(net: Ipv4Net, entry: Entry): void {
    this.items.splice(this.lowerBound(net.addr), 0, { net, entry });
  }

  delete(net: Ipv4Net): void {
    const i = this.lowerBound(net.addr);
    if (this.items[i] && sameNet(this.items[i].net, net)) this.items.splice(i, 1);
  }

  /** The index of the first net starting at or after `addr`. */
  private lowerBound(addr: number): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.items[mid]!.net.addr < addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
