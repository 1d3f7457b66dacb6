import { describe, expect, it } from 'vitest';
import { isTwillError } from '../../src/errors.js';
import { mapLimit, pollUntil } from '../../src/tools/lab/wait.js';

describe('lab waiting helpers', () => {
  it('mapLimit keeps order and never exceeds the limit', async () => {
    let inFlight = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 4, 2, 3, 0], 2, async (n) => {
      peak = Math.max(peak, ++inFlight);
      await new Promise((r) => setTimeout(r, n));
      inFlight--;
      return n * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30, 0]);
    expect(peak).toBe(2);
  });

  it('pollUntil returns the first defined value', async () => {
    let calls = 0;
    await expect(pollUntil(async () => (++calls >= 3 ? 'done' : undefined), { timeoutMs: 1_000, intervalMs: 1, what: 'x' })).resolves.toBe('done');
  });

  it('pollUntil times out with a lab state error that names what it waited for', async () => {
    const err: unknown = await pollUntil(async () => undefined, { timeoutMs: 20, intervalMs: 5, what: 'agent on h1' }).catch((e: unknown) => e);
    expect(isTwillError(err, 'TWILL_ERR_LAB_STATE')).toBe(true);
    expect((err as Error).message).toContain('agent on h1');
  });

  it('pollUntil stops with the abort reason', async () => {
    const ac = new AbortController();
    const reason = new Error('interrupted');
    setTimeout(() => ac.abort(reason), 10);
    await expect(pollUntil(async () => undefined, { timeoutMs: 5_000, intervalMs: 1_000, what: 'x', signal: ac.signal })).rejects.toBe(reason);
  });
});
