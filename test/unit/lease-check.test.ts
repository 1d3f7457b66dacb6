import { describe, expect, it } from 'vitest';
import { containsNet, formatCidr, formatIp, parseCidr, type Ipv4Net } from '../../src/lib/ipv4.js';
import { diffLeases, applyLeaseBatch, leaseId } from '../../src/subnet/lease-diff.js';
import { LeaseGate, overlaps, type GateResult } from '../../src/subnet/lease-check.js';
import { formatLeaseValue, leaseKey } from '../../src/subnet/lease-format.js';
import type { UnreadableLease } from '../../src/subnet/registry.js';
import type { Lease, LeaseEvent } from '../../src/subnet/types.js';
import { isUnreadable, readLease, watchBatch, type KvChange } from '../../src/subnet/watch-batch.js';
import { rng } from '../support/rng.js';

const PREFIX = '/coreos.com/network';
const NETWORK = '10.244.0.0/16';
const OWN = '10.244.1.0/24';
const net = (cidr: string): Ipv4Net => parseCidr(cidr)!;
const key = (cidr: string) => leaseKey(PREFIX, net(cidr));

let revision = 100;
function lease(cidr: string, publicIP = '198.18.0.9', rev = ++revision): Lease {
  return { subnet: net(cidr), attrs: { publicIP, publicIPv6: null, backendType: 'host-gw' }, etcdLeaseId: '7', modRevision: String(rev) };
}
const added = (l: Lease): LeaseEvent => ({ type: 'added', lease: l });
const removed = (l: Lease): LeaseEvent => ({ type: 'removed', lease: l });
const badValue = (cidr: string): UnreadableLease => ({ key: key(cidr), reason: 'bad-value', subnet: net(cidr) });
const badKey = (k: string): UnreadableLease => ({ key: `${PREFIX}/subnets/${k}`, reason: 'bad-key', subnet: null });

function gate(own = OWN): LeaseGate {
  let t = Date.parse('2030-01-01T00:00:00Z');
  return new LeaseGate({ network: net(NETWORK), own: net(own), etcdPrefix: PREFIX, now: () => new Date((t += 1000)) });
}
/** Events as "+10.244.2.0/24 198.18.0.2" / "-10.244.2.0/24". */
const show = (r: GateResult) => r.events.map((e) => (e.type === 'added' ? `+${leaseId(e.lease)} ${e.lease.attrs.publicIP}` : `-${leaseId(e.lease)}`));
const reasons = (r: GateResult) => r.rejected.map((x) => `${x.subnet ?? x.key} ${x.reason}`);
const listed = (g: LeaseGate) => g.rejections().map((x) => `${x.subnet ?? x.key} ${x.reason}`);

