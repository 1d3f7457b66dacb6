import { afterEach, describe, expect, it, vi } from 'vitest';
import { isTwillError, TwillError } from '../../src/errors.js';
import { formatCidr, parseCidr, type Ipv4Net } from '../../src/lib/ipv4.js';
import { parseNetworkConfig } from '../../src/subnet/config.js';
import { formatLeaseValue, leaseKey } from '../../src/subnet/lease-format.js';
import { LeaseManager, type LeaseManagerOptions } from '../../src/subnet/lease-manager.js';
import type { Lease, LeaseAttrs } from '../../src/subnet/types.js';
import { eventually, memoryLogger } from '../support/logger.js';
import { ManualClock } from '../support/manual-clock.js';
import { MemoryRegistry } from '../support/memory-registry.js';

const OURS = '198.18.0.1';
const attrs = (publicIP: string): LeaseAttrs => ({ publicIP, publicIPv6: null, backendType: 'host-gw' });
const net = (cidr: string) => parseCidr(cidr)!;
const owners = async (r: MemoryRegistry) => (await r.listLeases()).leases.map((l) => `${formatCidr(l.subnet)} ${l.attrs.publicIP} ${l.etcdLeaseId === '0' ? 'reservation' : 'lease'}`);
const managers: LeaseManager[] = [];
/** A random pick that moves on at each call: without a preference, a re-acquisition lands elsewhere. */
const moving = () => {
  let calls = 0;
  return (n: number) => calls++ % n;
};

afterEach(() => {
  for (const m of managers.splice(0)) m.stop();
  vi.useRealTimers();
});

interface Setup {
  readonly registry?: MemoryRegistry;
  readonly config?: string;
  readonly ttlSeconds?: number;
  readonly preferred?: Ipv4Net | null;
}

/** A manager for OURS on a memory registry; `random` picks the first free subnet, so choices are known. */
function manager(s: Setup = {}, extra: Partial<LeaseManagerOptions> = {}) {
  const clock = new ManualClock();
  const registry = s.registry ?? new MemoryRegistry({ clock });
  const log = memoryLogger();
  const leases: Lease[] = [];
  const lost: string[] = [];
  const mgr = new LeaseManager({
    registry,
    logger: log.logger,
    config: parseNetworkConfig(s.config ?? '{"Network":"10.10.0.0/16","Backend":{"Type":"host-gw"}}'),
    attrs: attrs(OURS),
    ttlSeconds: s.ttlSeconds ?? 60,
    preferred: s.preferred ?? null,
    onLease: (l) => leases.push(l),
    onLost: (_l, reason) => lost.push(reason),
    random: () => 0,
    retry: { initialMs: 5, maxMs: 20 },
    ...extra,
  });
  managers.push(mgr);
  return { mgr, registry, clock, leases, lost, log };
}

