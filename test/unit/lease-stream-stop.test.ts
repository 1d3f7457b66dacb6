import { describe, expect, it } from 'vitest';
import { TwillError } from '../../src/errors.js';
import { LeaseStream } from '../../src/subnet/lease-watch.js';
import { memoryLogger } from '../support/logger.js';
import { MemoryRegistry } from '../support/memory-registry.js';

describe('lease stream stop', () => {
  it('stop() during a list that then fails returns at once, not after another backoff', async () => {
    const registry = new MemoryRegistry();
    let release = () => undefined as void;
    const gate = new Promise<void>((r) => (release = r));
    let lists = 0;
    registry.listLeases = async () => {
      lists++;
      await gate;
      throw new TwillError('TWILL_ERR_ETCD_UNAVAILABLE', 'etcd is unreachable (from the test)');
    };
    const stream = new LeaseStream({ registry, logger: memoryLogger().logger, onEvents: () => undefined, retry: { initialMs: 2000, maxMs: 2000 } });
    const started = stream.start();
    await new Promise((r) => setImmediate(r));
    const stopped = stream.stop(); // while the list is in flight: no backoff is pending to cancel
    release();
    const t0 = Date.now();
    await Promise.all([stopped, started]);
    expect(Date.now() - t0).toBeLessThan(500);
    expect(lists).toBe(1);
    registry.close();
  });
});
