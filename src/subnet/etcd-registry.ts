import { Etcd3, type IOptions } from 'etcd3';
import { TwillError } from '../errors.js';
import { fromEtcd } from './etcd-errors.js';
import { kvToLease, wireWatcher } from './etcd-watch.js';
import { livenessOptions } from './etcd-liveness.js';
import { isUnreadable } from './watch-batch.js';
import type { Ipv4Net } from '../lib/ipv4.js';
import { configKey, formatLeaseValue, leaseKey, subnetsPrefix } from './lease-format.js';
import type { LeaseRegistry, LeaseSnapshot, LeaseWatch, LeaseWatchHandlers, UnreadableLease } from './registry.js';
import type { Lease, LeaseAttrs } from './types.js';

export interface EtcdRegistryOptions {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  /** Deadline for each unary RPC, so that a dead etcd fails fast instead of hanging. */
  readonly callTimeoutMs?: number;
  /** TLS and auth, passed through to the etcd3 client. */
  readonly credentials?: IOptions['credentials'];
  readonly auth?: IOptions['auth'];
  /** After every RPC: false when etcd could not be reached, true when it answered (even with an error, given too). */
  readonly onCall?: (reached: boolean, err?: TwillError) => void;
}

/** The registry over etcd v3, in flannel's keyspace. */
export class EtcdRegistry implements LeaseRegistry {
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly onCall: (reached: boolean, err?: TwillError) => void;

  constructor(opts: EtcdRegistryOptions) {
    const timeout = opts.callTimeoutMs ?? 5000;
    this.prefix = opts.prefix;
    this.onCall = opts.onCall ?? (() => undefined);
    this.client = new Etcd3({
      hosts: [...opts.endpoints],
      dialTimeout: timeout,
      credentials: opts.credentials,
      auth: opts.auth,
      ...livenessOptions(timeout), // per-call deadlines, gRPC keepalive, require-leader on the watch
    });
  }

  async getConfig(options: { readonly timeoutMs?: number } = {}): Promise<string | null> {
    // A deadline of its own also bounds the client's retries: they share it.
    const deadline = options.timeoutMs === undefined ? undefined : { deadline: Date.now() + options.timeoutMs };
    return this.call('read the network config', () => this.client.get(configKey(this.prefix)).options(deadline).string());
  }

  async putConfig(text: string): Promise<void> {
    await this.call('write the network config', () => this.client.put(configKey(this.prefix)).value(text).exec());
  }

  async createConfig(text: string): Promise<boolean> {
    const key = configKey(this.prefix);
    const res = await this.call('create the network config', () => this.client.if(key, 'Version', '==', 0).then(this.client.put(key).value(text)).commit());
    return res.succeeded;
  }

  async listLeases(): Promise<LeaseSnapshot> {
    // One range RPC for every lease: no extra call per key (a flannel defect).
    const res = await this.call('list leases', () => this.client.getAll().prefix(subnetsPrefix(this.prefix)).exec());
    const leases: Lease[] = [];
    const unreadable: UnreadableLease[] = [];
    for (const kv of res.kvs) {
      const read = kvToLease(this.prefix, kv);
      if (isUnreadable(read)) unreadable.push(read);
      else leases.push(read);
    }
    return { leases, revision: res.header.revision, unreadable };
  }

  async createLease(subnet: Ipv4Net, attrs: LeaseAttrs, ttlSeconds: number): Promise<Lease | null> {
    const id = await this.grant(ttlSeconds);
    const key = leaseKey(this.prefix, subnet);
    const res = await this.call('create lease', () =>
      this.client.if(key, 'Version', '==', 0).then(this.client.put(key).value(formatLeaseValue(attrs)).lease(id)).commit(),
    );
    if (!res.succeeded) {
      await this.revoke(id);
      return null;
    }
    return { subnet, attrs, etcdLeaseId: id, modRevision: res.header.revision };
  }