describe('lease manager on the memory registry', () => {
  it('retries after losing the creation race, and takes the next free subnet', async () => {
    class Racing extends MemoryRegistry {
      raced = false;
      override async createLease(subnet: Ipv4Net, a: LeaseAttrs, ttl: number): Promise<Lease | null> {
        if (!this.raced) await super.createLease(subnet, attrs('198.18.0.9'), ttl); // another node, just before us
        this.raced = true;
        return super.createLease(subnet, a, ttl);
      }
    }
    const { mgr, registry, log } = manager({ registry: new Racing() });
    expect(formatCidr((await mgr.acquire()).subnet)).toBe('10.10.2.0/24');
    expect(await owners(registry)).toEqual(['10.10.1.0/24 198.18.0.9 lease', `10.10.2.0/24 ${OURS} lease`]);
    expect(log.lines().filter((l) => l.msg === 'lost the race for a subnet to another node; retrying')).toHaveLength(1);
  });

  it('retries a take-over of its own lease whose key changed since it was listed', async () => {
    const registry = new MemoryRegistry();
    const before = (await registry.createLease(net('10.10.9.0/24'), attrs(OURS), 60))!; // a previous run's lease
    let raced = false;
    const takeOver = registry.takeOverLease.bind(registry);
    registry.takeOverLease = async (lease, a, ttl) => {
      if (!raced) await takeOver(lease, lease.attrs, ttl); // a write in between: the key's revision moves on
      raced = true;
      return takeOver(lease, a, ttl);
    };
    const { mgr, log } = manager({ registry });
    const after = await mgr.acquire();
    expect(formatCidr(after.subnet)).toBe('10.10.9.0/24');
    expect(after.etcdLeaseId).toBe(before.etcdLeaseId);
    expect(log.lines().some((l) => l.msg === 'lost the race for a subnet to another node; retrying')).toBe(true);
  });

  it('reports a full network (TWILL_ERR_LEASE_NETWORK_FULL), keeps trying, and takes the subnet freed', async () => {
    const registry = new MemoryRegistry();
    let lists = 0;
    const list = registry.listLeases.bind(registry);
    registry.listLeases = () => (lists++, list());
    for (const [i, c] of ['10.9.0.4/30', '10.9.0.8/30', '10.9.0.12/30'].entries()) await registry.createLease(net(c), attrs(`198.18.5.${i + 1}`), 60);
    const { mgr, log } = manager({ registry, config: '{"Network":"10.9.0.0/28","Backend":{"Type":"host-gw"}}' });
    const pending = mgr.acquire();
    const full = () => log.lines().find((l) => (l.err as { code?: string } | undefined)?.code === 'TWILL_ERR_LEASE_NETWORK_FULL');
    await eventually(() => full() && lists >= 3, 5000, 'full, and retried');
    expect((full()!.err as { message: string }).message).toContain('10.9.0.0/28 holds 3 /30 subnets');
    await registry.deleteLease(net('10.9.0.8/30'));
    expect(formatCidr((await pending).subnet)).toBe('10.9.0.8/30');
  });

  it('re-acquires the same subnet, with a new etcd lease, after its key is deleted', async () => {
    const { mgr, registry, leases, lost } = manager({}, { random: moving() });
    const first = await mgr.acquire();
    await registry.deleteLease(first.subnet);
    mgr.handleLost('lease key deleted from etcd'); // what the agent does when the watch shows the delete
    await eventually(() => leases.length === 2, 5000, 're-acquisition');
    expect(formatCidr(leases[1]!.subnet)).toBe(formatCidr(first.subnet));
    expect(leases[1]!.etcdLeaseId).not.toBe(first.etcdLeaseId);
    expect(lost).toEqual(['lease key deleted from etcd']);
    expect(await owners(registry)).toEqual([`${formatCidr(first.subnet)} ${OURS} lease`]);
  });

  it('renews a third of the TTL in: the lease outlives many TTLs', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { mgr, registry, clock, lost } = manager({ ttlSeconds: 6 });
    const lease = await mgr.acquire();
    for (let i = 0; i < 10; i++) {
      clock.advance(2);
      await vi.advanceTimersByTimeAsync(2000);
    }
    expect(lost).toEqual([]);
    expect(await owners(registry)).toEqual([`${formatCidr(lease.subnet)} ${OURS} lease`]);
    expect(mgr.current()).toBe(lease);
  });

  it('notices an expired etcd lease when renewing and re-acquires the same subnet', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { mgr, clock, leases, lost } = manager({ ttlSeconds: 6 }, { random: moving() });
    const first = await mgr.acquire();
    clock.advance(60); // e.g. the host slept: the etcd lease ran out and took the key
    await vi.advanceTimersByTimeAsync(2000); // the renewal is due: it finds the etcd lease gone
    expect(leases).toHaveLength(2);
    expect(lost).toEqual(['etcd lease expired']);
    expect(formatCidr(leases[1]!.subnet)).toBe(formatCidr(first.subnet));
    expect(leases[1]!.etcdLeaseId).not.toBe(first.etcdLeaseId);
  });

  it('takes over a reservation with its PublicIP and keeps it a reservation: never renewed, never expires', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const clock = new ManualClock();
    const registry = new MemoryRegistry({ clock });
    registry.putRaw(leaseKey(registry.prefix, net('10.10.50.0/24')), formatLeaseValue({ publicIP: OURS, publicIPv6: null }));
    let renewals = 0;
    const renew = registry.renewLease.bind(registry);
    registry.renewLease = (l) => (renewals++, renew(l));
    const { mgr } = manager({ registry, ttlSeconds: 6 });
    const lease = await mgr.acquire();
    expect(lease).toMatchObject({ etcdLeaseId: '0', attrs: attrs(OURS) });
    clock.advance(86_400);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(renewals).toBe(0);
    expect((await registry.listLeases()).leases).toEqual([lease]); // our attrs written, still no etcd lease
  });

  it('reuses the subnet of the previous subnet file when it is free', async () => {
    const { mgr } = manager({ preferred: net('10.10.77.0/24') });
    expect(formatCidr((await mgr.acquire()).subnet)).toBe('10.10.77.0/24');
  });

  it('does not take the previous subnet when another node holds it', async () => {
    const registry = new MemoryRegistry();
    await registry.createLease(net('10.10.77.0/24'), attrs('198.18.0.7'), 60);
    const { mgr } = manager({ registry, preferred: net('10.10.77.0/24') });
    expect(formatCidr((await mgr.acquire()).subnet)).toBe('10.10.1.0/24');
    expect(await owners(registry)).toEqual([`10.10.1.0/24 ${OURS} lease`, '10.10.77.0/24 198.18.0.7 lease']);
  });

  it('stop() during an attempt that then fails ends acquire() at once, not after another backoff', async () => {
    const registry = new MemoryRegistry();
    let release = () => undefined as void;
    const gate = new Promise<void>((r) => (release = r));
    registry.listLeases = async () => {
      await gate;
      throw new TwillError('TWILL_ERR_ETCD_UNAVAILABLE', 'etcd is unreachable (from the test)');
    };
    const { mgr } = manager({ registry }, { retry: { initialMs: 2000, maxMs: 2000 } });
    const pending = mgr.acquire().then(() => 'acquired', (err: unknown) => (isTwillError(err) ? err.code : 'other'));
    await new Promise((r) => setImmediate(r));
    mgr.stop(); // while the list is in flight: no backoff is pending to cancel
    release();
    const t0 = Date.now();
    expect(await pending).toBe('TWILL_ERR_LEASE_LOST');
    expect(Date.now() - t0).toBeLessThan(500);
  });
});
