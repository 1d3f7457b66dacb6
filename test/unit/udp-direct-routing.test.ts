import { afterEach, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { DirectRoutes } from '../../src/backend/shared/direct-routes.js';
import { createUdpBackend } from '../../src/backend/udp/index.js';
import type { BatchResult, ExecFn, Kernel, KernelRoute, RouteChange, RouteLookup } from '../../src/kernel/index.js';
import { parseCidr } from '../../src/lib/ipv4.js';
import type { Lease, LeaseEvent } from '../../src/subnet/types.js';
import { FakeTun, FakeUdpNetwork } from '../support/udp-fakes.js';
import { memoryLogger } from '../support/logger.js';

const lease = (subnet: string, publicIP: string): Lease => ({ subnet: parseCidr(subnet)!, attrs: { publicIP, publicIPv6: null }, etcdLeaseId: '7', modRevision: '1' });
const added = (l: Lease): LeaseEvent => ({ type: 'added', lease: l });
const A = lease('10.244.1.0/24', '198.18.0.11');
const B = lease('10.244.2.0/24', '198.18.0.12'); // on our segment
const C = lease('10.244.3.0/24', '198.19.0.13'); // behind a router

/** Table main in memory; B's PublicIP is on-link through eth0, C's behind a gateway. */
function memoryKernel() {
  const table = new Map<string, KernelRoute>([['198.18.0.0/24', { dst: '198.18.0.0/24', dev: 'eth0', proto: 2 }]]);
  const lookups: Record<string, RouteLookup> = { '198.18.0.12': { dev: 'eth0' }, '198.19.0.13': { dev: 'eth0', gateway: '198.18.0.1' } };
  const routes = {
    listMain: async () => [...table.values()],
    apply: async (changes: readonly RouteChange[]): Promise<BatchResult> => {
      for (const c of changes) if (c.op === 'delete') table.delete(c.dst); else table.set(c.dst, { dst: c.dst, gateway: c.gateway, dev: c.dev, proto: c.proto });
      return { failed: [] };
    },
    getMany: async (ips: readonly string[]) => new Map(ips.map((ip) => [ip, lookups[ip] ?? null])),
  };
  const ours = () => Object.fromEntries([...table.values()].filter((r) => r.proto === 116).map((r) => [r.dst, `via ${r.gateway} dev ${r.dev}`]));
  return { kernel: { netns: undefined, routes } as unknown as Kernel, table, lookups, ours };
}

const started: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((b) => b.stop()));
});

describe('DirectRoutes (shared: udp DirectRouting)', () => {
  it('routes on-link peers via their PublicIP, leaves the others to the tunnel, removes stale routes of ours', async () => {
    const k = memoryKernel();
    k.table.set('10.244.9.0/24', { dst: '10.244.9.0/24', gateway: '198.18.0.19', dev: 'eth0', proto: 116 });
    k.table.set('10.244.0.0/16', { dst: '10.244.0.0/16', dev: 'twill0', proto: 116 }); // the tunnel's own route
    const { logger } = memoryLogger();
    const direct = new DirectRoutes({ kernel: k.kernel, iface: 'eth0', log: logger, resyncMs: 3_600_000, l2MaxAgeMs: 60_000 });
    started.push(direct);
    await direct.setPeers([{ subnet: '10.244.2.0/24', publicIP: '198.18.0.12' }, { subnet: '10.244.3.0/24', publicIP: '198.19.0.13' }]);
    expect(k.ours()).toEqual({ '10.244.2.0/24': 'via 198.18.0.12 dev eth0', '10.244.0.0/16': 'via undefined dev twill0' });
    expect([direct.isDirect('10.244.2.0/24'), direct.isDirect('10.244.3.0/24')]).toEqual([true, false]);
    await direct.setPeers([{ subnet: '10.244.3.0/24', publicIP: '198.19.0.13' }]);
    expect(k.ours()).toEqual({ '10.244.0.0/16': 'via undefined dev twill0' });
  });

  it('puts back a route deleted by hand on its timed pass', async () => {
    const k = memoryKernel();
    const { logger } = memoryLogger();
    const direct = new DirectRoutes({ kernel: k.kernel, iface: 'eth0', log: logger, resyncMs: 20, l2MaxAgeMs: 60_000 });
    started.push(direct);
    direct.start();
    await direct.setPeers([{ subnet: '10.244.2.0/24', publicIP: '198.18.0.12' }]);
    k.table.delete('10.244.2.0/24');
    await new Promise((r) => setTimeout(r, 100));
    expect(k.ours()).toEqual({ '10.244.2.0/24': 'via 198.18.0.12 dev eth0' });
  });
});

describe('udp backend with DirectRouting', () => {
  function setup(directRouting: boolean) {
    const k = memoryKernel();
    const kernel = k.kernel;
    const exec = (async () => ({ stdout: '', stderr: '', code: 0 })) as ExecFn;
    const { logger } = memoryLogger();
    const config = { network: parseCidr('10.244.0.0/16')!, subnetLen: 24, subnetMin: 0, subnetMax: 0, backend: { type: 'udp', raw: {} } };
    const backend: Backend = createUdpBackend(
      { logger, network: config, ownLease: A, iface: { name: 'eth0', address: '198.18.0.11', mtu: 1500 }, kernel, options: { port: 8285, directRouting }, flags: { tunName: 'twill0', tunOffload: 'off', datapath: 'dgram' } },
      { openTun: (req) => new FakeTun(req.name, req.offload), openTransport: new FakeUdpNetwork().opener('198.18.0.11'), tunConfig: { exec, writeProc: async () => undefined } },
    );
    started.push(backend);
    return { backend, ...k };
  }

  it('sends a peer on our segment by a kernel route, and tunnels to the one behind a router', async () => {
    const t = setup(true);
    await t.backend.start();
    await t.backend.applyPeerChanges([added(A), added(B), added(C)]);
    expect(t.ours()).toEqual({ '10.244.2.0/24': 'via 198.18.0.12 dev eth0' });
    expect(t.backend.status().peers.map((p) => [p.subnet, p.state, p.via])).toEqual([
      ['10.244.2.0/24', 'programmed', 'direct'],
      ['10.244.3.0/24', 'programmed', 'udp'],
    ]);
    await t.backend.applyPeerChanges([{ type: 'removed', lease: B }]);
    expect(t.ours()).toEqual({});
  });

  it('without it, touches no route and says nothing of how peers are reached', async () => {
    const t = setup(false);
    await t.backend.start();
    await t.backend.applyPeerChanges([added(B), added(C)]);
    expect(t.ours()).toEqual({});
    expect(t.backend.status().peers.every((p) => p.via === undefined)).toBe(true);
  });
});
