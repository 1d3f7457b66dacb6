import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdRegistry } from '../../src/subnet/etcd-registry.js';
import { formatCidr, parseCidr } from '../../src/lib/ipv4.js';
import { formatLeaseValue, leaseKey } from '../../src/subnet/lease-format.js';
import { LeaseStream } from '../../src/subnet/lease-watch.js';
import type { LeaseEvent } from '../../src/subnet/types.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { eventually, memoryLogger } from '../support/logger.js';
import { startProxy, type CuttableProxy } from '../support/proxy.js';

const P = '/coreos.com/network';
let etcd: EtcdServer;
let proxy: CuttableProxy;
let raw: Etcd3;

const put = (cidr: string, ip: string) => raw.put(leaseKey(P, parseCidr(cidr)!)).value(formatLeaseValue({ publicIP: ip, publicIPv6: null, backendType: 'host-gw' }));
const del = (cidr: string) => raw.delete().key(leaseKey(P, parseCidr(cidr)!));

beforeAll(async () => {
  etcd = await startEtcd();
  proxy = await startProxy(etcd.port);
  raw = new Etcd3({ hosts: etcd.endpoint });
});
afterAll(async () => {
  raw?.close();
  await proxy?.close();
  await etcd?.stop();
});

describe('lease stream against a real etcd', () => {
  it('lists, then follows the watch, ignores renewals, and recovers from a compacted revision', async () => {
    await put('10.244.1.0/24', '198.18.0.11');
    await put('10.244.2.0/24', '198.18.0.12');
    await raw.put(`${P}/subnets/not-a-lease`).value('x'); // ignored, as flannel ignores it
    const events: LeaseEvent[] = [];
    const log = memoryLogger();
    const registry = new EtcdRegistry({ endpoints: [proxy.endpoint], prefix: P, callTimeoutMs: 1000 });
    const stream = new LeaseStream({ registry, logger: log.logger, onEvents: (evs) => events.push(...evs) });
    try {
      await stream.start();
      const peers = () => stream.leases().map((l) => `${formatCidr(l.subnet)} ${l.attrs.publicIP}`).sort();
      expect(peers()).toEqual(['10.244.1.0/24 198.18.0.11', '10.244.2.0/24 198.18.0.12']);

      await put('10.244.3.0/24', '198.18.0.13');
      await eventually(() => peers().length === 3, 5000, 'watched add');
      const before = events.length;
      await put('10.244.3.0/24', '198.18.0.13'); // a flannel renewal: same value again
      await put('10.244.4.0/24', '198.18.0.14');
      await eventually(() => peers().length === 4, 5000, 'second add');
      expect(events.length).toBe(before + 1); // the repeated PUT made no event

      // Outage: changes happen while the agent cannot see etcd, and history is compacted.
      proxy.cut();
      await del('10.244.1.0/24');
      await put('10.244.2.0/24', '198.18.0.22');
      await put('10.244.5.0/24', '198.18.0.15');
      const rev = (await raw.get(`${P}/config`).exec()).header.revision;
      await raw.kv.compact({ revision: rev, physical: true });
      proxy.restore();

      await eventually(() => log.lines().some((l) => l.msg === 'lease watch reset; re-listing'), 40_000, 'watch reset');
      const want = ['10.244.2.0/24 198.18.0.22', '10.244.3.0/24 198.18.0.13', '10.244.4.0/24 198.18.0.14', '10.244.5.0/24 198.18.0.15'];
      await eventually(() => JSON.stringify(peers()) === JSON.stringify(want), 10_000, 'peer set after re-list');
      // The consumer saw the same story as events: 1 removed, 2 changed, 5 added.
      const tail = events.slice(before + 1).map((e) => `${e.type} ${formatCidr(e.lease.subnet)}`).sort();
      expect(tail).toEqual(['added 10.244.2.0/24', 'added 10.244.5.0/24', 'removed 10.244.1.0/24']);
      // The watch's etcd errors came through fromEtcd: coded, and a break is logged once, not per reconnect attempt.
      expect(log.lines().filter((l) => l.msg === 'lease watch reset; re-listing').map((l) => l.code)).toEqual(['TWILL_ERR_ETCD_WATCH_CANCELLED']);
      expect(log.lines().filter((l) => l.msg === 'etcd watch connection lost').map((l) => l.code)).toEqual(['TWILL_ERR_ETCD_UNAVAILABLE']);
    } finally {
      await stream.stop();
      registry.close();
    }
  });
});
