import { describe, expect, it } from 'vitest';
import { applyLeaseEvent, diffLeases, leaseId } from '../../src/subnet/lease-diff.js';
import { parseCidr } from '../../src/lib/ipv4.js';
import type { Lease } from '../../src/subnet/types.js';

function lease(cidr: string, ip: string): Lease {
  return { subnet: parseCidr(cidr)!, attrs: { publicIP: ip, publicIPv6: null, backendType: 'host-gw' }, etcdLeaseId: '7', modRevision: '1' };
}
const known = (...ls: Lease[]) => new Map(ls.map((l) => [leaseId(l), l]));

describe('lease snapshot diff', () => {
  it('adds new leases, re-adds changed ones, removes missing ones', () => {
    const a = lease('10.244.1.0/24', '1.0.0.1');
    const b = lease('10.244.2.0/24', '1.0.0.2');
    const c = lease('10.244.3.0/24', '1.0.0.3');
    const events = diffLeases(known(a, b), [a, { ...b, attrs: { ...b.attrs, publicIP: '1.0.0.9' } }, c]);
    expect(events.map((e) => `${e.type} ${leaseId(e.lease)} ${e.lease.attrs.publicIP}`)).toEqual([
      'added 10.244.2.0/24 1.0.0.9',
      'added 10.244.3.0/24 1.0.0.3',
    ]);
    expect(diffLeases(known(a, b), [b]).map((e) => `${e.type} ${leaseId(e.lease)}`)).toEqual(['removed 10.244.1.0/24']);
  });

  it('treats a renewal PUT with the same value as no change', () => {
    const a = lease('10.244.1.0/24', '1.0.0.1');
    const map = known(a);
    expect(applyLeaseEvent(map, { type: 'added', lease: { ...a, modRevision: '99' } })).toBeNull();
    expect(diffLeases(map, [{ ...a, modRevision: '100' }])).toEqual([]);
  });

  it('passes on deletes with the lease as it was known, and drops deletes of unknown keys', () => {
    const a = lease('10.244.1.0/24', '1.0.0.1');
    const map = known(a);
    const bare = { ...a, attrs: { publicIP: '', publicIPv6: null } };
    expect(applyLeaseEvent(map, { type: 'removed', lease: bare })).toEqual({ type: 'removed', lease: a });
    expect(map.size).toBe(0);
    expect(applyLeaseEvent(map, { type: 'removed', lease: bare })).toBeNull();
  });
});
