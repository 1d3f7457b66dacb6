import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Keys whose values never reach a log line, at any depth: the etcd password, a TLS private key. */
const SECRET_KEYS: ReadonlySet<string> = new Set(['password', 'etcdPassword', 'privateKey']);
const CENSOR = '[redacted]';

/**
 * One root logger per process; components take `child({ component })`. Secrets are redacted in
 * whatever object a log call is given, however deep (pino's `redact.paths` stop at a fixed
 * depth). Child bindings are not walked: scope loggers with plain fields, not config objects.
 */
export function createLogger(opts: { level?: string; stream?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { pid: process.pid },
      formatters: { log: redactSecrets },
    },
    opts.stream,
  );
}

/**
 * The log object with every SECRET_KEYS value replaced. Only plain objects and arrays are walked
 * (errors, buffers, requests are not), and nothing is copied unless a secret is there: a log
 * line without one costs a look at each key.
 */
export function redactSecrets(obj: Record<string, unknown>): Record<string, unknown> {
  return hasSecret(obj, []) ? (censoredCopy(obj, new Map()) as Record<string, unknown>) : obj;
}

function walkable(v: unknown): v is Record<string, unknown> | unknown[] {
  if (typeof v !== 'object' || v === null) return false;
  if (Array.isArray(v)) return true;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function hasSecret(v: Record<string, unknown> | unknown[], ancestors: object[]): boolean {
  if (ancestors.includes(v)) return false; // a cycle: its keys were looked at already
  ancestors.push(v);
  for (const key in v) {
    if (!Array.isArray(v) && SECRET_KEYS.has(key)) return true;
    const child = (v as Record<string, unknown>)[key];
    if (walkable(child) && hasSecret(child, ancestors)) return true;
  }
  ancestors.pop();
  return false;
}

/** A copy with the secrets censored; shared and cyclic references stay shared in the copy. */
function censoredCopy(v: unknown, copies: Map<object, unknown>): unknown {
  if (!walkable(v)) return v;
  const done = copies.get(v);
  if (done !== undefined) return done;
  const out: Record<string, unknown> | unknown[] = Array.isArray(v) ? [] : {};
  copies.set(v, out);
  for (const key in v) {
    const value = (v as Record<string, unknown>)[key];
    (out as Record<string, unknown>)[key] = !Array.isArray(v) && SECRET_KEYS.has(key) ? CENSOR : censoredCopy(value, copies);
  }
  return out;
}