describe('lease gate: each rule, with its reason', () => {
  it('forgets keys that were not leases once deleted, or absent from a re-list; a re-list keeps the ones still there', () => {
    const g = gate();
    g.apply([], [badKey('x'), badValue('10.244.7.0/24'), badValue('10.244.8.0/24')]);
    expect(listed(g)).toHaveLength(3);
    g.apply([], [], { gone: [`${PREFIX}/subnets/x`], complete: false });
    expect(listed(g)).toEqual(['10.244.7.0/24 bad-value', '10.244.8.0/24 bad-value']);
    g.apply([], [badValue('10.244.8.0/24')], { gone: [], complete: true });
    expect(listed(g)).toEqual(['10.244.8.0/24 bad-value']);
  });

  it('passes a peer inside the Network and clear of the own subnet, and its removal', () => {
    const g = gate();
    const a = lease('10.244.2.0/24', '198.18.0.2');
    expect(show(g.apply([added(a)], []))).toEqual(['+10.244.2.0/24 198.18.0.2']);
    expect(show(g.apply([removed(a)], []))).toEqual(['-10.244.2.0/24']);
    expect(g.rejections()).toEqual([]);
  });

  it('rejects a subnet outside the Network, naming key, PublicIP and why', () => {
    const g = gate();
    const r = g.apply([added(lease('10.99.0.0/24', '198.18.0.66'))], []);
    expect(r.events).toEqual([]);
    expect(r.rejected).toEqual([
      { key: `${PREFIX}/subnets/10.99.0.0-24`, subnet: '10.99.0.0/24', publicIP: '198.18.0.66', reason: 'outside-network', detail: '10.99.0.0/24 is not inside the Network 10.244.0.0/16', since: '2030-01-01T00:00:01.000Z' },
    ]);
    // A subnet that contains the whole Network is not inside it either.
    expect(reasons(g.apply([added(lease('10.0.0.0/8'))], []))).toEqual(['10.0.0.0/8 outside-network']);
  });

  it('accepts a peer of another prefix length inside the Network, as flannel does', () => {
    const g = gate();
    expect(show(g.apply([added(lease('10.244.8.0/23', '198.18.0.3')), added(lease('10.244.20.128/25', '198.18.0.4')), added(lease('10.244.30.7/32', '198.18.0.5'))], []))).toEqual([
      '+10.244.8.0/23 198.18.0.3',
      '+10.244.20.128/25 198.18.0.4',
      '+10.244.30.7/32 198.18.0.5',
    ]);
  });

  it('rejects a subnet inside the own one, one that covers it, and the Network itself', () => {
    const g = gate();
    const r = g.apply([added(lease('10.244.1.128/25')), added(lease('10.244.0.0/23')), added(lease('10.244.0.0/16')), added(lease('10.244.1.7/32'))], []);
    expect(r.events).toEqual([]);
    expect(reasons(r)).toEqual(['10.244.1.128/25 overlaps-own', '10.244.0.0/23 overlaps-own', '10.244.0.0/16 overlaps-own', '10.244.1.7/32 overlaps-own']);
    expect(r.rejected[0]!.detail).toBe("10.244.1.128/25 overlaps this node's subnet 10.244.1.0/24");
  });

  it('neither passes nor rejects the own lease: the agent handles its own key', () => {
    const g = gate();
    const own = lease(OWN, '198.18.0.1');
    expect(g.apply([added(own)], [])).toEqual({ events: [], rejected: [] });
    expect(g.apply([added({ ...own, attrs: { ...own.attrs, publicIP: '198.18.0.9' } })], [])).toEqual({ events: [], rejected: [] });
    expect(g.apply([removed(own)], [])).toEqual({ events: [], rejected: [] });
    expect(g.rejections()).toEqual([]);
  });

  it('rejects keys that do not parse and values that do not parse, once per key', () => {
    const g = gate();
    const r = g.apply([], [badKey('not-a-subnet'), badValue('10.244.5.0/24')]);
    expect(r.rejected.map((x) => [x.key, x.subnet, x.publicIP, x.reason])).toEqual([
      [`${PREFIX}/subnets/not-a-subnet`, null, null, 'bad-key'],
      [`${PREFIX}/subnets/10.244.5.0-24`, '10.244.5.0/24', null, 'bad-value'],
    ]);
    // Every re-list delivers them again: not new.
    expect(g.apply([], [badKey('not-a-subnet'), badValue('10.244.5.0/24')])).toEqual({ events: [], rejected: [] });
    expect(listed(g)).toEqual([`${PREFIX}/subnets/not-a-subnet bad-key`, '10.244.5.0/24 bad-value']);
  });

  it('takes back a programmed lease whose value turns unreadable, and passes it again once readable', () => {
    const g = gate();
    const a = lease('10.244.5.0/24', '198.18.0.5');
    g.apply([added(a)], []);
    const r = g.apply([removed(a)], [badValue('10.244.5.0/24')]); // what the stream sends for a bad put over a lease
    expect(show(r)).toEqual(['-10.244.5.0/24']);
    expect(reasons(r)).toEqual(['10.244.5.0/24 bad-value']);
    expect(show(g.apply([added(lease('10.244.5.0/24', '198.18.0.6'))], []))).toEqual(['+10.244.5.0/24 198.18.0.6']);
    expect(g.rejections()).toEqual([]);
  });

  it('reads one response in order: a bad value then a good one is a lease, a good then a bad is not', () => {
    const g = gate();
    const good = lease('10.244.5.0/24', '198.18.0.5');
    expect(show(g.apply([added(good)], [badValue('10.244.5.0/24')]))).toEqual(['+10.244.5.0/24 198.18.0.5']);
    const other = lease('10.244.6.0/24');
    const r = g.apply([added(other), removed(other)], [badValue('10.244.6.0/24')]);
    expect(show(r)).toEqual([]);
    expect(reasons(r)).toEqual(['10.244.6.0/24 bad-value']);
  });

  it('swallows the removal of a rejected lease and forgets its rejection', () => {
    const g = gate();
    const out = lease('10.99.0.0/24');
    g.apply([added(out)], []);
    expect(g.apply([removed(out)], [])).toEqual({ events: [], rejected: [] });
    expect(g.rejections()).toEqual([]);
    // Back again later: rejected, and said again.
    expect(reasons(g.apply([added(lease('10.99.0.0/24'))], []))).toEqual(['10.99.0.0/24 outside-network']);
  });
});

