/**
 * host-gw against the real kernel, in namespaces only: twl-t-hg-a and twl-t-hg-b are two nodes on
 * one L2 segment (a bridge in twl-t-hg-br), underlay 198.18.0.0/24, pod subnets from 10.244.0.0/16.
 * Nothing is changed in the root namespace.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { createHostGwBackend } from '../../src/backend/host-gw/index.js';
import { createKernel, type Kernel } from '../../src/kernel/index.js';
import { createLogger } from '../../src/log.js';
import { parseCidr } from '../../src/lib/ipv4.js';
import type { Lease, LeaseEvent } from '../../src/subnet/types.js';
import { bridge, createNetns, deleteNetnsByPrefix, nsExec, nsIp, nsRoutes, veth } from '../support/netns.js';

const PREFIX = 'twl-t-hg-';
const [A, B, BR] = [`${PREFIX}a`, `${PREFIX}b`, `${PREFIX}br`];
const RESYNC_MS = 500;

function lease(subnet: string, publicIP: string, backendType = 'host-gw'): Lease {
  return { subnet: parseCidr(subnet)!, attrs: { publicIP, publicIPv6: null, backendType }, etcdLeaseId: '1', modRevision: '1' };
}
const LEASE_A = lease('10.244.1.0/24', '198.18.0.11');
const LEASE_B = lease('10.244.2.0/24', '198.18.0.12');
const LEASE_FAR = lease('10.244.3.0/24', '198.19.5.20'); // behind a router, not on the segment
const LEASE_VXLAN = lease('10.244.4.0/24', '198.18.0.14', 'vxlan');
const SNAPSHOT: LeaseEvent[] = [LEASE_A, LEASE_B, LEASE_FAR, LEASE_VXLAN].map((l) => ({ type: 'added', lease: l }));

async function setupTopology(): Promise<void> {
  await createNetns(PREFIX, [BR, A, B]);
  await veth({ ns: A, name: 'eth0' }, { ns: BR, name: 'va' });
  await veth({ ns: B, name: 'eth0' }, { ns: BR, name: 'vb' });
  await bridge(BR, 'br0', ['va', 'vb']);
  for (const [ns, underlay, pod] of [[A, '198.18.0.11', '10.244.1.1'], [B, '198.18.0.12', '10.244.2.1']] as const) {
    await nsIp(ns, ['addr', 'add', `${underlay}/24`, 'dev', 'eth0']);
    await nsIp(ns, ['addr', 'add', `${pod}/32`, 'dev', 'lo']); // stands in for a pod
  }
  const batch = [
    'route add 198.19.0.0/16 via 198.18.0.1 dev eth0', // the far peer sits behind a router
    'route add 10.244.50.0/24 via 198.18.0.12 dev eth0', // foreign: not ours, never touched
    'route add 10.244.60.0/24 via 198.18.0.12 dev eth0 proto 116', // stale: ours, no peer has it
  ];
  await nsIp(A, ['-batch', '-'], `${batch.join('\n')}\n`);
  await nsIp(B, ['route', 'add', 'default', 'via', '198.18.0.1', 'dev', 'eth0']);
}

const logs: { msg: string; subnet?: string; ns: string }[] = [];
/** A watches route events (`ip monitor`) and polls only hourly; B cannot watch and polls every RESYNC_MS. */
function startBackend(ns: string, own: Lease, watch: boolean): { backend: Backend; kernel: Kernel } {
  const stream = { write: (s: string) => logs.push({ ...(JSON.parse(s) as { msg: string }), ns }) };
  const real = createKernel({ netns: ns });
  const kernel = watch ? real : { ...real, routes: { ...real.routes, events: undefined } };
  const network = { network: parseCidr('10.244.0.0/16')!, subnetLen: 24, subnetMin: 0, subnetMax: 0, backend: { type: 'host-gw', raw: {} } };
  const iface = { name: 'eth0', address: own.attrs.publicIP, mtu: 1500 };
  const ctx = { logger: createLogger({ stream }), network, ownLease: own, iface, kernel, options: {}, flags: {} };
  return { backend: createHostGwBackend(ctx, { resyncMs: RESYNC_MS, watchedResyncMs: 3_600_000 }), kernel };
}

async function ourRoutes(ns: string): Promise<Record<string, string>> {
  const routes = (await nsRoutes(ns)).filter((r) => r.protocol === '116');
  return Object.fromEntries(routes.map((r) => [r.dst, `via ${r.gateway} dev ${r.dev}`]));
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the kernel state');
    await sleep(100);
  }
}

