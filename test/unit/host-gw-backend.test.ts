import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { createHostGwBackend, DEFAULT_L2_MAX_AGE_MS, DEFAULT_RESYNC_MS } from '../../src/backend/host-gw/index.js';
import { TwillError } from '../../src/errors.js';
import type { BatchFailure, FeedHandlers, FeedStarter, Kernel, KernelEvent, KernelRoute, RouteChange, RouteLookup, RouteOps } from '../../src/kernel/index.js';
import { createLogger } from '../../src/log.js';
import { parseCidr } from '../../src/lib/ipv4.js';
import type { Lease, LeaseEvent } from '../../src/subnet/types.js';

/** An in-memory route table standing in for the kernel. */
class FakeRoutes implements RouteOps {
  readonly table = new Map<string, KernelRoute & { proto: number }>();
  /** PublicIP → how the kernel reaches it; anything not listed is on-link via eth0. */
  readonly lookups = new Map<string, RouteLookup | null>();
  readonly failing = new Set<string>();
  readonly applied: RouteChange[][] = [];
  listFails = false;
  active = 0;
  maxActive = 0;

  async list(proto: number): Promise<KernelRoute[]> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    for (let i = 0; i < 5; i++) await Promise.resolve(); // let other callers in, if they could
    this.active--;
    if (this.listFails) throw new TwillError('TWILL_ERR_KERNEL_COMMAND', 'ip exited 1');
    return [...this.table.values()].filter((r) => r.proto === proto).map(({ dst, gateway, dev }) => ({ dst, gateway, dev }));
  }

  /** Table main: our routes with their proto, and the node's own (`others`), as one listing. */
  readonly others: KernelRoute[] = [{ dst: '198.18.0.0/24', dev: 'eth0', proto: 2 }];

  async listMain(): Promise<KernelRoute[]> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    for (let i = 0; i < 5; i++) await Promise.resolve();
    this.active--;
    this.lists++;
    if (this.listFails) throw new TwillError('TWILL_ERR_KERNEL_COMMAND', 'ip exited 1');
    return [...this.others, ...[...this.table.values()].map(({ dst, gateway, dev, proto }) => ({ dst, gateway, dev, proto }))];
  }

  lists = 0;
  lookupCalls = 0;
  /** Route events, when the test watches them; apply() echoes its changes into them like the kernel. */
  events?: FeedStarter<KernelEvent>;
  feed: FeedHandlers<KernelEvent> | null = null;
  emit(deleted: boolean, route: KernelRoute & { proto: number }): void {
    this.feed?.event({ kind: 'route', deleted, table: 254, route });
  }

  applyFails = false;

  apply(changes: readonly RouteChange[]): Promise<{ failed: BatchFailure[] }> {
    if (this.applyFails) return Promise.reject(new TwillError('TWILL_ERR_KERNEL_COMMAND', 'ip exited 1'));
    this.applied.push([...changes]);
    const failed: BatchFailure[] = [];
    for (const c of changes) {
      if (this.failing.has(c.dst)) failed.push({ change: c, line: `route ${c.op} ${c.dst}`, reason: 'RTNETLINK answers: Invalid argument' });
      else if (c.op === 'replace') {
        this.table.set(c.dst, { dst: c.dst, gateway: c.gateway, dev: c.dev, proto: c.proto });
        this.emit(false, this.table.get(c.dst)!);
      } else if (this.table.get(c.dst)?.proto === c.proto) {
        this.emit(true, this.table.get(c.dst)!);
        this.table.delete(c.dst);
      }
    }
    return Promise.resolve({ failed });
  }

  get(ip: string): Promise<RouteLookup | null> {
    return Promise.resolve(this.lookups.has(ip) ? (this.lookups.get(ip) ?? null) : { dev: 'eth0' });
  }

  async getMany(ips: readonly string[]): Promise<Map<string, RouteLookup | null>> {
    this.lookupCalls += ips.length;
    return new Map(await Promise.all(ips.map(async (ip) => [ip, await this.get(ip)] as const)));
  }
}

function lease(subnet: string, publicIP: string, backendType = 'host-gw'): Lease {
  return { subnet: parseCidr(subnet)!, attrs: { publicIP, publicIPv6: null, backendType }, etcdLeaseId: '7', modRevision: '1' };
}
const added = (l: Lease): LeaseEvent => ({ type: 'added', lease: l });
const removed = (l: Lease): LeaseEvent => ({ type: 'removed', lease: l });