describe('lease gate: overlapping peers', () => {
  it('within one batch keeps the lower modRevision, whatever the order in the batch', () => {
    const g = gate();
    const newer = lease('10.244.8.0/23', '198.18.0.3', 20);
    const older = lease('10.244.9.0/24', '198.18.0.4', 10);
    const r = g.apply([added(newer), added(older)], []);
    expect(show(r)).toEqual(['+10.244.9.0/24 198.18.0.4']);
    expect(r.rejected).toMatchObject([{ subnet: '10.244.8.0/23', publicIP: '198.18.0.3', reason: 'overlaps-peer', detail: '10.244.8.0/23 overlaps 10.244.9.0/24 (PublicIP 198.18.0.4), accepted before it' }]);
  });

  it('across batches keeps the one accepted first, even with a higher modRevision', () => {
    const g = gate();
    g.apply([added(lease('10.244.9.0/24', '198.18.0.4', 50))], []);
    const r = g.apply([added(lease('10.244.8.0/23', '198.18.0.3', 10))], []);
    expect(r.events).toEqual([]);
    expect(reasons(r)).toEqual(['10.244.8.0/23 overlaps-peer']);
  });

  it('lets the rejected one in when the older goes, in the same batch or later', () => {
    const g = gate();
    const older = lease('10.244.9.0/24', '198.18.0.4');
    const newer = lease('10.244.8.0/23', '198.18.0.3');
    g.apply([added(older), added(newer)], []);
    const r = g.apply([removed(older)], []);
    expect(show(r)).toEqual(['-10.244.9.0/24', '+10.244.8.0/23 198.18.0.3']);
    expect(r.rejected).toEqual([]);
    expect(g.rejections()).toEqual([]);
  });

  it('lets in the rejected lease that waited longest, ahead of a newcomer of the same batch', () => {
    const g = gate();
    const a = lease('10.244.9.0/24', '198.18.0.4');
    const waiting = lease('10.244.8.0/23', '198.18.0.3');
    g.apply([added(a)], []);
    g.apply([added(waiting)], []);
    const newcomer = lease('10.244.8.0/24', '198.18.0.5');
    const r = g.apply([removed(a), added(newcomer)], []);
    expect(show(r)).toEqual(['-10.244.9.0/24', '+10.244.8.0/23 198.18.0.3']);
    expect(reasons(r)).toEqual(['10.244.8.0/24 overlaps-peer']);
  });

  it('keeps a rejected lease out when another accepted one still overlaps it', () => {
    const g = gate();
    const a = lease('10.244.8.0/24', '198.18.0.4');
    const b = lease('10.244.9.0/24', '198.18.0.5');
    const wide = lease('10.244.8.0/23', '198.18.0.3');
    g.apply([added(a), added(b), added(wide)], []);
    const r = g.apply([removed(a)], []);
    expect(show(r)).toEqual(['-10.244.8.0/24']);
    expect(r.rejected).toEqual([]); // same reason as before: not said again
    expect(g.rejections()[0]!.detail).toContain('overlaps 10.244.9.0/24');
  });

  it('re-checks a lease whose value changes: an accepted one passes on, a rejected one stays out silently', () => {
    const g = gate();
    const a = lease('10.244.9.0/24', '198.18.0.4');
    const b = lease('10.244.8.0/23', '198.18.0.3');
    g.apply([added(a), added(b)], []);
    expect(show(g.apply([added({ ...a, attrs: { ...a.attrs, publicIP: '198.18.0.40' } })], []))).toEqual(['+10.244.9.0/24 198.18.0.40']);
    const r = g.apply([added({ ...b, attrs: { ...b.attrs, publicIP: '198.18.0.30' } })], []);
    expect(r).toEqual({ events: [], rejected: [] });
    expect(g.rejections()).toMatchObject([{ subnet: '10.244.8.0/23', publicIP: '198.18.0.30', reason: 'overlaps-peer' }]);
  });
});

