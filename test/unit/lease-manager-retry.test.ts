import { afterEach, describe, expect, it, vi } from 'vitest';
import { TwillError, type ErrorCode } from '../../src/errors.js';
import { parseCidr } from '../../src/lib/ipv4.js';
import { parseNetworkConfig } from '../../src/subnet/config.js';
import { LeaseManager } from '../../src/subnet/lease-manager.js';
import type { LeaseRegistry, LeaseSnapshot } from '../../src/subnet/registry.js';
import type { Lease } from '../../src/subnet/types.js';
import { memoryLogger } from '../support/logger.js';

const failure = (code: ErrorCode) => new TwillError(code, `${code} from the fake registry`);
const empty: LeaseSnapshot = { leases: [], revision: '3', unreadable: [] };

/** A registry answering listLeases and renewLease from scripts (the last answer repeats); creates always win. */
function scriptedRegistry(lists: (LeaseSnapshot | TwillError)[], renewals: (number | TwillError)[] = [60]) {
  const calls = { list: 0, renew: 0, revoke: 0 };
  const next = <T>(script: (T | TwillError)[]): T => {
    const v = script.length > 1 ? script.shift()! : script[0]!;
    if (v instanceof TwillError) throw v;
    return v;
  };
  const unused = () => Promise.reject(new Error('not used by the lease manager'));
  const registry: LeaseRegistry = {
    listLeases: async () => (calls.list++, next(lists)),
    createLease: async (subnet, attrs): Promise<Lease> => ({ subnet, attrs, etcdLeaseId: '42', modRevision: '4' }),
    takeOverLease: unused,
    renewLease: async () => (calls.renew++, next(renewals)),
    revokeLease: async () => void calls.revoke++,
    getConfig: unused,
    putConfig: unused,
    createConfig: unused,
    deleteLease: unused,
    watchLeases: () => ({ close: async () => undefined }),
    close: () => undefined,
  };
  return { registry, calls };
}

function manager(reg: LeaseRegistry) {
  const log = memoryLogger();
  const fatal: unknown[] = [];
  const mgr = new LeaseManager({
    registry: reg,
    logger: log.logger,
    config: parseNetworkConfig('{"Network":"10.10.0.0/16","Backend":{"Type":"host-gw"}}'),
    attrs: { publicIP: '198.18.0.1', publicIPv6: null },
    ttlSeconds: 3, // renewals every second
    preferred: parseCidr('10.10.7.0/24'),
    onLease: () => undefined,
    onFatal: (err) => fatal.push(err),
    retry: { initialMs: 5, maxMs: 20 },
  });
  const lines = (msg: string) => log.lines().filter((l) => l.msg === msg);
  return { mgr, fatal, lines };
}

afterEach(() => void vi.useRealTimers());

describe('lease manager retries only what isTransient allows', () => {
  it('does not retry an acquisition etcd refused for good: acquire() rejects, logged once with the code', async () => {
    const reg = scriptedRegistry([failure('TWILL_ERR_ETCD_AUTH')]);
    const t = manager(reg.registry);
    await expect(t.mgr.acquire()).rejects.toMatchObject({ code: 'TWILL_ERR_ETCD_AUTH' });
    expect(reg.calls.list).toBe(1);
    expect(t.lines('cannot acquire a lease: this error is not retried').map((l) => l.code)).toEqual(['TWILL_ERR_ETCD_AUTH']);
    t.mgr.stop();
  });

  it('retries transient failures, one line per code rather than per attempt', async () => {
    const down = failure('TWILL_ERR_ETCD_UNAVAILABLE');
    const full = failure('TWILL_ERR_LEASE_NETWORK_FULL');
    const reg = scriptedRegistry([down, down, down, full, full, empty]);
    const t = manager(reg.registry);
    expect((await t.mgr.acquire()).etcdLeaseId).toBe('42');
    expect(reg.calls.list).toBe(6);
    expect(t.lines('cannot acquire a lease yet; retrying').map((l) => (l.err as { code: string }).code)).toEqual(['TWILL_ERR_ETCD_UNAVAILABLE', 'TWILL_ERR_LEASE_NETWORK_FULL']);
    t.mgr.stop();
  });

  it('retries a transient renewal failure, and stops renewing on a permanent one, handing it to onFatal', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const reg = scriptedRegistry([empty], [failure('TWILL_ERR_ETCD_UNAVAILABLE'), failure('TWILL_ERR_ETCD_UNAVAILABLE'), 3, failure('TWILL_ERR_ETCD_REQUEST')]);
    const t = manager(reg.registry);
    await t.mgr.acquire();
    await vi.advanceTimersByTimeAsync(1000 * 3); // two failures, one success
    expect(reg.calls.renew).toBe(3);
    expect(t.lines('lease renewal failed; retrying')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1000); // the permanent failure
    expect(t.fatal.map((e) => (e as TwillError).code)).toEqual(['TWILL_ERR_ETCD_REQUEST']);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(reg.calls.renew).toBe(4); // no more attempts
    expect(t.lines('lease renewal failed: this error is not retried')).toHaveLength(1);
    t.mgr.handleLost('the watch saw the key go'); // a manager that gave up does not re-acquire
    expect(reg.calls.list).toBe(1);
  });

  it('hands a permanent error of a re-acquisition after a loss to onFatal', async () => {
    const reg = scriptedRegistry([empty, failure('TWILL_ERR_ETCD_AUTH')]);
    const t = manager(reg.registry);
    await t.mgr.acquire();
    t.mgr.handleLost('lease key deleted from etcd');
    await vi.waitFor(() => expect(t.fatal).toHaveLength(1));
    expect((t.fatal[0] as TwillError).code).toBe('TWILL_ERR_ETCD_AUTH');
    expect(reg.calls.list).toBe(2);
    t.mgr.stop();
  });
});