const OWN = lease('10.244.1.0/24', '198.18.0.11');
const B = lease('10.244.2.0/24', '198.18.0.12');
const C = lease('10.244.3.0/24', '198.19.5.20');

function setup(opts: { resyncMs?: number; watchedResyncMs?: number; watch?: boolean | FeedStarter<KernelEvent> } = {}) {
  const routes = new FakeRoutes();
  if (opts.watch === true) routes.events = (h) => ((routes.feed = h), { stop: () => void (routes.feed = null) });
  else if (opts.watch) routes.events = opts.watch;
  const logs: { msg: string; level: number; subnet?: string; component?: string }[] = [];
  const logger = createLogger({ level: 'debug', stream: { write: (s: string) => logs.push(JSON.parse(s) as (typeof logs)[number]) } });
  const kernel = { netns: undefined, routes } as unknown as Kernel;
  const network = { network: parseCidr('10.244.0.0/16')!, subnetLen: 24, subnetMin: 0, subnetMax: 0, backend: { type: 'host-gw', raw: {} } };
  const iface = { name: 'eth0', address: '198.18.0.11', mtu: 1500 };
  const now = () => new Date('2025-01-02T03:04:05.000Z');
  const observed = { reconciles: [] as number[], changes: [] as string[] };
  const observer = { reconcileDuration: (s: number) => observed.reconciles.push(s), routeChange: (op: string, result: string) => observed.changes.push(`${op} ${result}`) };
  const backend: Backend = createHostGwBackend({ logger, network, ownLease: OWN, iface, kernel, options: {}, flags: {}, observer }, { resyncMs: opts.resyncMs, watchedResyncMs: opts.watchedResyncMs, now });
  const messages = (msg: string) => logs.filter((l) => l.msg === msg);
  const table = () => Object.fromEntries([...routes.table.values()].map((r) => [r.dst, `${r.gateway ?? '-'} ${r.proto}`]));
  return { routes, logs, messages, backend, table, observed };
}

let backend: Backend | undefined;
afterEach(async () => {
  await backend?.stop();
  backend = undefined;
  vi.useRealTimers();
});

