import { afterEach, describe, expect, it } from 'vitest';
import { isTwillError } from '../../src/errors.js';
import { formatCidr, parseCidr } from '../../src/lib/ipv4.js';
import { formatLeaseValue, leaseKey } from '../../src/subnet/lease-format.js';
import type { LeaseRegistry, LeaseWatch } from '../../src/subnet/registry.js';
import type { LeaseAttrs } from '../../src/subnet/types.js';
import { eventually } from './logger.js';

/** One registry under test, with the few things only another client (or time) can do to it. */
export interface RegistryHarness {
  readonly registry: LeaseRegistry;
  readonly prefix: string;
  /** Writes a key as another client would (flannel's reservations, etcdctl): no etcd lease. */
  putRaw(key: string, value: string): Promise<void>;
  /** Writes many keys in one transaction (one revision), as a burst of joins can arrive. */
  putRawMany(entries: readonly (readonly [string, string])[]): Promise<void>;
  compact(revision: string): Promise<void>;
  /** Lets time pass: etcd sleeps, the memory registry moves its clock. */
  advance(seconds: number): Promise<void>;
  close(): Promise<void>;
}

const net = (cidr: string) => parseCidr(cidr)!;
const node = (ip: string): LeaseAttrs => ({ publicIP: ip, publicIPv6: null, backendType: 'host-gw' });
const caught = (p: Promise<unknown>) => p.then(() => null, (err: unknown) => err);

interface Seen {
  readonly events: string[];
  /** Events per watch response, in order. */
  readonly batches: number[];
  readonly unreadable: string[];
  readonly revisions: bigint[];
  readonly resets: string[];
  readonly watch: LeaseWatch;
}

function watchFrom(registry: LeaseRegistry, revision: string): Seen {
  const events: string[] = [];
  const batches: number[] = [];
  const unreadable: string[] = [];
  const revisions: bigint[] = [];
  const resets: string[] = [];
  const watch = registry.watchLeases(revision, {
    onBatch: (b) => {
      for (const e of b.events) events.push(`${e.type} ${formatCidr(e.lease.subnet)} ${e.lease.attrs.publicIP}`.trim());
      for (const u of b.unreadable) unreadable.push(`${u.reason} ${u.key}`);
      batches.push(b.events.length);
      revisions.push(BigInt(b.revision));
    },
    onReset: (err) => resets.push(`${err.code} transient=${err.transient}`),
    onConnection: () => undefined,
  });
  return { events, batches, unreadable, revisions, resets, watch };
}