describe('lease gate: a new own subnet', () => {
  it('takes back what now overlaps it, lets in what no longer does, and the old own key', () => {
    const g = gate('10.244.1.0/24');
    const half = lease('10.244.1.128/25', '198.18.0.7'); // overlaps the old own subnet
    const thief = lease('10.244.1.0/24', '198.18.0.9'); // another node now holds our old key
    const there = lease('10.244.3.0/24', '198.18.0.3'); // a peer at what becomes our subnet (a stale view)
    const cover = lease('10.244.2.0/23', '198.18.0.4'); // covers the new own subnet
    g.apply([added(half), added(thief), added(there)], []);
    expect(listed(g)).toEqual(['10.244.1.128/25 overlaps-own']);
    expect(g.apply([added(cover)], []).rejected.map((x) => x.reason)).toEqual(['overlaps-peer']);
    const r = g.setOwn(net('10.244.3.0/24'));
    // 10.244.3.0/24 is our own key now (the agent deals with it); the /25 and our old key clash:
    // the older (the /25, first in its batch) wins; the /23 turns from overlaps-peer to overlaps-own.
    expect(show(r)).toEqual(['-10.244.3.0/24', '+10.244.1.128/25 198.18.0.7']);
    expect(reasons(r)).toEqual(['10.244.1.0/24 overlaps-peer', '10.244.2.0/23 overlaps-own']);
    expect(g.acceptedLeases().map(leaseId)).toEqual(['10.244.1.128/25']);
    expect(g.setOwn(net('10.244.3.0/24'))).toEqual({ events: [], rejected: [] });
  });
});

/** A small etcd model driven through the real watch and re-list paths into the gate. */
describe('lease gate: randomized, against the invariants', () => {
  it('never passes a lease that overlaps the own subnet or another passed lease, over thousands of operations', () => {
    for (const seed of [1, 2, 3]) runRandom(seed, 1500);
  });
});