describe('host-gw backend', () => {
  it('programs host-gw peers only, and drops a removed peer', async () => {
    const t = setup();
    backend = t.backend;
    await t.backend.start();
    await t.backend.applyPeerChanges([added(OWN), added(B), added(lease('10.244.4.0/24', '198.18.0.14', 'vxlan'))]);
    expect(t.table()).toEqual({ '10.244.2.0/24': '198.18.0.12 116' });
    expect(t.routes.applied).toHaveLength(1);
    expect(t.backend.status()).toMatchObject({ type: 'host-gw', mtu: 1500, device: null, routes: 1 });
    expect(t.backend.status().peers).toEqual([
      { subnet: '10.244.2.0/24', publicIP: '198.18.0.12', backendType: 'host-gw', state: 'programmed', since: '2025-01-02T03:04:05.000Z' },
    ]);
    expect(t.messages('route added')).toMatchObject([{ subnet: '10.244.2.0/24', component: 'host-gw' }]);

    await t.backend.applyPeerChanges([added(B)]); // a renewal: nothing to change
    expect(t.routes.applied).toHaveLength(1);
    await t.backend.applyPeerChanges([added(lease('10.244.2.0/24', '198.18.0.22'))]);
    expect(t.table()).toEqual({ '10.244.2.0/24': '198.18.0.22 116' });
    expect(t.messages('route replaced')).toHaveLength(1);

    await t.backend.applyPeerChanges([removed(B)]);
    expect(t.table()).toEqual({});
    expect(t.backend.status().peers).toEqual([]);
    expect(t.messages('route removed')).toHaveLength(1);
  });

  it('reports each reconcile pass and each route change, by op and result, to its observer', async () => {
    vi.useFakeTimers();
    const t = setup();
    backend = t.backend;
    await t.backend.start();
    await t.backend.applyPeerChanges([added(B)]);
    expect(t.observed.changes).toEqual(['add ok']);
    t.routes.table.clear(); // deleted by hand: the next tick adds it back
    await vi.advanceTimersByTimeAsync(DEFAULT_RESYNC_MS);
    await t.backend.applyPeerChanges([added(lease('10.244.2.0/24', '198.18.0.22'))]);
    t.routes.failing.add('10.244.2.0/24');
    await t.backend.applyPeerChanges([removed(B)]);
    expect(t.observed.changes).toEqual(['add ok', 'add ok', 'replace ok', 'delete error']);
    expect(t.observed.reconciles.length).toBe(4);
    expect(t.observed.reconciles.every((s) => s >= 0 && s < 1)).toBe(true);
  });

  it('removes stale routes of ours, never others, and only after the first peer snapshot', async () => {
    vi.useFakeTimers();
    const t = setup();
    backend = t.backend;
    t.routes.table.set('10.244.7.0/24', { dst: '10.244.7.0/24', gateway: '198.18.0.17', dev: 'eth0', proto: 116 });
    t.routes.table.set('10.244.8.0/24', { dst: '10.244.8.0/24', gateway: '198.18.0.18', dev: 'eth0', proto: 3 });
    await t.backend.start();
    await vi.advanceTimersByTimeAsync(3 * DEFAULT_RESYNC_MS);
    expect(t.routes.applied).toHaveLength(0); // no snapshot yet: a restart must not flush routes
    await t.backend.applyPeerChanges([]);
    expect(t.table()).toEqual({ '10.244.8.0/24': '198.18.0.18 3' });
  });

  it('re-adds a route deleted by hand on the next resync tick', async () => {
    vi.useFakeTimers();
    const t = setup();
    backend = t.backend;
    await t.backend.start();
    await t.backend.applyPeerChanges([added(B)]);
    t.routes.table.clear();
    await vi.advanceTimersByTimeAsync(DEFAULT_RESYNC_MS - 100);
    expect(t.table()).toEqual({});
    await vi.advanceTimersByTimeAsync(200);
    expect(t.table()).toEqual({ '10.244.2.0/24': '198.18.0.12 116' });
  });

  it('reports a peer behind a gateway once, gives it no route, and notices when it comes back', async () => {
    vi.useFakeTimers();
    const t = setup({ resyncMs: 500 });
    backend = t.backend;
    // The node reaches C's network through a gateway: a route of the node's own says so.
    const viaGateway = { dst: '198.19.5.0/24', gateway: '198.18.0.1', dev: 'eth0', proto: 4 };
    t.routes.others.push(viaGateway);
    t.routes.lookups.set('198.19.5.20', { dev: 'eth0', gateway: '198.18.0.1' });
    await t.backend.start();
    await t.backend.applyPeerChanges([added(B), added(C)]);
    await vi.advanceTimersByTimeAsync(5 * 500);
    expect(t.table()).toEqual({ '10.244.2.0/24': '198.18.0.12 116' });
    expect(t.messages('peer unreachable on L2')).toMatchObject([{ subnet: '10.244.3.0/24', level: 40 }]);
    expect(t.backend.status().peers.find((p) => p.subnet === '10.244.3.0/24')).toMatchObject({ state: 'unreachable-on-l2', reason: expect.stringContaining('198.18.0.1') as unknown });

    // That route goes (the peer moved onto our segment): the next listing sees the node's routes changed.
    t.routes.others.splice(t.routes.others.indexOf(viaGateway), 1);
    t.routes.lookups.delete('198.19.5.20');
    await vi.advanceTimersByTimeAsync(500);
    expect(t.table()['10.244.3.0/24']).toBe('198.19.5.20 116');
    expect(t.messages('peer reachable on L2 again')).toHaveLength(1);
    expect(t.messages('peer unreachable on L2')).toHaveLength(1);
  });

  it('marks a peer whose batch line failed as error, logged once, and retries', async () => {
    vi.useFakeTimers();
    const t = setup();
    backend = t.backend;
    t.routes.failing.add('10.244.2.0/24');
    await t.backend.start();
    await t.backend.applyPeerChanges([added(B), added(lease('10.244.5.0/24', 'not-an-ip'))]);
    await vi.advanceTimersByTimeAsync(2 * DEFAULT_RESYNC_MS);
    const peers = t.backend.status().peers;
    expect(peers.map((p) => [p.subnet, p.state])).toEqual([
      ['10.244.2.0/24', 'error'],
      ['10.244.5.0/24', 'error'],
    ]);
    expect(peers[0]?.reason).toContain('route replace 10.244.2.0/24');
    expect(t.messages('peer route failed')).toHaveLength(2);
    expect(t.routes.applied).toHaveLength(3);

    t.routes.failing.clear();
    await vi.advanceTimersByTimeAsync(DEFAULT_RESYNC_MS);
    expect(t.backend.status().peers[0]?.state).toBe('programmed');
  });

  it('survives a failing kernel without deleting routes, and recovers', async () => {
    vi.useFakeTimers();
    const t = setup();
    backend = t.backend;
    await t.backend.start();
    await t.backend.applyPeerChanges([added(B), added(C)]);
    t.routes.listFails = true;
    t.routes.applyFails = true;
    await expect(t.backend.applyPeerChanges([removed(C)])).resolves.toBeUndefined();
    await vi.advanceTimersByTimeAsync(3 * DEFAULT_RESYNC_MS);
    // Logged once for the outage (by code), however many passes fail.
    expect(t.messages('reconcile failed; retrying on the next tick')).toHaveLength(1);
    expect(t.table()).toEqual({ '10.244.2.0/24': '198.18.0.12 116', '10.244.3.0/24': '198.19.5.20 116' });
    t.routes.listFails = false;
    t.routes.applyFails = false;
    await vi.advanceTimersByTimeAsync(DEFAULT_RESYNC_MS);
    expect(t.table()).toEqual({ '10.244.2.0/24': '198.18.0.12 116' });
    expect(t.messages('reconcile works again')).toHaveLength(1);
    expect(t.backend.status().peers.map((p) => [p.subnet, p.state])).toEqual([['10.244.2.0/24', 'programmed']]);
  });

  it('never runs two reconciles at once and coalesces requests', async () => {
    const t = setup();
    backend = t.backend;
    await t.backend.start();
    const subnets = Array.from({ length: 10 }, (_, i) => lease(`10.244.${10 + i}.0/24`, `198.18.1.${10 + i}`));
    const pending = subnets.map((l) => t.backend.applyPeerChanges([added(l)]));
    expect(t.backend.status().peers.every((p) => p.state === 'pending')).toBe(true);
    await Promise.all(pending);
    expect(t.routes.maxActive).toBe(1);
    expect(t.routes.applied.length).toBeLessThanOrEqual(2);
    expect(Object.keys(t.table())).toHaveLength(10);
  });

  it('stop() waits for the running reconcile, clears the timer and leaves routes in place', async () => {
    vi.useFakeTimers();
    const t = setup();
    backend = t.backend;
    await t.backend.start();
    const first = t.backend.applyPeerChanges([added(B)]);
    const stopped = t.backend.stop();
    await vi.advanceTimersByTimeAsync(10);
    await Promise.all([first, stopped]);
    expect(t.table()).toEqual({ '10.244.2.0/24': '198.18.0.12 116' });
    t.routes.table.clear();
    await vi.advanceTimersByTimeAsync(5 * DEFAULT_RESYNC_MS);
    expect(t.table()).toEqual({});
  });

  it('plans a batch incrementally: one pass for 1,000 peers, and a later change examines only itself', async () => {
    vi.useFakeTimers();
    const t = setup();
    backend = t.backend;
    await t.backend.start();
    const many = Array.from({ length: 1000 }, (_, i) => lease(`10.${100 + (i >> 8)}.${i & 255}.0/24`, `198.18.${2 + (i >> 8)}.${i & 255}`));
    await t.backend.applyPeerChanges(many.map(added));
    expect(t.routes.applied.map((b) => b.length)).toEqual([1000]); // one ip -batch
    expect([t.routes.lists, t.routes.lookupCalls]).toEqual([1, 1000]);
    await t.backend.applyPeerChanges([removed(many[0]!), added(lease('10.244.9.0/24', '198.18.2.1'))]);
    // No listing, and no lookup for a PublicIP already judged.
    expect([t.routes.lists, t.routes.lookupCalls]).toEqual([1, 1000]);
    expect(t.routes.applied.at(-1)!.map((c) => `${c.op} ${c.dst}`)).toEqual(['delete 10.100.0.0/24', 'replace 10.244.9.0/24']);
    // The periodic pass: one listing, no lookups while the node's own routes stay as they are.
    await vi.advanceTimersByTimeAsync(DEFAULT_RESYNC_MS);
    expect([t.routes.lists, t.routes.lookupCalls]).toEqual([2, 1000]);
    expect(t.routes.applied).toHaveLength(2);
    expect(t.backend.status().routes).toBe(1000);
  });

  it('looks every PublicIP up again when the node\'s own routes change, or when the verdicts are old', async () => {
    vi.useFakeTimers();
    const t = setup();
    backend = t.backend;
    await t.backend.start();
    await t.backend.applyPeerChanges([added(B), added(C)]);
    expect(t.routes.lookupCalls).toBe(2);
    t.routes.others.push({ dst: '198.19.0.0/16', gateway: '198.18.0.1', dev: 'eth0', proto: 4 });
    await vi.advanceTimersByTimeAsync(DEFAULT_RESYNC_MS);
    expect(t.routes.lookupCalls).toBe(4);
    await vi.advanceTimersByTimeAsync(DEFAULT_L2_MAX_AGE_MS);
    expect(t.routes.lookupCalls).toBe(6);
  });
});