/** The same cases against every LeaseRegistry: what the lease policy may rely on. */
export function registryContract(name: string, make: () => Promise<RegistryHarness>): void {
  describe(`LeaseRegistry contract: ${name}`, () => {
    let h: RegistryHarness;
    const open: LeaseWatch[] = [];
    const start = async () => (h = await make());
    afterEach(async () => {
      for (const w of open.splice(0)) await w.close();
      await h?.close();
    });

    it('round-trips the network config, absent until put', async () => {
      await start();
      expect(await h.registry.getConfig()).toBeNull();
      await h.registry.putConfig('{"Network":"10.1.0.0/16"}');
      await h.registry.putConfig('{"Network":"10.2.0.0/16"}');
      expect(await h.registry.getConfig()).toBe('{"Network":"10.2.0.0/16"}');
    });

    it('creates the network config only where there is none, once among racing creators', async () => {
      await start();
      const created = await Promise.all(Array.from({ length: 10 }, (_, i) => h.registry.createConfig(`{"Network":"10.${i}.0.0/16"}`)));
      expect(created.filter(Boolean)).toHaveLength(1);
      const winner = created.indexOf(true);
      expect(await h.registry.getConfig()).toBe(`{"Network":"10.${winner}.0.0/16"}`);
      expect(await h.registry.createConfig('{"Network":"10.99.0.0/16"}')).toBe(false);
      expect(await h.registry.getConfig()).toBe(`{"Network":"10.${winner}.0.0/16"}`);
    });

    it('creates only a key that does not exist (version 0): the second create gets null', async () => {
      await start();
      const a = await h.registry.createLease(net('10.5.1.0/24'), node('198.18.0.1'), 60);
      expect(a).toMatchObject({ attrs: node('198.18.0.1') });
      expect(a!.etcdLeaseId).not.toBe('0');
      expect(await h.registry.createLease(net('10.5.1.0/24'), node('198.18.0.2'), 60)).toBeNull();
      const snap = await h.registry.listLeases();
      expect(snap.leases.map((l) => `${formatCidr(l.subnet)} ${l.attrs.publicIP}`)).toEqual(['10.5.1.0/24 198.18.0.1']);
    });

    it('lists leases with the revision of the last write, skipping other keys and reporting bad values', async () => {
      await start();
      const a = await h.registry.createLease(net('10.5.1.0/24'), node('198.18.0.1'), 60);
      const b = await h.registry.createLease(net('10.5.2.0/24'), node('198.18.0.2'), 60);
      expect(BigInt(b!.modRevision)).toBeGreaterThan(BigInt(a!.modRevision));
      await h.putRaw(`${h.prefix}/subnets/not-a-lease`, 'x');
      await h.putRaw(leaseKey(h.prefix, net('10.5.3.0/24')), '{"PublicIP":"not an address"}');
      const snap = await h.registry.listLeases();
      expect(snap.leases.map((l) => formatCidr(l.subnet))).toEqual(['10.5.1.0/24', '10.5.2.0/24']);
      expect(snap.leases[1]).toEqual(b);
      expect(snap.unreadable.map((u) => `${u.reason} ${u.key}`)).toEqual([`bad-value ${leaseKey(h.prefix, net('10.5.3.0/24'))}`, `bad-key ${h.prefix}/subnets/not-a-lease`]);
      expect(BigInt(snap.revision)).toBe(BigInt(b!.modRevision) + 2n);
    });

    it('takes over a lease only if the key is unchanged since it was read (compare-and-swap)', async () => {
      await start();
      const mine = (await h.registry.createLease(net('10.5.1.0/24'), node('198.18.0.1'), 60))!;
      const other = await h.registry.takeOverLease(mine, node('198.18.0.9'), 60);
      expect(other).toMatchObject({ attrs: node('198.18.0.9'), etcdLeaseId: mine.etcdLeaseId }); // alive, same TTL: kept
      expect(BigInt(other!.modRevision)).toBeGreaterThan(BigInt(mine.modRevision));
      expect(await h.registry.takeOverLease(mine, node('198.18.0.1'), 60)).toBeNull(); // stale read
      const [held] = (await h.registry.listLeases()).leases;
      expect(held).toEqual(other);
    });

    it('takes over with a new etcd lease when the TTL differs, and frees the old one', async () => {
      await start();
      const mine = (await h.registry.createLease(net('10.5.1.0/24'), node('198.18.0.1'), 60))!;
      const next = (await h.registry.takeOverLease(mine, node('198.18.0.1'), 90))!;
      expect(next.etcdLeaseId).not.toBe(mine.etcdLeaseId);
      expect(isTwillError(await caught(h.registry.renewLease(mine)), 'TWILL_ERR_LEASE_LOST')).toBe(true);
      expect(await h.registry.renewLease(next)).toBe(90);
      expect((await h.registry.listLeases()).leases).toEqual([next]);
    });

    it('keeps a reservation (a key with no etcd lease) a reservation on take-over', async () => {
      await start();
      await h.putRaw(leaseKey(h.prefix, net('10.5.7.0/24')), formatLeaseValue({ publicIP: '198.18.0.7', publicIPv6: null }));
      const [reserved] = (await h.registry.listLeases()).leases;
      expect(reserved!.etcdLeaseId).toBe('0');
      const taken = (await h.registry.takeOverLease(reserved!, node('198.18.0.7'), 60))!;
      expect(taken.etcdLeaseId).toBe('0');
      expect(await h.registry.renewLease(taken)).toBe(Infinity);
      expect((await h.registry.listLeases()).leases).toEqual([taken]);
    });

    it('expires a lease after its TTL unless renewed; a reservation stays; renewing the expired one throws TWILL_ERR_LEASE_LOST', async () => {
      await start();
      const renewed = (await h.registry.createLease(net('10.5.1.0/24'), node('198.18.0.1'), 3))!;
      const left = (await h.registry.createLease(net('10.5.2.0/24'), node('198.18.0.2'), 3))!;
      await h.putRaw(leaseKey(h.prefix, net('10.5.3.0/24')), formatLeaseValue(node('198.18.0.3')));
      await h.advance(2);
      expect(await h.registry.renewLease(renewed)).toBe(3);
      await h.advance(2);
      const subnets = async () => (await h.registry.listLeases()).leases.map((l) => formatCidr(l.subnet));
      await eventually(async () => !(await subnets()).includes('10.5.2.0/24'), 3000, 'expiry');
      expect(await subnets()).toEqual(['10.5.1.0/24', '10.5.3.0/24']);
      const err = await caught(h.registry.renewLease(left));
      expect(isTwillError(err, 'TWILL_ERR_LEASE_LOST')).toBe(true);
      await h.registry.revokeLease(renewed.etcdLeaseId); // revoking takes the key with it
      expect(await subnets()).toEqual(['10.5.3.0/24']);
    });

    it('watches from a revision: past and new changes as added/removed events, in revision order', async () => {
      await start();
      const a = (await h.registry.createLease(net('10.5.1.0/24'), node('198.18.0.1'), 60))!;
      const b = (await h.registry.createLease(net('10.5.2.0/24'), node('198.18.0.2'), 60))!;
      await h.registry.deleteLease(a.subnet);
      const fromA = watchFrom(h.registry, a.modRevision);
      const fromB = watchFrom(h.registry, b.modRevision);
      open.push(fromA.watch, fromB.watch);
      await h.registry.putConfig('{"Network":"10.5.0.0/16"}'); // not a lease: no event
      await h.registry.createLease(net('10.5.3.0/24'), node('198.18.0.3'), 60);
      await eventually(() => fromA.events.length >= 4 && fromB.events.length >= 3, 5000, 'watch events');
      expect(fromA.events).toEqual(['added 10.5.1.0/24 198.18.0.1', 'added 10.5.2.0/24 198.18.0.2', 'removed 10.5.1.0/24', 'added 10.5.3.0/24 198.18.0.3']);
      expect(fromB.events).toEqual(fromA.events.slice(1));
      // A batch carries its last event's revision; etcd may put several past revisions in one response.
      expect(fromA.revisions[0]).toBeGreaterThanOrEqual(BigInt(a.modRevision));
      expect(fromA.revisions.every((r, i) => i === 0 || r > fromA.revisions[i - 1]!)).toBe(true);
      await fromA.watch.close();
      await fromA.watch.close(); // a second close is harmless
      await h.registry.deleteLease(b.subnet);
      await eventually(() => fromB.events.length === 4, 5000, 'delete event');
      expect(fromA.events).toHaveLength(4); // closed: nothing more
    });

    it('delivers one transaction of many changes as one batch, with the keys that are not leases', async () => {
      await start();
      const seen = watchFrom(h.registry, String(BigInt((await h.registry.listLeases()).revision) + 1n));
      open.push(seen.watch);
      // etcd takes at most 128 operations in one transaction (--max-txn-ops).
      const joins = Array.from({ length: 100 }, (_, i) => [leaseKey(h.prefix, net(`10.5.${i >> 2}.${(i & 3) * 64}/26`)), formatLeaseValue(node(`198.18.1.${i % 250}`))] as const);
      await h.putRawMany([...joins, [`${h.prefix}/subnets/junk`, 'x'], [leaseKey(h.prefix, net('10.6.0.0/24')), '{"PublicIP":"nope"}']]);
      await eventually(() => seen.events.length === 101, 5000, 'the batch');
      // The bad value also yields a removal of whatever lease the key held (none here; dropped downstream).
      expect(seen.batches).toEqual([101]);
      expect(seen.unreadable).toEqual([`bad-key ${h.prefix}/subnets/junk`, `bad-value ${leaseKey(h.prefix, net('10.6.0.0/24'))}`]);
    });

    it('resets a watch from a compacted revision, and watches from the compaction revision on', async () => {
      await start();
      const a = (await h.registry.createLease(net('10.5.1.0/24'), node('198.18.0.1'), 60))!;
      const b = (await h.registry.createLease(net('10.5.2.0/24'), node('198.18.0.2'), 60))!;
      await h.compact(b.modRevision);
      const old = watchFrom(h.registry, a.modRevision);
      const kept = watchFrom(h.registry, b.modRevision);
      open.push(old.watch, kept.watch);
      await eventually(() => old.resets.length === 1 && kept.events.length === 1, 5000, 'reset and event');
      await new Promise((r) => setTimeout(r, 100)); // nothing more comes
      expect(old.resets).toEqual(['TWILL_ERR_ETCD_WATCH_CANCELLED transient=true']);
      expect(old.events).toEqual([]);
      expect(kept.events).toEqual(['added 10.5.2.0/24 198.18.0.2']);
      expect(kept.resets).toEqual([]);
    });
  });
}
