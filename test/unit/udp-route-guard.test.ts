// The udp backend's route to the Network through its TUN, deleted by hand, is put back: found
// missing (twill's proto-116 routes read), the device configured again, counted and logged once
// per repair; a device being recreated is left alone; a failing listing is logged once.
import { describe, expect, it } from 'vitest';
import { TwillError } from '../../src/errors.js';
import type { Kernel, KernelEvent, KernelRoute } from '../../src/kernel/index.js';
import type { FeedHandlers } from '../../src/lib/kept-feed.js';
import { TunRouteGuard } from '../../src/backend/udp/route-guard.js';
import { fakeKernel } from '../support/fake-kernel.js';
import { memoryLogger } from '../support/logger.js';

function guard(routes: () => Promise<KernelRoute[]>, device: () => string | null = () => 'twill0', feed?: (h: FeedHandlers<KernelEvent>) => void) {
  const base = fakeKernel().kernel;
  const listed: number[] = [];
  const events = feed ? { events: (h: FeedHandlers<KernelEvent>) => (feed(h), { stop: () => undefined }) } : {};
  const kernel: Kernel = { ...base, routes: { ...base.routes, ...events, list: async (proto) => (listed.push(proto), routes()) } };
  const configured: string[] = [];
  const { logger, lines } = memoryLogger();
  const g = new TunRouteGuard({ kernel, network: '10.244.0.0/16', device, configure: async (dev) => void configured.push(dev), log: logger, periodMs: 60_000, watchedPeriodMs: 600_000 });
  return { g, configured, listed, lines };
}

const OURS: KernelRoute = { dst: '10.244.0.0/16', dev: 'twill0' };

describe('TunRouteGuard', () => {
  it('leaves a route that is there alone', async () => {
    const t = guard(async () => [OURS, { dst: '10.244.9.0/24', gateway: '198.18.0.12', dev: 'eth0' }]);
    await t.g.check();
    expect(t.listed).toEqual([116]);
    expect(t.configured).toEqual([]);
    expect(t.g.repaired).toBe(0);
  });

  it('puts a missing route back by configuring the device again, and says so', async () => {
    let routes: KernelRoute[] = [{ dst: '10.244.0.0/16', dev: 'eth0' }]; // ours, but through another device: not the tunnel's
    const t = guard(async () => routes);
    await t.g.check();
    expect(t.configured).toEqual(['twill0']);
    expect(t.g.repaired).toBe(1);
    expect(t.lines().filter((l) => l['msg'] === 'the route to 10.244.0.0/16 through twill0 was gone; put back')).toHaveLength(1);
    routes = [OURS];
    await t.g.check();
    expect(t.g.repaired).toBe(1);
  });

  it('does nothing while there is no device (it is being recreated, and configured then)', async () => {
    const t = guard(async () => [], () => null);
    await t.g.check();
    expect(t.listed).toEqual([]);
    expect(t.configured).toEqual([]);
  });

  it('a listing that fails is logged once per error code, and retried', async () => {
    const t = guard(async () => {
      throw new TwillError('TWILL_ERR_KERNEL_COMMAND', 'ip failed');
    });
    await t.g.check();
    await t.g.check();
    expect(t.lines().filter((l) => l['code'] === 'TWILL_ERR_KERNEL_COMMAND')).toHaveLength(1);
    expect(t.configured).toEqual([]);
  });

  it("with route events: our route's deletion is put back at once, with no timer; other routes' events start no `ip`", async () => {
    let handlers: FeedHandlers<KernelEvent> | null = null;
    let routes: KernelRoute[] = [OURS];
    const t = guard(async () => routes, () => 'twill0', (h) => (handlers = h));
    t.g.start();
    try {
      expect(handlers).not.toBeNull();
      const route = (dst: string, proto: number, deleted: boolean): KernelEvent => ({ kind: 'route', deleted, table: 254, route: { dst, dev: 'twill0', proto } });
      handlers!.event(route('10.244.9.0/24', 116, true));
      handlers!.event(route('10.244.0.0/16', 116, false));
      handlers!.event(route('10.244.0.0/16', 3, true));
      await t.g.check(); // the one pass these calls share, if any were asked for
      const before = t.listed.length;
      routes = [];
      handlers!.event(route('10.244.0.0/16', 116, true));
      await new Promise((r) => setTimeout(r, 20)); // no check() here: the event alone runs the pass
      expect(t.configured).toEqual(['twill0']);
      expect(t.listed.length).toBeGreaterThan(before);
      expect(before).toBe(1); // only the check() above listed routes: no event of another route did
    } finally {
      await t.g.stop();
    }
  });
});
