import { TwillError } from '../../src/errors.js';
import type { Ipv4Net } from '../../src/lib/ipv4.js';
import { configKey, formatLeaseValue, leaseKey, subnetsPrefix } from '../../src/subnet/lease-format.js';
import type { LeaseRegistry, LeaseSnapshot, LeaseWatch, LeaseWatchHandlers, UnreadableLease } from '../../src/subnet/registry.js';
import type { Lease, LeaseAttrs } from '../../src/subnet/types.js';
import { isUnreadable, readLease, watchBatch, type KvChange } from '../../src/subnet/watch-batch.js';
import type { RegistryClock } from './manual-clock.js';

export interface MemoryRegistryOptions {
  readonly prefix?: string;
  /** Default: the system clock, with expiry checked every 100 ms as etcd's lessor does every 500. */
  readonly clock?: RegistryClock;
}

interface Kv {
  readonly value: string;
  /** etcd lease ID; '0' = no lease (a reservation). */
  readonly lease: string;
  readonly modRevision: bigint;
}

interface Grant {
  readonly ttl: number;
  deadline: number;
  readonly keys: Set<string>;
}

/** One write in the history: a put (kv) or a delete (null). */
interface Change {
  readonly revision: bigint;
  readonly key: string;
  readonly kv: Kv | null;
}

interface Watcher {
  readonly handlers: LeaseWatchHandlers;
  closed: boolean;
  /** Responses not yet delivered: the changes of one revision each. */
  readonly pending: KvChange[][];
}

/**
 * A LeaseRegistry over an in-memory etcd: keys with their mod revision and etcd lease, a revision
 * bumped on every write, grants with a TTL (keys go with their grant), a history that watches
 * replay from and that compact() trims. Values are flannel's JSON, as in etcd. A test double:
 * it lives under test/, never in the daemon.
 */
export class MemoryRegistry implements LeaseRegistry {
  readonly prefix: string;
  private readonly clock: RegistryClock;
  private readonly kvs = new Map<string, Kv>();
  private readonly grants = new Map<string, Grant>();
  private history: Change[] = [];
  private readonly watchers = new Set<Watcher>();
  private revision = 1n; // etcd's revision of an empty store
  private compacted = 0n;
  private nextGrant = 7_587_000_000_000_000_001n;
  private closed = false;
  private readonly timer: NodeJS.Timeout | null = null;

  constructor(opts: MemoryRegistryOptions = {}) {
    this.prefix = opts.prefix ?? '/coreos.com/network';
    this.clock = opts.clock ?? { now: () => Date.now() };
    if (this.clock.onAdvance) this.clock.onAdvance(() => this.expire());
    else this.timer = setInterval(() => this.expire(), 100).unref();
  }

  async getConfig(): Promise<string | null> {
    this.ready();
    return this.kvs.get(configKey(this.prefix))?.value ?? null;
  }

  async putConfig(text: string): Promise<void> {
    this.ready();
    this.put(configKey(this.prefix), text, '0');
  }

  async createConfig(text: string): Promise<boolean> {
    this.ready();
    if (this.kvs.has(configKey(this.prefix))) return false;
    this.put(configKey(this.prefix), text, '0');
    return true;
  }

  async listLeases(): Promise<LeaseSnapshot> {
    this.ready();
    const leases: Lease[] = [];
    const unreadable: UnreadableLease[] = [];
    for (const key of [...this.kvs.keys()].sort()) {
      if (!key.startsWith(subnetsPrefix(this.prefix))) continue;
      const kv = this.kvs.get(key)!;
      const read = readLease(this.prefix, { key, value: kv.value, lease: kv.lease, modRevision: String(kv.modRevision) });
      if (isUnreadable(read)) unreadable.push(read);
      else leases.push(read);
    }
    return { leases, revision: String(this.revision), unreadable };
  }

  async createLease(subnet: Ipv4Net, attrs: LeaseAttrs, ttlSeconds: number): Promise<Lease | null> {
    this.ready();
    const id = this.grant(ttlSeconds);
    const key = leaseKey(this.prefix, subnet);
    if (this.kvs.has(key)) {
      this.revoke(id);
      return null;
    }
    const rev = this.put(key, formatLeaseValue(attrs), id);
    return { subnet, attrs, etcdLeaseId: id, modRevision: String(rev) };
  }

  async takeOverLease(lease: Lease, attrs: LeaseAttrs, ttlSeconds: number): Promise<Lease | null> {
    this.ready();
    const grant = this.grants.get(lease.etcdLeaseId);
    const keep = lease.etcdLeaseId === '0' || grant?.ttl === ttlSeconds;
    const id = keep ? lease.etcdLeaseId : this.grant(ttlSeconds);
    const key = leaseKey(this.prefix, lease.subnet);
    if (String(this.kvs.get(key)?.modRevision ?? 0n) !== lease.modRevision) {
      if (!keep) this.revoke(id);
      return null;
    }
    const rev = this.put(key, formatLeaseValue(attrs), id);
    if (!keep) this.revoke(lease.etcdLeaseId);
    return { subnet: lease.subnet, attrs, etcdLeaseId: id, modRevision: String(rev) };
  }

  async renewLease(lease: Lease): Promise<number> {
    this.ready();
    if (lease.etcdLeaseId === '0') return Infinity;
    const grant = this.grants.get(lease.etcdLeaseId);
    if (!grant) throw new TwillError('TWILL_ERR_LEASE_LOST', `the etcd lease of ${leaseKey(this.prefix, lease.subnet)} has expired`);
    grant.deadline = this.clock.now() + grant.ttl * 1000;
    return grant.ttl;
  }

  async deleteLease(subnet: Ipv4Net): Promise<void> {
    this.ready();
    this.delete([leaseKey(this.prefix, subnet)]);
  }

