import { setTimeout as sleep } from 'node:timers/promises';
import { TwillError } from '../../errors.js';

export interface PollOptions {
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  readonly signal?: AbortSignal;
  /** The timeout error's message (name the thing waited for and where its log is). */
  readonly what: string;
}

/**
 * Calls `probe` until it returns a value other than undefined. `probe` may throw to give up early
 * (a daemon died); a timeout is TWILL_ERR_LAB_STATE.
 */
export async function pollUntil<T>(probe: () => Promise<T | undefined>, opts: PollOptions): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    opts.signal?.throwIfAborted();
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) {
      throw new TwillError('TWILL_ERR_LAB_STATE', `timed out after ${opts.timeoutMs / 1000} s: ${opts.what}`, {
        details: { timeoutMs: opts.timeoutMs },
      });
    }
    // An aborted sleep rejects with a generic AbortError; surface the abort reason instead.
    await sleep(opts.intervalMs ?? 200, undefined, { signal: opts.signal }).catch((e: unknown) => {
      opts.signal?.throwIfAborted();
      throw e;
    });
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
