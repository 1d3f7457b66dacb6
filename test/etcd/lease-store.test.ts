import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNetworkConfig } from '../../src/subnet/config.js';
import { EtcdRegistry } from '../../src/subnet/etcd-registry.js';
import { formatCidr, parseCidr } from '../../src/lib/ipv4.js';
import { formatLeaseValue, leaseKey } from '../../src/subnet/lease-format.js';
import { LeaseManager } from '../../src/subnet/lease-manager.js';
import type { Lease } from '../../src/subnet/types.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { eventually, memoryLogger } from '../support/logger.js';

let etcd: EtcdServer;
let raw: Etcd3;
const closers: (() => unknown)[] = [];
let n = 0;
const prefix = () => `/test${++n}/network`;

function manager(p: string, ip: string, text = '{"Network":"10.10.0.0/16","Backend":{"Type":"host-gw"}}', extra: Partial<ConstructorParameters<typeof LeaseManager>[0]> = {}) {
  const registry = new EtcdRegistry({ endpoints: [etcd.endpoint], prefix: p });
  const leases: Lease[] = [];
  const mgr = new LeaseManager({
    registry,
    logger: memoryLogger().logger,
    config: parseNetworkConfig(text),
    attrs: { publicIP: ip, publicIPv6: null, backendType: 'host-gw' },
    ttlSeconds: 60,
    preferred: null,
    onLease: (l) => leases.push(l),
    retry: { initialMs: 50, maxMs: 200 },
    ...extra,
  });
  closers.push(() => mgr.stop(), () => registry.close());
  return { mgr, registry, leases };
}

beforeAll(async () => {
  etcd = await startEtcd();
  raw = new Etcd3({ hosts: etcd.endpoint });
});
afterAll(async () => {
  for (const c of closers.reverse()) await c();
  raw?.close();
  await etcd?.stop();
});

describe('lease store against a real etcd', () => {
  it('gives 20 agents acquiring at once 20 distinct subnets, in flannel key format', async () => {
    const p = prefix();
    // 31 leasable /28s for 20 nodes: random picks collide, so the create race is exercised.
    const cfg = '{"Network":"10.10.0.0/23","SubnetLen":28,"Backend":{"Type":"host-gw"}}';
    const mgrs = Array.from({ length: 20 }, (_, i) => manager(p, `198.18.1.${i + 1}`, cfg));
    const leases = await Promise.all(mgrs.map((m) => m.mgr.acquire()));
    expect(new Set(leases.map((l) => formatCidr(l.subnet))).size).toBe(20);
    const kvs = await raw.getAll().prefix(`${p}/subnets/`).strings();
    expect(Object.keys(kvs)).toHaveLength(20);
    for (const [key, value] of Object.entries(kvs)) {
      expect(key).toMatch(/^\/test\d+\/network\/subnets\/10\.10\.[01]\.\d+-28$/);
      expect(value).toMatch(/^\{"PublicIP":"198\.18\.1\.\d+","PublicIPv6":null,"BackendType":"host-gw"\}$/);
    }
  });

  it('re-acquires the same subnet when its own lease key is deleted', async () => {
    const p = prefix();
    const { mgr, registry, leases } = manager(p, '198.18.2.1');
    const first = await mgr.acquire();
    await registry.deleteLease(first.subnet);
    mgr.handleLost('deleted by the test'); // the agent calls this when the watch sees the delete
    await eventually(() => leases.length === 2, 10_000, 're-acquisition');
    expect(formatCidr(leases[1]!.subnet)).toBe(formatCidr(first.subnet));
    expect(leases[1]!.etcdLeaseId).not.toBe(first.etcdLeaseId);
    expect(await raw.get(leaseKey(p, first.subnet)).string()).toBe('{"PublicIP":"198.18.2.1","PublicIPv6":null,"BackendType":"host-gw"}');
  });

  it('notices an expired etcd lease on renewal and re-acquires the same subnet', async () => {
    const p = prefix();
    const { mgr, leases } = manager(p, '198.18.2.2', undefined, { ttlSeconds: 6 });
    const first = await mgr.acquire();
    await raw.lease(1, { autoKeepAlive: false }).grant(); // keep the client warm
    await raw.leaseClient.leaseRevoke({ ID: first.etcdLeaseId }); // as if it expired during an outage
    await eventually(() => leases.length === 2, 15_000, 're-acquisition after expiry');
    expect(formatCidr(leases[1]!.subnet)).toBe(formatCidr(first.subnet));
  });

  it('keeps the subnet and the etcd lease across a restart (takes over its own lease)', async () => {
    const p = prefix();
    const a = manager(p, '198.18.3.1');
    const before = await a.mgr.acquire();
    a.mgr.stop(); // a clean stop keeps the lease in etcd
    const b = manager(p, '198.18.3.1');
    const after = await b.mgr.acquire();
    expect(formatCidr(after.subnet)).toBe(formatCidr(before.subnet));
    expect(after.etcdLeaseId).toBe(before.etcdLeaseId);
  });

  it('prefers the subnet from the subnet file when the node comes back with a new address', async () => {
    const p = prefix();
    const { mgr } = manager(p, '198.18.3.9', undefined, { preferred: parseCidr('10.10.77.0/24') });
    expect(formatCidr((await mgr.acquire()).subnet)).toBe('10.10.77.0/24');
  });

  it('keeps a reservation a reservation (no etcd lease attached) across a restart', async () => {
    const p = prefix();
    const key = leaseKey(p, parseCidr('10.10.50.0/24')!);
    await raw.put(key).value(formatLeaseValue({ publicIP: '198.18.4.1', publicIPv6: null, backendType: 'host-gw' }));
    const { mgr } = manager(p, '198.18.4.1');
    const lease = await mgr.acquire();
    expect(formatCidr(lease.subnet)).toBe('10.10.50.0/24');
    expect(lease.etcdLeaseId).toBe('0');
    const kv = (await raw.get(key).exec()).kvs[0]!;
    expect(kv.lease).toBe('0');
  });

  it('reports a full network with a clear error and keeps trying until a subnet frees up', async () => {
    const p = prefix();
    const cfg = '{"Network":"10.9.0.0/28","Backend":{"Type":"host-gw"}}'; // three leasable /30s
    for (const [i, c] of ['10.9.0.4/30', '10.9.0.8/30', '10.9.0.12/30'].entries()) {
      await raw.put(leaseKey(p, parseCidr(c)!)).value(formatLeaseValue({ publicIP: `198.18.5.${i + 1}`, publicIPv6: null }));
    }
    const log = memoryLogger();
    const { mgr, registry } = manager(p, '198.18.5.9', cfg, { logger: log.logger });
    const pending = mgr.acquire();
    await eventually(() => log.lines().some((l) => String((l.err as { code?: string })?.code) === 'TWILL_ERR_LEASE_NETWORK_FULL'), 5000, 'full log');
    const line = log.lines().find((l) => (l.err as { code?: string })?.code === 'TWILL_ERR_LEASE_NETWORK_FULL')!;
    expect((line.err as { message: string }).message).toContain('10.9.0.0/28 holds 3 /30 subnets');
    await registry.deleteLease(parseCidr('10.9.0.8/30')!);
    expect(formatCidr((await pending).subnet)).toBe('10.9.0.8/30');
  });
});
