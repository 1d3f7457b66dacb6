import { TwillError } from '../../errors.js';
import type { LabDeps } from './up.js';

const progress = (prefix: string) => (line: string): void => void process.stderr.write(`${prefix}: ${line}\n`);

/** Ctrl-C or SIGTERM during a long step aborts it; the step's caller cleans up. */
export async function withInterrupt<T>(prefix: string, fn: (deps: LabDeps) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => ac.abort(new TwillError('TWILL_ERR_LAB_STATE', `interrupted by ${sig}`));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await fn({ report: progress(prefix), signal: ac.signal });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
