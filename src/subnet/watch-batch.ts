import { parseLeaseKey, parseLeaseValue } from './lease-format.js';
import type { LeaseWatchBatch, UnreadableLease } from './registry.js';
import type { Lease, LeaseEvent } from './types.js';

/** One key-value change as a watch delivers it (etcd's mvccpb.Event, reduced). */
export interface KvChange {
  readonly type: 'put' | 'delete';
  readonly key: string;
  readonly value: string;
  /** The etcd lease ID on the key ("0" for none). */
  readonly lease: string;
  readonly modRevision: string;
}

/** A lease from a key-value under `<prefix>/subnets/`, or why it is not one. Pure. */
export function readLease(prefix: string, kv: Omit<KvChange, 'type'>): Lease | UnreadableLease {
  const subnet = parseLeaseKey(prefix, kv.key);
  if (!subnet) return { key: kv.key, reason: 'bad-key', subnet: null };
  const attrs = parseLeaseValue(kv.value);
  if (!attrs) return { key: kv.key, reason: 'bad-value', subnet };
  return { subnet, attrs, etcdLeaseId: kv.lease, modRevision: kv.modRevision };
}

export function isUnreadable(x: Lease | UnreadableLease): x is UnreadableLease {
  return 'reason' in x;
}

/**
 * One watch response as one batch, in order. A put whose value does not parse is reported as
 * unreadable and also removes whatever lease the key held before (a removal of a key nobody
 * knew is dropped downstream).
 */
export function watchBatch(prefix: string, changes: readonly KvChange[]): LeaseWatchBatch | null {
  const last = changes.at(-1);
  if (!last) return null;
  const events: LeaseEvent[] = [];
  const unreadable: UnreadableLease[] = [];
  const gone: string[] = [];
  for (const c of changes) {
    if (c.type === 'delete') gone.push(c.key);
    const read = readLease(prefix, c);
    if (c.type === 'delete' || isUnreadable(read)) {
      const subnet = read.subnet;
      if (subnet) events.push({ type: 'removed', lease: { subnet, attrs: { publicIP: '', publicIPv6: null }, etcdLeaseId: '0', modRevision: c.modRevision } });
      if (c.type === 'put' && isUnreadable(read)) unreadable.push(read);
      continue;
    }
    events.push({ type: 'added', lease: read });
  }
  return { events, unreadable, gone, revision: last.modRevision };
}