describe('host-gw backend, watching route events', () => {
  it('repairs drift as the kernel reports it, takes its own changes as echoes, and polls slowly while the watch works', async () => {
    vi.useFakeTimers();
    const t = setup({ watch: true, resyncMs: 5_000, watchedResyncMs: 60_000 });
    backend = t.backend;
    await t.backend.start();
    await t.backend.applyPeerChanges([added(OWN), added(B)]);
    expect(t.routes.lists).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000); // trusted now: one full pass to cover the start
    expect(t.routes.lists).toBe(2);
    await t.backend.applyPeerChanges([added(lease('10.244.5.0/24', '198.18.0.15'))]); // echoed, incremental
    await vi.advanceTimersByTimeAsync(30_000);
    expect(t.routes.lists).toBe(2); // no timed pass, no pass for our own echoes
    const b = t.routes.table.get('10.244.2.0/24')!;
    t.routes.table.delete(b.dst);
    t.routes.emit(true, b); // deleted by hand
    await vi.advanceTimersByTimeAsync(0);
    expect(t.routes.lists).toBe(3);
    expect(t.table()['10.244.2.0/24']).toBe('198.18.0.12 116');
    t.routes.feed!.event({ kind: 'device', deleted: false, dev: 'eth0' }); // our device went down or up
    await vi.advanceTimersByTimeAsync(0);
    expect(t.routes.lists).toBe(4);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.routes.lists).toBe(5); // the safety pass
  });

  it('retries a failed route change or pass every resyncMs, not at the slow safety pass, until a full pass is clean', async () => {
    vi.useFakeTimers();
    const t = setup({ watch: true, resyncMs: 5_000, watchedResyncMs: 300_000 });
    backend = t.backend;
    await t.backend.start();
    await t.backend.applyPeerChanges([added(OWN)]);
    await vi.advanceTimersByTimeAsync(1_000); // trusted: the first full pass is done
    const lists = t.routes.lists;
    t.routes.failing.add('10.244.2.0/24');
    await t.backend.applyPeerChanges([added(B)]); // the kernel refuses the route
    await vi.advanceTimersByTimeAsync(5_000);
    expect(t.routes.lists).toBe(lists + 1); // retried within resyncMs, as a full pass
    t.routes.failing.clear();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(t.table()['10.244.2.0/24']).toBe('198.18.0.12 116');
    const clean = t.routes.lists;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.routes.lists).toBe(clean); // clean again: back to the safety pass
    t.routes.listFails = true; // a pass that throws
    t.routes.feed!.event({ kind: 'device', deleted: false, dev: 'eth0' });
    await vi.advanceTimersByTimeAsync(0);
    t.routes.listFails = false;
    await vi.advanceTimersByTimeAsync(5_000);
    expect(t.routes.lists).toBe(clean + 2);
  });

  it('polls every resyncMs again, and says so once, while the watch cannot run', async () => {
    vi.useFakeTimers();
    const t = setup({ watch: (h) => (h.end(new Error('cannot run ip')), { stop: () => undefined }), resyncMs: 5_000, watchedResyncMs: 60_000 });
    backend = t.backend;
    await t.backend.start();
    await t.backend.applyPeerChanges([added(OWN), added(B)]);
    const lists = t.routes.lists;
    await vi.advanceTimersByTimeAsync(20_000);
    expect(t.routes.lists - lists).toBeGreaterThanOrEqual(4);
    expect(t.messages('route events not watched; re-reading the kernel every resync until they are')).toHaveLength(1);
  });
});
