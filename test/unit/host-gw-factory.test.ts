import { describe, expect, it } from 'vitest';
import { Coalescer } from '../../src/lib/coalescer.js';
import { hostGw } from '../../src/backend/host-gw/index.js';
import { BACKENDS, backendFactory } from '../../src/backend/index.js';
import { isTwillError } from '../../src/errors.js';

describe('host-gw factory and the backend table', () => {
  it('uses the interface MTU and publishes flannel host-gw lease attrs', () => {
    expect(hostGw.type).toBe('host-gw');
    expect(hostGw.mtu(1500, {})).toBe(1500);
    expect(hostGw.leaseAttrs('198.18.0.11', {})).toEqual({ publicIP: '198.18.0.11', publicIPv6: null, backendType: 'host-gw' });
  });

  it('finds host-gw and names the known types for anything else', () => {
    expect(backendFactory('host-gw')).toBe(hostGw);
    expect(Object.keys(BACKENDS)).toEqual(['host-gw', 'udp', 'vxlan']);
    for (const type of ['wireguard', 'constructor', '__proto__']) {
      let caught: unknown;
      try {
        backendFactory(type);
      } catch (err) {
        caught = err;
      }
      expect(isTwillError(caught, 'TWILL_ERR_BACKEND_UNKNOWN')).toBe(true);
      expect(caught).toMatchObject({ details: { type, known: ['host-gw', 'udp', 'vxlan'] } });
    }
  });
});

describe('Coalescer', () => {
  it('runs one task at a time and serves all waiting requests with one follow-up run', async () => {
    let runs = 0;
    let release: () => void = () => undefined;
    const c = new Coalescer(async () => {
      runs++;
      await new Promise<void>((r) => (release = r));
    });
    const first = c.run();
    const waiting = [c.run(), c.run(), c.run()];
    expect(runs).toBe(1);
    release();
    await first;
    await Promise.resolve();
    expect(runs).toBe(2);
    release();
    await Promise.all(waiting);
    expect(runs).toBe(2);
    await c.idle();
  });

  it('keeps going after a task rejects', async () => {
    let runs = 0;
    const c = new Coalescer(() => (++runs === 1 ? Promise.reject(new Error('boom')) : Promise.resolve()));
    await c.run();
    await c.run();
    expect(runs).toBe(2);
  });
});
