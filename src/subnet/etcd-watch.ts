import type { IKeyValue, Watcher } from 'etcd3';
import { fromEtcd } from './etcd-errors.js';
import type { LeaseWatchHandlers, UnreadableLease } from './registry.js';
import type { Lease } from './types.js';
import { readLease, watchBatch, type KvChange } from './watch-batch.js';

/** A lease from an etcd key-value under `<prefix>/subnets/`, or why it is not one. */
export function kvToLease(prefix: string, kv: IKeyValue): Lease | UnreadableLease {
  return readLease(prefix, toChange('put', kv));
}

function toChange(type: KvChange['type'], kv: IKeyValue): KvChange {
  return { type, key: kv.key.toString(), value: kv.value.toString(), lease: kv.lease, modRevision: kv.mod_revision };
}

/**
 * Feeds an etcd3 watcher's events to the lease watch handlers. Its errors pass fromEtcd here,
 * before anyone branches on them: 'disconnected' as a broken stream, 'error' as a cancelled watch.
 */
export function wireWatcher(w: Watcher, prefix: string, h: LeaseWatchHandlers, onEnded: () => void): void {
  // One watch response, one batch: a burst of N lease changes is one pass downstream, not N.
  w.on('data', (res) => {
    const batch = watchBatch(prefix, res.events.map((ev) => toChange(ev.type === 'Delete' ? 'delete' : 'put', ev.kv)));
    if (batch) h.onBatch(batch);
  });
  w.on('disconnected', (err: unknown) => h.onConnection(false, fromEtcd(err, 'lease watch', 'watch-stream')));
  w.on('connected', () => h.onConnection(true));
  // etcd3 emits 'error' when etcd cancels the watch, e.g. the start revision was compacted.
  w.on('error', (err: unknown) => {
    onEnded();
    h.onReset(fromEtcd(err, 'lease watch', 'watch-cancel'));
  });
}
