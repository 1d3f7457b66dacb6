/**
 * vxlan against the real kernel, in namespaces only: twl-t-vx-a and twl-t-vx-b are two nodes on
 * one L2 segment (a bridge in twl-t-vx-br), underlay 198.18.0.0/24, pod subnets from 10.244.0.0/16,
 * a pod address on each node's loopback. Nothing is changed in the root namespace.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { createVxlanBackend, cleanupVxlan } from '../../src/backend/vxlan/index.js';
import type { VxlanOptions } from '../../src/backend/vxlan/options.js';
import { vtepMac, vxlanLeaseAttrs } from '../../src/backend/vxlan/vtep.js';
import { createKernel } from '../../src/kernel/index.js';
import { parseCidr } from '../../src/lib/ipv4.js';
import { createLogger } from '../../src/log.js';
import { cleanupNode } from '../../src/rules/cleanup.js';
import type { Lease, LeaseEvent } from '../../src/subnet/types.js';
import { bridge, createNetns, deleteNetnsByPrefix, nsExec, nsIp, nsRoutes, veth } from '../support/netns.js';

const PREFIX = 'twl-t-vx-';
const [A, B, BR] = [`${PREFIX}a`, `${PREFIX}b`, `${PREFIX}br`];
const DEFAULTS: VxlanOptions = { vni: 1, port: 0, gbp: false, learning: false, directRouting: false, mtu: null };
/** The promise: something deleted by hand is back within this. */
const PROMISE_MS = 10_000;

const lease = (subnet: string, publicIP: string, attrs = vxlanLeaseAttrs(publicIP, 1)): Lease => ({ subnet: parseCidr(subnet)!, attrs, etcdLeaseId: '1', modRevision: '1' });
const LEASE_A = lease('10.244.1.0/24', '198.18.0.11');
const LEASE_B = lease('10.244.2.0/24', '198.18.0.12');
const LEASE_HG = lease('10.244.4.0/24', '198.18.0.14', { publicIP: '198.18.0.14', publicIPv6: null, backendType: 'host-gw' });
const SNAPSHOT: LeaseEvent[] = [LEASE_A, LEASE_B, LEASE_HG].map((l) => ({ type: 'added', lease: l }));

async function setupTopology(): Promise<void> {
  await createNetns(PREFIX, [BR, A, B]);
  await veth({ ns: A, name: 'eth0' }, { ns: BR, name: 'va' });
  await veth({ ns: B, name: 'eth0' }, { ns: BR, name: 'vb' });
  await bridge(BR, 'br0', ['va', 'vb']);
  for (const [ns, underlay, pod] of [[A, '198.18.0.11', '10.244.1.1'], [B, '198.18.0.12', '10.244.2.1']] as const) {
    await nsIp(ns, ['addr', 'add', `${underlay}/24`, 'dev', 'eth0']);
    await nsIp(ns, ['addr', 'add', `${pod}/32`, 'dev', 'lo']); // stands in for a pod
  }
  // Someone else's: a VXLAN device of another VNI, and a route; cleanup must leave both.
  await nsIp(A, ['link', 'add', 'vxlan.other', 'type', 'vxlan', 'id', '7', 'local', '198.18.0.11', 'dev', 'eth0', 'dstport', '4789']);
  await nsIp(A, ['route', 'add', '10.244.50.0/24', 'via', '198.18.0.12', 'dev', 'eth0']);
}

const logs: { msg: string; ns: string }[] = [];
function startBackend(ns: string, own: Lease, options: Partial<VxlanOptions> = {}, resyncMs?: number): Backend {
  const stream = { write: (s: string) => logs.push({ ...(JSON.parse(s) as { msg: string }), ns }) };
  const network = { network: parseCidr('10.244.0.0/16')!, subnetLen: 24, subnetMin: 0, subnetMax: 0, backend: { type: 'vxlan', raw: {} } };
  const iface = { name: 'eth0', address: own.attrs.publicIP, mtu: 1500 };
  const ctx = { logger: createLogger({ stream }), network, ownLease: own, iface, kernel: createKernel({ netns: ns }), options: { ...DEFAULTS, ...options }, flags: {} };
  return createVxlanBackend(ctx, resyncMs === undefined ? {} : { resyncMs });
}

const ping = (ns: string, from: string, to: string) => nsExec(ns, 'ping', ['-c', '1', '-W', '1', '-I', from, to], true);
async function pingsBothWays(): Promise<boolean> {
  const [ab, ba] = await Promise.all([ping(A, '10.244.1.1', '10.244.2.1'), ping(B, '10.244.2.1', '10.244.1.1')]);
  return ab.code === 0 && ba.code === 0;
}

