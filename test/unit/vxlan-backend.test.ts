import { afterEach, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { createVxlanBackend, deviceSpec } from '../../src/backend/vxlan/index.js';
import { cleanupVxlan } from '../../src/backend/vxlan/index.js';
import type { VxlanOptions } from '../../src/backend/vxlan/options.js';
import { vtepMac, vxlanLeaseAttrs } from '../../src/backend/vxlan/vtep.js';
import { TwillError } from '../../src/errors.js';
import type { BatchResult, KernelRoute, RouteLookup } from '../../src/kernel/index.js';
import { parseCidr } from '../../src/lib/ipv4.js';
import type { Lease, LeaseEvent } from '../../src/subnet/types.js';
import { fakeKernel } from '../support/fake-kernel.js';
import { eventually, memoryLogger } from '../support/logger.js';

const DEFAULTS: VxlanOptions = { vni: 1, port: 0, gbp: false, learning: false, directRouting: false, mtu: null };
const lease = (subnet: string, publicIP: string, attrs = vxlanLeaseAttrs(publicIP, 1)): Lease => ({ subnet: parseCidr(subnet)!, attrs, etcdLeaseId: '7', modRevision: '1' });
const added = (l: Lease): LeaseEvent => ({ type: 'added', lease: l });
const OWN = lease('10.244.1.0/24', '198.18.0.11');
const B = lease('10.244.2.0/24', '198.18.0.12');
const C = lease('10.244.3.0/24', '198.19.0.13');
const UDP = lease('10.244.4.0/24', '198.18.0.14', { publicIP: '198.18.0.14', publicIPv6: null });

let backend: Backend | undefined;
afterEach(async () => {
  await backend?.stop();
  backend = undefined;
});

/** The fake kernel, with an in-memory table main for routes and C behind a router. */
function setup(options: Partial<VxlanOptions> = {}, resyncMs = 3_600_000) {
  const fake = fakeKernel();
  const table = new Map<string, KernelRoute>();
  const lookups: Record<string, RouteLookup> = { '198.18.0.12': { dev: 'eth0' }, '198.19.0.13': { dev: 'eth0', gateway: '198.18.0.1' } };
  const kernel = {
    ...fake.kernel,
    routes: {
      ...fake.kernel.routes,
      listMain: async () => [...table.values()],
      apply: async (changes: readonly { op: string; dst: string; gateway?: string; dev?: string; proto: number }[]): Promise<BatchResult> => {
        for (const c of changes) if (c.op === 'delete') table.delete(c.dst); else table.set(c.dst, { dst: c.dst, gateway: c.gateway!, dev: c.dev!, proto: c.proto });
        return { failed: [] };
      },
      getMany: async (ips: readonly string[]) => new Map(ips.map((ip) => [ip, lookups[ip] ?? null])),
    },
  };
  const { logger, lines } = memoryLogger();
  const network = { network: parseCidr('10.244.0.0/16')!, subnetLen: 24, subnetMin: 0, subnetMax: 0, backend: { type: 'vxlan', raw: {} } };
  const ctx = { logger, network, ownLease: OWN, iface: { name: 'eth0', address: '198.18.0.11', mtu: 1500 }, kernel, options: { ...DEFAULTS, ...options }, flags: {} };
  backend = createVxlanBackend(ctx, { resyncMs, now: () => new Date('2025-01-02T03:04:05.000Z') });
  const routes = () => Object.fromEntries([...table.values()].map((r) => [r.dst, `via ${r.gateway} dev ${r.dev}`]));
  const messages = (msg: string) => lines().filter((l) => l['msg'] === msg);
  return { fake, table, routes, messages, backend, spec: deviceSpec(ctx) };
}

describe('vxlan backend (fake kernel)', () => {
  it('makes flannel.1 as flannel does and programs each vxlan peer; other types are skipped and reported once', async () => {
    const t = setup();
    await t.backend.start();
    expect(t.fake.vxlanLinks.get('flannel.1')).toEqual({
      name: 'flannel.1', kind: 'vxlan', vni: 1, local: '198.18.0.11', dev: 'eth0', port: 8472, gbp: false, learning: false,
      mac: vtepMac('198.18.0.11', 1), mtu: 1450, up: true, ipv4: ['10.244.1.0/32'],
    });
    expect(t.fake.calls.filter((c) => c.startsWith('neigh') || c.startsWith('fdb'))).toEqual([]); // nothing before the first peer set
    await t.backend.applyPeerChanges([added(OWN), added(B), added(C), added(UDP)]);
    expect(t.fake.neighbours.get('flannel.1')).toEqual([{ ip: '10.244.2.0', mac: vtepMac('198.18.0.12', 1) }, { ip: '10.244.3.0', mac: vtepMac('198.19.0.13', 1) }]);
    expect(t.fake.fdb.get('flannel.1')).toEqual([{ mac: vtepMac('198.18.0.12', 1), dst: '198.18.0.12' }, { mac: vtepMac('198.19.0.13', 1), dst: '198.19.0.13' }]);
    expect(t.routes()).toEqual({ '10.244.2.0/24': 'via 10.244.2.0 dev flannel.1', '10.244.3.0/24': 'via 10.244.3.0 dev flannel.1' });
    const status = t.backend.status();
    expect(status).toMatchObject({ type: 'vxlan', mtu: 1450, device: 'flannel.1', routes: 2, details: { vni: 1, port: 8472, peersVxlan: 2, peersDirect: 0 } });
    expect(status.peers.map((p) => [p.subnet, p.state, p.via ?? p.reason])).toEqual([
      ['10.244.2.0/24', 'programmed', 'vxlan'],
      ['10.244.3.0/24', 'programmed', 'vxlan'],
      ['10.244.4.0/24', 'skipped', 'BackendType (none: udp), not vxlan'],
    ]);
    await t.backend.applyPeerChanges([added(UDP)]);
    expect(t.messages('peer of another backend type; skipped')).toHaveLength(1);

    await t.backend.applyPeerChanges([{ type: 'removed', lease: C }, { type: 'removed', lease: UDP }]);
    expect(t.fake.neighbours.get('flannel.1')).toHaveLength(1);
    expect(t.fake.fdb.get('flannel.1')).toHaveLength(1);
    expect(Object.keys(t.routes())).toEqual(['10.244.2.0/24']);
    expect(t.backend.status().peers.map((p) => p.subnet)).toEqual(['10.244.2.0/24']);
  });

  it('with DirectRouting, routes a peer on our segment via its PublicIP and tunnels to the one behind a router', async () => {
    const t = setup({ directRouting: true });
    await t.backend.start();
    await t.backend.applyPeerChanges([added(B), added(C)]);
    expect(t.routes()).toEqual({ '10.244.2.0/24': 'via 198.18.0.12 dev eth0', '10.244.3.0/24': 'via 10.244.3.0 dev flannel.1' });
    expect(t.fake.neighbours.get('flannel.1')).toEqual([{ ip: '10.244.3.0', mac: vtepMac('198.19.0.13', 1) }]);
    expect(t.backend.status().peers.map((p) => p.via)).toEqual(['direct', 'vxlan']);
    expect(t.backend.status().details).toMatchObject({ directRouting: true, peersDirect: 1, peersVxlan: 1 });
  });

  it('puts back a neighbour, an FDB entry, a route and the device removed by hand on the next timed pass, logged and counted', async () => {
    const t = setup({}, 30);
    await t.backend.start();
    await t.backend.applyPeerChanges([added(B)]);
    t.fake.neighbours.set('flannel.1', []);
    t.fake.fdb.set('flannel.1', []);
    t.table.clear();
    await eventually(() => t.backend.status().details?.['repairs'] && (t.backend.status().details!['repairs'] as { route: number }).route === 1, 2_000, 'the repair');
    expect(t.fake.neighbours.get('flannel.1')).toHaveLength(1);
    expect(t.fake.fdb.get('flannel.1')).toHaveLength(1);
    expect(t.messages('vxlan entries changed under us; put back')).toMatchObject([{ neighbour: 1, fdb: 1, route: 1 }]);

    t.fake.vxlanLinks.delete('flannel.1');
    t.fake.neighbours.delete('flannel.1');
    t.fake.fdb.delete('flannel.1');
    t.table.clear();
    await eventually(() => t.fake.vxlanLinks.has('flannel.1') && t.table.size === 1 && t.fake.fdb.get('flannel.1')?.length === 1, 2_000, 'the device');
    expect(t.backend.status().details).toMatchObject({ repairs: { device: 1, neighbour: 1, fdb: 1, route: 1 } });
    expect(t.messages('vxlan device was gone; recreated, peers reprogrammed')).toHaveLength(1);
  });

  it('recreates an incompatible device and keeps a compatible one', async () => {
    const t = setup();
    t.fake.vxlanLinks.set('flannel.1', { ...t.spec, kind: 'vxlan', vni: 1, local: '198.18.0.99', port: 8472, up: true, ipv4: ['10.244.1.0/32'] });
    await t.backend.start();
    expect(t.fake.calls.filter((c) => c.startsWith('vxlan.'))).toEqual(['vxlan.show flannel.1', 'vxlan.remove flannel.1', 'vxlan.create flannel.1', 'vxlan.configure flannel.1']);
    expect(t.messages('vxlan device incompatible; recreated')).toMatchObject([{ reason: 'local 198.18.0.99, not 198.18.0.11' }]);
    expect(t.fake.vxlanLinks.get('flannel.1')?.local).toBe('198.18.0.11');
  });

  it('fails start() with TWILL_ERR_VXLAN_DEVICE when the device cannot be made (no vxlan module, say)', async () => {
    const t = setup();
    t.fake.kernel.vxlan.create = async () => {
      throw new TwillError('TWILL_ERR_KERNEL_COMMAND', 'ip link add flannel.1 ... failed (exit 2: Error: Unknown device type.)');
    };
    await expect(t.backend.start()).rejects.toMatchObject({ code: 'TWILL_ERR_VXLAN_DEVICE', cause: { code: 'TWILL_ERR_KERNEL_COMMAND' } });
  });

  it('cleanup removes only the devices twill makes', async () => {
    const t = setup();
    await t.backend.start();
    t.fake.vxlanLinks.set('flannel.2', { name: 'flannel.2', kind: 'vxlan', vni: 2, local: '198.18.0.11', gbp: false, mac: '0a:0b:0c:0d:0e:0f', mtu: 1450, up: true, ipv4: [] });
    t.fake.vxlanLinks.set('vxlan.other', { name: 'vxlan.other', kind: 'vxlan', vni: 7, local: '198.18.0.11', gbp: false, mac: vtepMac('198.18.0.11', 7), mtu: 1450, up: true, ipv4: [] });
    expect(await cleanupVxlan(t.fake.kernel)).toEqual({ vxlanDevices: ['flannel.1'] });
    expect([...t.fake.vxlanLinks.keys()]).toEqual(['flannel.2', 'vxlan.other']);
  });
});