function runRandom(seed: number, steps: number): void {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const network = net(NETWORK);
  let own = net(OWN);
  const g = new LeaseGate({ network, own, etcdPrefix: PREFIX });
  const store = new Map<string, { value: string; rev: number }>();
  const known = new Map<string, Lease>(); // the stream's view
  const programmed = new Map<string, Lease>(); // what the backend was told
  let rev = 1;

  const randomSubnet = (): Ipv4Net => {
    if (r() < 0.05) return net('10.99.0.0/24');
    const len = pick([22, 23, 24, 24, 24, 25, 26]);
    const addr = (network.addr + Math.floor(r() * 16) * 256) >>> 0; // a small space, so overlaps are common
    return parseCidr(`${formatIp(addr & ~(2 ** (32 - len) - 1))}/${len}`)!;
  };
  const randomKey = (): string => (r() < 0.03 ? `${PREFIX}/subnets/junk-${Math.floor(r() * 3)}` : leaseKey(PREFIX, randomSubnet()));
  const randomValue = (): string => (r() < 0.05 ? '{"PublicIP":"nope"}' : formatLeaseValue({ publicIP: `198.18.0.${1 + Math.floor(r() * 9)}`, publicIPv6: null, backendType: 'host-gw' }));

  const feed = (res: GateResult) => {
    for (const e of res.events) {
      const id = leaseId(e.lease);
      if (e.type === 'added') programmed.set(id, e.lease);
      else {
        if (!programmed.has(id)) expect.fail(`seed ${seed}: removal of ${id}, which was never passed`);
        programmed.delete(id);
      }
    }
  };

  for (let step = 0; step < steps; step++) {
    const op = r();
    if (op < 0.03) {
      own = net(`10.244.${Math.floor(r() * 16)}.0/24`);
      feed(g.setOwn(own));
    } else if (op < 0.08) {
      // A re-list: the stream diffs the snapshot against what it knew.
      const leases: Lease[] = [];
      const unreadable: UnreadableLease[] = [];
      for (const [k, kv] of store) {
        const read = readLease(PREFIX, { key: k, value: kv.value, lease: '0', modRevision: String(kv.rev) });
        if (isUnreadable(read)) unreadable.push(read);
        else leases.push(read);
      }
      const events = diffLeases(known, leases);
      known.clear();
      for (const l of leases) known.set(leaseId(l), l);
      feed(g.apply(events, unreadable));
    } else {
      // One watch response: a transaction of one to four writes.
      const changes: KvChange[] = [];
      const at = String(++rev);
      for (let i = 0, n = 1 + Math.floor(r() * 4); i < n; i++) {
        const existing = [...store.keys()];
        if (existing.length > 0 && r() < 0.35) {
          const k = pick(existing);
          store.delete(k);
          changes.push({ type: 'delete', key: k, value: '', lease: '0', modRevision: at });
        } else {
          const k = existing.length > 0 && r() < 0.3 ? pick(existing) : randomKey();
          const value = randomValue();
          store.set(k, { value, rev });
          changes.push({ type: 'put', key: k, value, lease: '0', modRevision: at });
        }
      }
      const batch = watchBatch(PREFIX, changes)!;
      feed(g.apply(applyLeaseBatch(known, batch.events), batch.unreadable));
    }
    check(seed, step, own);
  }

  /** Every broken invariant, as a sentence; one expect per step keeps thousands of steps fast. */
  function check(s: number, step: number, ownNet: Ipv4Net): void {
    const bad: string[] = [];
    const passed = [...programmed.values()];
    const accepted = g.acceptedLeases().map(leaseId).sort().join(' ');
    if (accepted !== [...programmed.keys()].sort().join(' ')) bad.push(`the gate says ${accepted}, it passed ${[...programmed.keys()].join(' ')}`);
    for (const [i, a] of passed.entries()) {
      if (overlaps(a.subnet, ownNet)) bad.push(`${leaseId(a)} overlaps own ${formatCidr(ownNet)}`);
      if (!containsNet(network, a.subnet)) bad.push(`${leaseId(a)} is outside the Network`);
      for (const b of passed.slice(i + 1)) if (overlaps(a.subnet, b.subnet)) bad.push(`${leaseId(a)} overlaps ${leaseId(b)}`);
      // Passed means present in etcd now, with this value.
      if (store.get(leaseKey(PREFIX, a.subnet))?.value !== formatLeaseValue(a.attrs)) bad.push(`${leaseId(a)} is not in etcd with this value`);
    }
    // Nothing is kept out without cause: every readable lease is passed, the own one, or rejected for a reason that holds now.
    const rejected = new Map(g.rejections().map((x) => [x.subnet ?? x.key, x]));
    for (const l of known.values()) {
      const id = leaseId(l);
      if (programmed.has(id) || formatCidr(ownNet) === id) continue;
      const why = rejected.get(id);
      const holds =
        why?.reason === 'outside-network'
          ? !containsNet(network, l.subnet)
          : why?.reason === 'overlaps-own'
            ? overlaps(l.subnet, ownNet)
            : why?.reason === 'overlaps-peer' && passed.some((p) => overlaps(p.subnet, l.subnet));
      if (!holds) bad.push(`${id} kept out as ${why?.reason ?? '(no rejection)'}`);
    }
    expect(bad, `seed ${s} step ${step}`).toEqual([]);
  }
}
