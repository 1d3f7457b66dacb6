import { afterEach, describe, expect, it, vi } from 'vitest';
import { ReconcileLoop } from '../../src/lib/reconcile-loop.js';

afterEach(() => vi.useRealTimers());

/** A pass that stays in flight until released, counting how often it started. */
function gatedPass() {
  let passes = 0;
  let release: () => void = () => undefined;
  const pass = () => {
    passes++;
    return new Promise<void>((r) => (release = r));
  };
  return { pass, passes: () => passes, release: () => release() };
}

describe('ReconcileLoop', () => {
  it('runs a pass on each tick once started, and none after stop', async () => {
    vi.useFakeTimers();
    let passes = 0;
    const loop = new ReconcileLoop(async () => void passes++, 1000);
    await vi.advanceTimersByTimeAsync(3000);
    expect(passes).toBe(0);
    loop.start();
    await vi.advanceTimersByTimeAsync(3000);
    expect(passes).toBe(3);
    await loop.stop();
    await vi.advanceTimersByTimeAsync(3000);
    expect(passes).toBe(3);
  });

  it('coalesces requests made during a pass into one follow-up pass', async () => {
    const g = gatedPass();
    const loop = new ReconcileLoop(g.pass, 60_000);
    const first = loop.run();
    const followUps = [loop.run(), loop.run(), loop.run()];
    expect(g.passes()).toBe(1);
    g.release();
    await first;
    await Promise.resolve();
    expect(g.passes()).toBe(2);
    g.release();
    await Promise.all(followUps);
    expect(g.passes()).toBe(2);
  });

  it('stop waits for the pass in flight', async () => {
    const g = gatedPass();
    const loop = new ReconcileLoop(g.pass, 60_000);
    void loop.run();
    let stopped = false;
    const stopping = loop.stop().then(() => (stopped = true));
    await new Promise((r) => setImmediate(r));
    expect(stopped).toBe(false);
    g.release();
    await stopping;
    expect(stopped).toBe(true);
  });
});

describe('ReconcileLoop period', () => {
  it('reads the period before each wait, and reschedule() waits the new one from now', async () => {
    vi.useFakeTimers();
    let passes = 0;
    let period = 1_000;
    const loop = new ReconcileLoop(async () => void passes++, () => period);
    loop.start();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(passes).toBe(2);
    period = 60_000; // e.g. changes are watched now
    await vi.advanceTimersByTimeAsync(1_000); // the wait already begun still ends
    expect(passes).toBe(3);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(passes).toBe(3);
    period = 1_000;
    loop.reschedule(); // e.g. the watch was lost: poll fast again at once
    await vi.advanceTimersByTimeAsync(1_000);
    expect(passes).toBe(4);
    await loop.stop();
  });
});
