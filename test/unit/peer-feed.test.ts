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
function feed(minIntervalMs?: number) {
  const calls: number[] = [];
  let queue = Promise.resolve();
  const log = memoryLogger();
  const f = new PeerFeed({
    enqueue: (task) => void (queue = queue.then(task)),
    apply: async (events) => void calls.push(events.length),
    logger: log.logger,
    ...(minIntervalMs !== undefined && { minIntervalMs }),
  });
  return { f, calls, idle: () => queue, lines: log.lines };
}

describe('PeerFeed', () => {
  it('under churn (50 changes a second) calls the backend about twice a second, losing nothing', async () => {
    const { f, calls, idle } = feed();
    for (let i = 0; i < 50; i++) {
      f.push([event(i)]);
      await new Promise((r) => setTimeout(r, 20));
    }
    await idle();
    await new Promise((r) => setTimeout(r, 600));
    await idle();
    expect(calls.reduce((a, b) => a + b, 0)).toBe(50);
    expect(calls.length).toBeGreaterThanOrEqual(2);
    expect(calls.length).toBeLessThanOrEqual(5);
  });

  it('a lone change after a quiet spell goes at once', async () => {
    const { f, calls, idle } = feed();
    const t0 = performance.now();
    f.push([event(1)]);
    await idle();
    expect(calls).toEqual([1]);
    expect(performance.now() - t0).toBeLessThan(50);
  });

  it('close() ends a wait at once and drops what was pending', async () => {
    const { f, calls, idle } = feed(10_000);
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