describe.skipIf(process.getuid?.() !== 0)('host-gw on a real kernel (namespaces)', () => {
  const nodes: Backend[] = [];
  let a: { backend: Backend; kernel: Kernel };

  beforeAll(async () => {
    try {
      await setupTopology();
      a = startBackend(A, LEASE_A, true);
      const b = startBackend(B, LEASE_B, false);
      nodes.push(a.backend, b.backend);
      for (const n of nodes) await n.start();
      await Promise.all(nodes.map((n) => n.applyPeerChanges(SNAPSHOT)));
    } catch (err) {
      await deleteNetnsByPrefix(PREFIX);
      throw err;
    }
  });

  afterAll(async () => {
    try {
      await Promise.all(nodes.map((n) => n.stop()));
    } finally {
      await deleteNetnsByPrefix(PREFIX);
    }
  });

  it('resolves the external interface inside the namespace', async () => {
    const want = { name: 'eth0', address: '198.18.0.11', mtu: 1500 };
    expect(await a.kernel.links.resolveExternal('eth0')).toEqual(want);
    expect(await a.kernel.links.resolveExternal('198.18.0.11')).toEqual(want);
    expect(await createKernel({ netns: B }).links.resolveExternal()).toEqual({ ...want, address: '198.18.0.12' });
    await expect(a.kernel.links.resolveExternal()).rejects.toMatchObject({ code: 'TWILL_ERR_KERNEL_IFACE' }); // A has no default route
    await expect(a.kernel.links.resolveExternal('nope0')).rejects.toMatchObject({ code: 'TWILL_ERR_KERNEL_IFACE' });
  });

  it('programs on-link host-gw peers with proto 116, removes the stale route, keeps the foreign one', async () => {
    expect(await ourRoutes(A)).toEqual({ '10.244.2.0/24': 'via 198.18.0.12 dev eth0' });
    expect(await ourRoutes(B)).toEqual({ '10.244.1.0/24': 'via 198.18.0.11 dev eth0' });
    const foreign = (await nsRoutes(A)).find((r) => r.dst === '10.244.50.0/24');
    expect(foreign).toMatchObject({ gateway: '198.18.0.12', dev: 'eth0' });
    expect(foreign?.protocol).not.toBe('116');
    expect(a.backend.status()).toMatchObject({ type: 'host-gw', routes: 1 });
  });

  it('carries traffic between the two nodes’ pod subnets', async () => {
    const res = await nsExec(A, 'ping', ['-c', '1', '-W', '2', '-I', '10.244.1.1', '10.244.2.1'], true);
    expect(res.code).toBe(0);
  });

  it('reports the peer behind a router as unreachable-on-l2, once, and gives it no route', async () => {
    await sleep(3 * RESYNC_MS);
    const far = a.backend.status().peers.find((p) => p.subnet === '10.244.3.0/24');
    expect(far).toMatchObject({ state: 'unreachable-on-l2', publicIP: '198.19.5.20' });
    expect(logs.filter((l) => l.ns === A && l.msg === 'peer unreachable on L2')).toMatchObject([{ subnet: '10.244.3.0/24' }]);
    expect((await nsRoutes(A)).some((r) => r.dst === '10.244.3.0/24')).toBe(false);
  });

  it('puts back a route deleted by hand at once where route events are watched, within the resync interval where not', async () => {
    await nsIp(A, ['route', 'del', '10.244.2.0/24']);
    await nsIp(B, ['route', 'del', '10.244.1.0/24']);
    expect(await ourRoutes(B)).toEqual({});
    // A polls hourly: only the event can bring the route back this fast.
    await waitFor(async () => (await ourRoutes(A))['10.244.2.0/24'] !== undefined, 1_000);
    await waitFor(async () => (await ourRoutes(B))['10.244.1.0/24'] !== undefined, 4 * RESYNC_MS);
  });

  it('puts its routes back when the device comes back up (the kernel drops them without an event)', async () => {
    await nsIp(A, ['link', 'set', 'eth0', 'down']);
    await waitFor(async () => (await ourRoutes(A))['10.244.2.0/24'] === undefined, 1_000);
    await nsIp(A, ['link', 'set', 'eth0', 'up']);
    await waitFor(async () => (await ourRoutes(A))['10.244.2.0/24'] !== undefined, 2_000);
    expect(await ourRoutes(A)).toEqual({ '10.244.2.0/24': 'via 198.18.0.12 dev eth0' });
    // The kernel dropped the node's other routes through eth0 too: put the fixture back.
    await nsIp(A, ['-batch', '-'], 'route add 198.19.0.0/16 via 198.18.0.1 dev eth0\nroute add 10.244.50.0/24 via 198.18.0.12 dev eth0\n');
  });

  it('deletes the route of a removed peer; stop() leaves the others in place', async () => {
    await a.backend.applyPeerChanges([{ type: 'removed', lease: LEASE_B }]);
    expect(await ourRoutes(A)).toEqual({});
    await Promise.all(nodes.map((n) => n.stop()));
    await sleep(2 * RESYNC_MS);
    expect(await ourRoutes(B)).toEqual({ '10.244.1.0/24': 'via 198.18.0.11 dev eth0' });
    expect((await nsRoutes(A)).some((r) => r.dst === '10.244.50.0/24')).toBe(true);
  });

  it('enables IPv4 forwarding in the namespace only', async () => {
    const rootBefore = await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8'); // read, never written
    await a.kernel.sysctl.enableIpForward();
    expect(await a.kernel.sysctl.ipForwardEnabled()).toBe(true);
    expect(await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).toBe(rootBefore);
  });
});