  async takeOverLease(lease: Lease, attrs: LeaseAttrs, ttlSeconds: number): Promise<Lease | null> {
    const keep = lease.etcdLeaseId === '0' || (await this.hasTtl(lease.etcdLeaseId, ttlSeconds));
    const id = keep ? lease.etcdLeaseId : await this.grant(ttlSeconds);
    const key = leaseKey(this.prefix, lease.subnet);
    const put = this.client.put(key).value(formatLeaseValue(attrs));
    const res = await this.call('take over lease', () =>
      this.client.if(key, 'Mod', '==', lease.modRevision).then(id === '0' ? put : put.lease(id)).commit(),
    );
    if (!res.succeeded) {
      if (!keep) await this.revoke(id);
      return null;
    }
    if (!keep) await this.revoke(lease.etcdLeaseId); // the old grant now holds nothing: don't leave it behind
    return { subnet: lease.subnet, attrs, etcdLeaseId: id, modRevision: res.header.revision };
  }

  async renewLease(lease: Lease): Promise<number> {
    if (lease.etcdLeaseId === '0') return Infinity; // a reservation never expires
    const ttl = await this.keepAliveOnce(lease.etcdLeaseId);
    if (ttl <= 0) throw new TwillError('TWILL_ERR_LEASE_LOST', `the etcd lease of ${leaseKey(this.prefix, lease.subnet)} has expired`);
    return ttl;
  }

  async deleteLease(subnet: Ipv4Net): Promise<void> {
    await this.call('delete lease', () => this.client.delete().key(leaseKey(this.prefix, subnet)).exec());
  }

  async revokeLease(etcdLeaseId: string): Promise<void> {
    if (etcdLeaseId !== '0') await this.revoke(etcdLeaseId);
  }

  watchLeases(fromRevision: string, handlers: LeaseWatchHandlers): LeaseWatch {
    let closed = false;
    let ended = false; // etcd cancelled it: cancelling again would wait forever for a reply
    const pending = this.client.watch().prefix(subnetsPrefix(this.prefix)).startRevision(fromRevision).create();
    pending.then(
      (w) => {
        if (closed) return void w.cancel();
        wireWatcher(w, this.prefix, handlers, () => (ended = true));
        handlers.onConnection(true); // created means connected; the watcher's own 'connected' came before the wiring
      },
      (err: unknown) => handlers.onReset(fromEtcd(err, 'start the lease watch', 'watch-cancel')),
    );
    let closing: Promise<void> | null = null; // closing twice must not cancel twice: etcd3 would wait forever
    return {
      close: () =>
        (closing ??= (async () => {
          closed = true;
          const w = await pending.catch(() => null);
          if (w && !ended) await w.cancel();
        })()),
    };
  }

  close(): void {
    this.client.close();
  }

  private async grant(ttlSeconds: number): Promise<string> {
    const res = await this.call('grant etcd lease', () => this.client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 }));
    return res.ID;
  }

  private async revoke(id: string): Promise<void> {
    await this.call('revoke etcd lease', () => this.client.leaseClient.leaseRevoke({ ID: id })).catch(() => undefined);
  }

  private async hasTtl(id: string, ttlSeconds: number): Promise<boolean> {
    const res = await this.call('read etcd lease', () => this.client.leaseClient.leaseTimeToLive({ ID: id, keys: false }));
    return Number(res.TTL) > 0 && Number(res.grantedTTL) === ttlSeconds;
  }

  private async keepAliveOnce(id: string): Promise<number> {
    return this.call('renew etcd lease', async () => {
      const stream = await this.client.leaseClient.leaseKeepAlive();
      try {
        const res = await new Promise<{ TTL: string }>((resolve, reject) => {
          const timer = setTimeout(() => reject(new TwillError('TWILL_ERR_ETCD_UNAVAILABLE', 'lease keepalive timed out')), 5000);
          stream.on('data', (r: { TTL: string }) => (clearTimeout(timer), resolve(r)));
          stream.on('error', (e: Error) => (clearTimeout(timer), reject(e)));
          stream.write({ ID: id });
        });
        return Number(res.TTL);
      } finally {
        stream.end();
      }
    });
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      const result = await fn();
      this.onCall(true);
      return result;
    } catch (err) {
      const e = fromEtcd(err, what);
      this.onCall(e.code !== 'TWILL_ERR_ETCD_UNAVAILABLE', e);
      throw e;
    }
  }
}
