import { describe, expect, it } from 'vitest';
import { TwillError, type ErrorCode } from '../../src/errors.js';
import { parseCidr } from '../../src/lib/ipv4.js';
import { LeaseStream } from '../../src/subnet/lease-watch.js';
import type { LeaseRegistry, LeaseSnapshot, LeaseWatchHandlers } from '../../src/subnet/registry.js';
import type { Lease } from '../../src/subnet/types.js';
import { eventually, memoryLogger } from '../support/logger.js';

const lease = (cidr: string, ip: string): Lease => ({ subnet: parseCidr(cidr)!, attrs: { publicIP: ip, publicIPv6: null }, etcdLeaseId: '0', modRevision: '5' });
const failure = (code: ErrorCode) => new TwillError(code, `${code} from the fake registry`);

/**
 * A registry whose listLeases answers from a script (a snapshot, or an error to throw), and
 * whose watches the test drives by hand through the handlers it was given.
 */
function scriptedRegistry(script: (LeaseSnapshot | TwillError)[]) {
  const lists: number[] = [];
  const watches: { handlers: LeaseWatchHandlers; closed: boolean }[] = [];
  const unused = () => Promise.reject(new Error('not used by the lease stream'));
  const registry: LeaseRegistry = {
    listLeases: async () => {
      lists.push(Date.now());
      const next = script.length > 1 ? script.shift()! : script[0]!;
      if (next instanceof TwillError) throw next;
      return next;
    },
    watchLeases: (_from, handlers) => {
      const w = { handlers, closed: false };
      watches.push(w);
      return { close: async () => void (w.closed = true) };
    },
    getConfig: unused,
    putConfig: unused,
    createConfig: unused,
    createLease: unused,
    takeOverLease: unused,
    renewLease: unused,
    deleteLease: unused,
    revokeLease: unused,
    close: () => undefined,
  };
  return { registry, lists, watches, lastWatch: () => watches.at(-1)! };
}

const snapshot = (revision: string, ...leases: Lease[]): LeaseSnapshot => ({ leases, revision, unreadable: [] });

function stream(script: (LeaseSnapshot | TwillError)[]) {
  const reg = scriptedRegistry(script);
  const log = memoryLogger();
  const fatal: unknown[] = [];
  const s = new LeaseStream({ registry: reg.registry, logger: log.logger, onEvents: () => undefined, onFatal: (err) => fatal.push(err), retry: { initialMs: 5, maxMs: 20 } });
  const lines = (msg: string) => log.lines().filter((l) => l.msg === msg);
  return { s, reg, fatal, lines, log };
}

describe('lease stream retries', () => {
  it('does not retry a listing etcd refused for good: start() rejects with the code, logged once', async () => {
    const t = stream([failure('TWILL_ERR_ETCD_AUTH')]);
    await expect(t.s.start()).rejects.toMatchObject({ code: 'TWILL_ERR_ETCD_AUTH' });
    await new Promise((r) => setTimeout(r, 100)); // many backoff periods
    expect(t.reg.lists).toHaveLength(1);
    expect(t.lines('lease stream stopped: this error is not retried').map((l) => l.code)).toEqual(['TWILL_ERR_ETCD_AUTH']);
    expect(t.fatal).toEqual([]); // start()'s caller has it
    await t.s.stop();
  });

  it('retries a transient listing failure, logging one line per code, not per attempt', async () => {
    const unavailable = failure('TWILL_ERR_ETCD_UNAVAILABLE');
    const t = stream([unavailable, unavailable, unavailable, snapshot('9', lease('10.5.1.0/24', '198.18.0.1'))]);
    await t.s.start();
    expect(t.reg.lists).toHaveLength(4);
    expect(t.lines('listing leases failed; retrying').map((l) => l.code)).toEqual(['TWILL_ERR_ETCD_UNAVAILABLE']);
    expect(t.s.leases()).toHaveLength(1);
    await t.s.stop();
  });

  it('re-lists when etcd cancels the watch (transient), stops on a permanent reset and hands it to onFatal', async () => {
    const t = stream([snapshot('9'), snapshot('12'), failure('TWILL_ERR_ETCD_REQUEST')]);
    await t.s.start();
    t.reg.lastWatch().handlers.onReset(failure('TWILL_ERR_ETCD_WATCH_CANCELLED'));
    await eventually(() => t.reg.watches.length === 2, 2000, 'second watch');
    expect(t.reg.watches[0]!.closed).toBe(true);
    expect(t.s.watchRevision()).toBe('12');

    t.reg.lastWatch().handlers.onReset(failure('TWILL_ERR_ETCD_REQUEST'));
    expect(t.fatal.map((e) => (e as TwillError).code)).toEqual(['TWILL_ERR_ETCD_REQUEST']);
    await new Promise((r) => setTimeout(r, 100));
    expect(t.reg.lists).toHaveLength(2); // no re-list after the permanent reset
    expect(t.reg.watches).toHaveLength(2);
    expect(t.reg.lastWatch().closed).toBe(true);
    expect(t.lines('lease stream stopped: this error is not retried')).toHaveLength(1);
    await t.s.stop();
  });

  it('stops when a re-list after a reset is refused for good', async () => {
    const t = stream([snapshot('9'), failure('TWILL_ERR_ETCD_AUTH')]);
    await t.s.start();
    t.reg.lastWatch().handlers.onReset(failure('TWILL_ERR_ETCD_WATCH_CANCELLED'));
    await eventually(() => t.fatal.length === 1, 2000, 'onFatal');
    await new Promise((r) => setTimeout(r, 100));
    expect(t.reg.lists).toHaveLength(2);
    expect((t.fatal[0] as TwillError).code).toBe('TWILL_ERR_ETCD_AUTH');
    await t.s.stop();
  });

  it('logs a lost watch connection once per code while the client reconnects, and stops on an auth refusal', async () => {
    const t = stream([snapshot('9')]);
    await t.s.start();
    const h = t.reg.lastWatch().handlers;
    for (let i = 0; i < 5; i++) h.onConnection(false, new TwillError('TWILL_ERR_ETCD_UNAVAILABLE', `etcd is unreachable (attempt ${i})`));
    h.onConnection(true);
    h.onConnection(false, failure('TWILL_ERR_ETCD_UNAVAILABLE'));
    expect(t.lines('etcd watch connection lost')).toHaveLength(2);
    expect(t.lines('etcd watch connection restored')).toHaveLength(1);
    h.onConnection(false, failure('TWILL_ERR_ETCD_AUTH'));
    expect(t.fatal.map((e) => (e as TwillError).code)).toEqual(['TWILL_ERR_ETCD_AUTH']);
    expect(t.reg.lastWatch().closed).toBe(true);
    await t.s.stop();
  });
});