async function entries(ns: string): Promise<{ neigh: string; fdb: string; routes: Record<string, string> }> {
  const neigh = (await nsIp(ns, ['neigh', 'show', 'dev', 'flannel.1', 'nud', 'permanent'])).stdout.trim();
  const fdb = (await nsExec(ns, 'bridge', ['fdb', 'show', 'dev', 'flannel.1'])).stdout.trim();
  const routes = (await nsRoutes(ns)).filter((r) => r.protocol === '116');
  return { neigh, fdb, routes: Object.fromEntries(routes.map((r) => [r.dst, `via ${r.gateway} dev ${r.dev}`])) };
}

/** Waits for `check`, and says how long it took. */
async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms`);
    await sleep(200);
  }
  const took = Date.now() - t0;
  process.stderr.write(`  back after ${took} ms\n`);
  return took;
}

describe.skipIf(process.getuid?.() !== 0)('vxlan on a real kernel (namespaces)', () => {
  const nodes: Backend[] = [];

  beforeAll(async () => {
    try {
      await setupTopology();
      nodes.push(startBackend(A, LEASE_A), startBackend(B, LEASE_B, {}, 1_000));
      for (const n of nodes) await n.start();
      await Promise.all(nodes.map((n) => n.applyPeerChanges(SNAPSHOT)));
    } catch (err) {
      await Promise.all(nodes.map((n) => n.stop()));
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

  it('makes flannel.1 as flannel does, with the stable VtepMAC, MTU − 50 and the subnet address', async () => {
    const [link] = JSON.parse((await nsIp(A, ['-d', '-json', 'addr', 'show', 'dev', 'flannel.1'])).stdout) as [Record<string, unknown> & { linkinfo: { info_data: Record<string, unknown> }; addr_info: { family: string; local: string; prefixlen: number }[] }];
    expect(link).toMatchObject({ ifname: 'flannel.1', mtu: 1450, address: vtepMac('198.18.0.11', 1) });
    expect(link.flags).toContain('UP');
    expect(link.linkinfo.info_data).toMatchObject({ id: 1, local: '198.18.0.11', link: 'eth0', port: 8472, learning: false });
    expect(link.addr_info.filter((a) => a.family === 'inet')).toMatchObject([{ local: '10.244.1.0', prefixlen: 32 }]);
  });

  it('programs neighbour, FDB entry and onlink route per vxlan peer; skips the host-gw lease', async () => {
    const macB = vtepMac('198.18.0.12', 1);
    const e = await entries(A);
    expect(e.neigh).toBe(`10.244.2.0 lladdr ${macB} PERMANENT`);
    expect(e.fdb).toBe(`${macB} dst 198.18.0.12 self permanent`);
    expect(e.routes).toEqual({ '10.244.2.0/24': 'via 10.244.2.0 dev flannel.1' });
    expect((await nsIp(A, ['route', 'show', '10.244.2.0/24'])).stdout).toContain('onlink');
    expect(nodes[0]!.status().peers.map((p) => [p.subnet, p.state, p.via ?? null])).toEqual([
      ['10.244.2.0/24', 'programmed', 'vxlan'],
      ['10.244.4.0/24', 'skipped', null],
    ]);
  });

  it('carries pod traffic both ways through the tunnel', async () => {
    const before = Number((await nsExec(B, 'cat', ['/sys/class/net/flannel.1/statistics/rx_packets'])).stdout);
    expect(await pingsBothWays()).toBe(true);
    const after = Number((await nsExec(B, 'cat', ['/sys/class/net/flannel.1/statistics/rx_packets'])).stdout);
    expect(after).toBeGreaterThan(before);
  });

  it('puts back a neighbour and an FDB entry deleted by hand within 10 s (no event: the 5 s timed pass)', async () => {
    const want = await entries(A);
    await nsIp(A, ['neigh', 'del', '10.244.2.0', 'dev', 'flannel.1']);
    await nsExec(A, 'bridge', ['fdb', 'del', vtepMac('198.18.0.12', 1), 'dev', 'flannel.1', 'dst', '198.18.0.12', 'self']);
    expect(await entries(A)).not.toEqual(want);
    await within(PROMISE_MS, async () => JSON.stringify(await entries(A)) === JSON.stringify(want));
    expect(nodes[0]!.status().details).toMatchObject({ repairs: { neighbour: 1, fdb: 1, route: 0 } });
    expect(logs.filter((l) => l.ns === A && l.msg === 'vxlan entries changed under us; put back')).toHaveLength(1);
    expect(await pingsBothWays()).toBe(true);
  });

  it('puts back a route deleted by hand at once (its deletion is an event)', async () => {
    await nsIp(A, ['route', 'del', '10.244.2.0/24']);
    const took = await within(PROMISE_MS, async () => (await entries(A)).routes['10.244.2.0/24'] === 'via 10.244.2.0 dev flannel.1');
    expect(took).toBeLessThan(2_000);
    expect(nodes[0]!.status().details).toMatchObject({ repairs: { route: 1 } });
  });

  it('recreates the device deleted by hand within 10 s, and traffic flows again', async () => {
    await nsIp(A, ['link', 'del', 'flannel.1']);
    await within(PROMISE_MS, pingsBothWays);
    expect(nodes[0]!.status().details).toMatchObject({ repairs: { device: 1 } });
    expect((await nsIp(A, ['link', 'show', 'flannel.1'])).stdout).toContain(vtepMac('198.18.0.11', 1));
  });

  it('recovers from the underlay address going away and coming back', async () => {
    await nsIp(A, ['addr', 'flush', 'dev', 'eth0']);
    expect((await ping(A, '10.244.1.1', '10.244.2.1')).code).not.toBe(0);
    await nsIp(A, ['addr', 'add', '198.18.0.11/24', 'dev', 'eth0']);
    await within(PROMISE_MS, pingsBothWays);
  });

  it('recreates the device when the underlay interface is deleted and made again (flannel #2247: flannel.1 vanishes with it)', async () => {
    await nsIp(A, ['link', 'del', 'eth0']); // the kernel deletes the VXLAN devices on top of it
    expect((await nsIp(A, ['link', 'show', 'flannel.1']).catch(() => null))?.stdout ?? '').toBe('');
    await veth({ ns: A, name: 'eth0' }, { ns: BR, name: 'va' });
    await nsIp(BR, ['link', 'set', 'va', 'master', 'br0']);
    await nsIp(A, ['addr', 'add', '198.18.0.11/24', 'dev', 'eth0']);
    await within(PROMISE_MS, pingsBothWays);
    expect((await nsIp(A, ['-d', 'link', 'show', 'flannel.1'])).stdout).toMatch(/vxlan id 1 local 198\.18\.0\.11 dev eth0 /);
    // Someone else's device and route went with eth0 too: put the fixture back for the cleanup test.
    await nsIp(A, ['link', 'add', 'vxlan.other', 'type', 'vxlan', 'id', '7', 'local', '198.18.0.11', 'dev', 'eth0', 'dstport', '4789']);
    await nsIp(A, ['route', 'add', '10.244.50.0/24', 'via', '198.18.0.12', 'dev', 'eth0']);
  });

  it('with DirectRouting, reaches a peer on the segment by a plain route, then repairs that route after an underlay flush', async () => {
    await nodes[0]!.stop();
    nodes[0] = startBackend(A, LEASE_A, { directRouting: true }, 1_000);
    await nodes[0].start();
    await nodes[0].applyPeerChanges(SNAPSHOT);
    const e = await entries(A);
    expect(e).toEqual({ neigh: '', fdb: '', routes: { '10.244.2.0/24': 'via 198.18.0.12 dev eth0' } });
    expect(nodes[0].status().peers[0]).toMatchObject({ subnet: '10.244.2.0/24', state: 'programmed', via: 'direct' });
    expect(await pingsBothWays()).toBe(true);
    await nsIp(A, ['addr', 'flush', 'dev', 'eth0']); // the kernel drops the route via eth0 with it
    await nsIp(A, ['addr', 'add', '198.18.0.11/24', 'dev', 'eth0']);
    await within(PROMISE_MS, async () => (await entries(A)).routes['10.244.2.0/24'] === 'via 198.18.0.12 dev eth0' && (await pingsBothWays()));
  });

  it('stop() leaves the device and entries; cleanup removes them and leaves someone else\'s VXLAN device and routes alone', async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    // The underlay flushes above took the foreign route with them (the kernel drops routes via a lost address): put it back.
    await nsIp(A, ['route', 'replace', '10.244.50.0/24', 'via', '198.18.0.12', 'dev', 'eth0']);
    expect((await entries(B)).routes).toEqual({ '10.244.1.0/24': 'via 10.244.1.0 dev flannel.1' });
    const kernel = createKernel({ netns: A });
    const dir = await mkdtemp(join(tmpdir(), 'twill-vx-'));
    try {
      await writeFile(join(dir, 'subnet.env'), 'FLANNEL_NETWORK=10.244.0.0/16\n');
      const summary = await cleanupNode(kernel, { subnetFile: join(dir, 'subnet.env'), backends: () => cleanupVxlan(kernel) });
      expect(summary).toMatchObject({ vxlanDevices: ['flannel.1'], routes: 1, subnetFile: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const links = (await nsIp(A, ['-o', 'link', 'show'])).stdout;
    expect(links).not.toContain('flannel.1');
    expect(links).toContain('vxlan.other');
    expect((await nsRoutes(A)).map((r) => r.dst)).toContain('10.244.50.0/24');
    expect((await nsRoutes(A)).filter((r) => r.protocol === '116')).toEqual([]);
  });
});