  async revokeLease(etcdLeaseId: string): Promise<void> {
    this.ready();
    this.revoke(etcdLeaseId);
  }

  watchLeases(fromRevision: string, handlers: LeaseWatchHandlers): LeaseWatch {
    const w: Watcher = { handlers, closed: false, pending: [] };
    const from = BigInt(fromRevision);
    if (this.closed || from < this.compacted) {
      // What fromEtcd makes of etcd3's errors here: a closed client, a watch etcd cancelled.
      const err = this.closed
        ? new TwillError('TWILL_ERR_ETCD_UNAVAILABLE', 'start the lease watch: etcd is unreachable (the client is closed)')
        : new TwillError('TWILL_ERR_ETCD_WATCH_CANCELLED', `lease watch: mvcc: required revision ${from} has been compacted (at ${this.compacted})`);
      setImmediate(() => !w.closed && handlers.onReset(err));
    } else {
      this.watchers.add(w);
      setImmediate(() => !w.closed && handlers.onConnection(true));
      for (const c of this.history) if (c.revision >= from) this.deliver(w, c);
    }
    return {
      close: async () => {
        w.closed = true;
        this.watchers.delete(w);
      },
    };
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const w of this.watchers) w.closed = true;
    this.watchers.clear();
  }

  /** Writes a key as another client would (flannel, etcdctl): no etcd lease, so never expires. */
  putRaw(key: string, value: string): void {
    this.put(key, value, '0');
  }

  /** Writes many keys in one transaction: one revision, so one watch response. */
  putRawMany(entries: readonly (readonly [string, string])[]): void {
    const rev = ++this.revision;
    for (const [key, value] of entries) this.write(key, value, '0', rev);
  }

  /** Deletes many keys in one transaction: one revision, so one watch response. */
  deleteMany(keys: readonly string[]): void {
    this.delete(keys);
  }

  /** Every key and its value, read straight from the store (also after close): for assertions. */
  peek(): Record<string, string> {
    return Object.fromEntries([...this.kvs].map(([key, kv]) => [key, kv.value]));
  }

  /** Drops history before `revision`; a watch from an older revision is then reset, as in etcd. */
  compact(revision: string): void {
    const rev = BigInt(revision);
    if (rev > this.revision) throw new Error(`mvcc: required revision ${rev} is a future revision`);
    if (rev <= this.compacted) throw new Error(`mvcc: required revision ${rev} has been compacted`);
    this.compacted = rev;
    this.history = this.history.filter((c) => c.revision >= rev);
  }

  /** What etcd's lessor does on its own: revokes every grant past its deadline. */
  expire(): void {
    const now = this.clock.now();
    for (const [id, g] of this.grants) if (g.deadline <= now) this.revoke(id);
  }

  private ready(): void {
    if (this.closed) throw new TwillError('TWILL_ERR_ETCD_UNAVAILABLE', 'etcd is unreachable (the client is closed)');
    this.expire();
  }

  private grant(ttlSeconds: number): string {
    const id = String(this.nextGrant++);
    this.grants.set(id, { ttl: ttlSeconds, deadline: this.clock.now() + ttlSeconds * 1000, keys: new Set() });
    return id;
  }

  /** A revoked grant takes its keys with it, all in one revision. */
  private revoke(id: string): void {
    const g = this.grants.get(id);
    if (!g) return;
    this.grants.delete(id);
    this.delete([...g.keys]);
  }

  private put(key: string, value: string, lease: string): bigint {
    if (lease !== '0' && !this.grants.has(lease)) throw new TwillError('TWILL_ERR_LEASE_LOST', 'etcdserver: requested lease not found');
    const rev = ++this.revision;
    this.write(key, value, lease, rev);
    return rev;
  }

  private write(key: string, value: string, lease: string, rev: bigint): void {
    this.detach(key);
    this.grants.get(lease)?.keys.add(key);
    const kv: Kv = { value, lease, modRevision: rev };
    this.kvs.set(key, kv);
    this.record({ revision: rev, key, kv });
  }

  /** Deleting keys that do not exist writes nothing and does not bump the revision. */
  private delete(keys: readonly string[]): void {
    const present = keys.filter((k) => this.kvs.has(k));
    if (present.length === 0) return;
    const rev = ++this.revision;
    for (const key of present) {
      this.detach(key);
      this.kvs.delete(key);
      this.record({ revision: rev, key, kv: null });
    }
  }

  private detach(key: string): void {
    const old = this.kvs.get(key);
    if (old) this.grants.get(old.lease)?.keys.delete(key);
  }

  private record(change: Change): void {
    this.history.push(change);
    for (const w of this.watchers) this.deliver(w, change);
  }

  /**
   * Events reach a watch later, in order, as they would over the network: the changes of one
   * revision (a transaction, a revoked grant's keys) in one response, as etcd sends them.
   */
  private deliver(w: Watcher, c: Change): void {
    if (!c.key.startsWith(subnetsPrefix(this.prefix))) return;
    const change: KvChange = { type: c.kv ? 'put' : 'delete', key: c.key, value: c.kv?.value ?? '', lease: c.kv?.lease ?? '0', modRevision: String(c.revision) };
    const open = w.pending.at(-1);
    if (open && open[0]?.modRevision === change.modRevision) open.push(change);
    else w.pending.push([change]);
    if (w.pending.length === 1 && w.pending[0]!.length === 1) setImmediate(() => this.flush(w));
  }

  private flush(w: Watcher): void {
    const responses = w.pending.splice(0);
    for (const changes of responses) {
      const batch = watchBatch(this.prefix, changes);
      if (batch && !w.closed) w.handlers.onBatch(batch);
    }
  }
}
