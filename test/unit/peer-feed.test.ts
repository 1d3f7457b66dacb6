import { describe, expect, it } from 'vitest';
import { PeerFeed, summarize } from '../../src/agent/peer-feed.js';
import { parseCidr } from '../../src/lib/ipv4.js';
import type { LeaseEvent } from '../../src/subnet/types.js';
import { memoryLogger } from '../support/logger.js';

const event = (i: number, type: LeaseEvent['type'] = 'added'): LeaseEvent => ({
  type,
  lease: { subnet: parseCidr(`10.244.${i}.0/24`)!, attrs: { publicIP: `198.18.0.${i}`, publicIPv6: null }, etcdLeaseId: '1', modRevision: String(i) },
});

/** A feed whose backend queue runs tasks one at a time, as the agent's does. */
function feed(limit?: { burst: number; ratePerSec: number }) {
  const calls: number[] = [];
  let queue = Promise.resolve();
  const log = memoryLogger();
  const f = new PeerFeed({
    enqueue: (task) => void (queue = queue.then(task)),
    apply: async (events) => void calls.push(events.length),
    logger: log.logger,
    ...(limit && { calls: limit }),
  });
  return { f, calls, idle: () => queue, lines: log.lines };
}

describe('PeerFeed', () => {
  it('under churn (50 changes a second) calls the backend about twice a second after its burst, losing nothing', async () => {
    const { f, calls, idle } = feed();
    const t0 = performance.now();
    for (let i = 0; i < 50; i++) {
      f.push([event(i)]);
      await new Promise((r) => setTimeout(r, 20));
    }
    await idle();
    await new Promise((r) => setTimeout(r, 600));
    await idle();
    expect(calls.reduce((a, b) => a + b, 0)).toBe(50);
    // The burst of 4 at once, then about 2 a second over the time it took (a loaded machine stretches it).
    const seconds = (performance.now() - t0) / 1000;
    expect(calls.length).toBeGreaterThanOrEqual(5);
    expect(calls.length).toBeLessThanOrEqual(4 + Math.ceil(seconds * 2) + 1);
    expect(calls.length).toBeLessThan(25); // never one call per change
  });

  it('occasional changes go at once: a few in a row do not wait', async () => {
    const { f, calls, idle } = feed();
    const t0 = performance.now();
    for (let i = 1; i <= 3; i++) {
      f.push([event(i)]);
      await idle();
    }
    expect(calls).toEqual([1, 1, 1]);
    expect(performance.now() - t0).toBeLessThan(50);
  });

  it('close() ends a wait at once and drops what was pending', async () => {
    const { f, calls, idle } = feed({ burst: 1, ratePerSec: 0.1 });
    f.push([event(1)]);
    await idle();
    f.push([event(2), event(3)]);
    const t0 = performance.now();
    expect(f.close()).toBe(2);
    await idle();
    expect(performance.now() - t0).toBeLessThan(100);
    expect(calls).toEqual([1]);
  });

  it('summarises a batch in counts and at most ten subnets', () => {
    const s = summarize([...Array.from({ length: 12 }, (_, i) => event(i)), event(20, 'removed')]);
    expect(s).toMatchObject({ added: 12, removed: 1, more: 3 });
    expect(s.subnets).toHaveLength(10);
    expect(s.subnets[0]).toBe('+10.244.0.0/24');
  });
});
