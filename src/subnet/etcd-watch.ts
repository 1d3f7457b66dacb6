import type { IKeyValue, Watcher } from 'etcd3';
import { fromEtcd } from './etcd-errors.js';
import { parseLeaseKey, parseLeaseValue } from './lease-format.js';
import type { LeaseWatchHandlers } from './registry.js';
import type { Lease } from './types.js';

/** A lease from an etcd key-value under `<prefix>/subnets/`; null when the key or value is not one. */
export function kvToLease(prefix: string, kv: IKeyValue): Lease | null {
  const subnet = parseLeaseKey(prefix, kv.key.toString());
  const attrs = subnet && parseLeaseValue(kv.value.toString());
  if (!subnet || !attrs) return null;
  return { subnet, attrs, etcdLeaseId: kv.lease, modRevision: kv.mod_revision };
}

/**
 * Feeds an etcd3 watcher's events to the lease watch handlers. Its errors pass fromEtcd here,
 * before anyone branches on them: 'disconnected' as a broken stream, 'error' as a cancelled watch.
 */
export function wireWatcher(w: Watcher, prefix: string, h: LeaseWatchHandlers, onEnded: () => void): void {
  w.on('data', (res) => {
    for (const ev of res.events) {
      const subnet = parseLeaseKey(prefix, ev.kv.key.toString());
      if (!subnet) continue;
      if (ev.type === 'Delete') {
        h.onEvent({ type: 'removed', lease: { subnet, attrs: { publicIP: '', publicIPv6: null }, etcdLeaseId: '0', modRevision: ev.kv.mod_revision } }, ev.kv.mod_revision);
      } else {
        const lease = kvToLease(prefix, ev.kv);
        if (lease) h.onEvent({ type: 'added', lease }, ev.kv.mod_revision);
      }
    }
  });
  w.on('disconnected', (err: unknown) => h.onConnection(false, fromEtcd(err, 'lease watch', 'watch-stream')));
  w.on('connected', () => h.onConnection(true));
  // etcd3 emits 'error' when etcd cancels the watch, e.g. the start revision was compacted.
  w.on('error', (err: unknown) => {
    onEnded();
    h.onReset(fromEtcd(err, 'lease watch', 'watch-cancel'));
  });
}
