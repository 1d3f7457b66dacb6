import { afterEach, describe, expect, it, vi } from 'vitest';
import { Backoff } from '../../src/lib/backoff.js';
import { KeptFeed, type FeedHandlers } from '../../src/lib/kept-feed.js';

afterEach(() => vi.useRealTimers());

/** A feed the test drives: every start is recorded with its handlers. */
function fakeFeeds<E>() {
  const starts: { handlers: FeedHandlers<E>; stopped: boolean }[] = [];
  const start = (handlers: FeedHandlers<E>) => {
    const s = { handlers, stopped: false };
    starts.push(s);
    return { stop: () => void (s.stopped = true) };
  };
  return { starts, start, last: () => starts[starts.length - 1]! };
}

function setup() {
  const feeds = fakeFeeds<string>();
  const seen = { events: [] as string[], gaps: [] as string[], failures: [] as string[] };
  const feed = new KeptFeed<string>({
    start: feeds.start,
    event: (e) => seen.events.push(e),
    gap: (r) => seen.gaps.push(r),
    failed: (err) => seen.failures.push(err.message),
    settleMs: 1_000,
    backoff: new Backoff(1_000, 8_000),
  });
  return { feeds, seen, feed };
}

describe('KeptFeed', () => {
  it('passes events on, is trusted only once it has run settleMs (then a gap: look at everything once), and reports a storm of losses once', async () => {
    vi.useFakeTimers();
    const { feeds, seen, feed } = setup();
    feed.start();
    feeds.last().handlers.event('a');
    expect(seen.events).toEqual(['a']);
    expect(feed.trusted).toBe(false);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(feed.trusted).toBe(true);
    expect(seen.gaps).toEqual(['feed started']);
    for (let i = 0; i < 3; i++) feeds.last().handlers.lost('netlink receive error No buffer space available (105)');
    expect(seen.gaps).toHaveLength(1); // a storm of losses: one gap, once it has likely passed
    await vi.advanceTimersByTimeAsync(1_000);
    expect(seen.gaps).toHaveLength(2);
    expect(seen.gaps[1]).toMatch(/changes lost: netlink receive error/);
    feed.stop();
    expect(feeds.last().stopped).toBe(true);
  });

  it('restarts a feed that ended, with backoff, untrusted meanwhile, and ignores the old feed', async () => {
    vi.useFakeTimers();
    const { feeds, seen, feed } = setup();
    feed.start();
    await vi.advanceTimersByTimeAsync(1_000);
    const first = feeds.last();
    first.handlers.end(new Error('ip exited (exit 1)'));
    expect(feed.trusted).toBe(false);
    expect(seen.failures).toEqual(['ip exited (exit 1)']);
    expect(seen.gaps).toEqual(['feed started', 'feed ended']);
    first.handlers.event('late');
    expect(seen.events).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_250); // first backoff: 1 s ± 25 %
    expect(feeds.starts).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(feed.trusted).toBe(true);
    feed.stop();
  });

  it('survives a feed that ends while it starts (a missing program), retrying with growing delays', async () => {
    vi.useFakeTimers();
    const seen: string[] = [];
    let starts = 0;
    const feed = new KeptFeed<string>({
      start: (h) => (starts++, h.end(new Error('cannot run ip: ENOENT')), { stop: () => undefined }),
      event: () => undefined,
      gap: (r) => seen.push(r),
      backoff: new Backoff(1_000, 4_000),
    });
    feed.start();
    expect(feed.trusted).toBe(false);
    await vi.advanceTimersByTimeAsync(1_250 + 2_500 + 5_000); // 1 s, 2 s, 4 s, each ± 25 %
    expect(starts).toBeGreaterThanOrEqual(4);
    expect(seen.every((r) => r === 'feed ended')).toBe(true);
    feed.stop();
    const after = starts;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(starts).toBe(after);
  });
});
