// The udp backend's route to the Network through its TUN, deleted by hand, is put back: found
// missing (twill's proto-116 routes read), the device configured again, counted and logged once
// per repair; a device being recreated is left alone; a failing listing is logged once.
import { describe, expect, it } from 'vitest';
import { TwillError } from '../../src/errors.js';
import type { KernelRoute } from '../../src/kernel/index.js';
import { TunRouteGuard } from '../../src/backend/udp/route-guard.js';
import { fakeKernel } from '../support/fake-kernel.js';
import { memoryLogger } from '../support/logger.js';

function guard(routes: () => Promise<KernelRoute[]>, device: () => string | null = () => 'twill0') {
  const { kernel } = fakeKernel();
  const listed: number[] = [];
  kernel.routes.list = async (proto) => (listed.push(proto), routes());
  const configured: string[] = [];
  const { logger, lines } = memoryLogger();
  const g = new TunRouteGuard({ kernel, network: '10.244.0.0/16', device, configure: async (dev) => void configured.push(dev), log: logger, periodMs: 60_000 });
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
});
