import { afterEach, describe, expect, it, vi } from 'vitest';
import { Telemetry } from '../../src/agent/telemetry.js';
import { TwillError } from '../../src/errors.js';
import { parseCidr } from '../../src/lib/ipv4.js';
import { parseNetworkConfig } from '../../src/subnet/config.js';
import { LeaseManager } from '../../src/subnet/lease-manager.js';
import type { LeaseRegistry } from '../../src/subnet/registry.js';
import { agentHarness, type AgentHarness } from '../support/agent-harness.js';
import { eventually, memoryLogger } from '../support/logger.js';

let h: AgentHarness | null = null;
afterEach(async () => {
  vi.useRealTimers();
  await h?.dispose();
  h = null;
});

const unreachable = (what: string) => new TwillError('TWILL_ERR_ETCD_UNAVAILABLE', `${what}: etcd is unreachable (14 UNAVAILABLE: Connection dropped)`);
const warnings = (lines: Record<string, unknown>[]) => lines.filter((l) => (l.level as number) >= 40).map((l) => `${String(l.component)}: ${String(l.msg)}`);

describe('etcd contact in the status', () => {
  it('is connected only while RPCs reach etcd and the lease watch is up: a broken watch is not made good by an RPC', () => {
    const seen: [boolean, string | null][] = [];
    const tel = new Telemetry({ nodeName: 'n1', etcdEndpoints: ['http://e:2379'], version: 'v', onEtcdContact: (up, why) => seen.push([up, why?.code ?? null]) });
    const connected = () => tel.status({ state: 'running', iface: null, config: null, backend: null, watchRevision: null }).etcd.connected;
    tel.etcdRpc(true);
    expect(connected()).toBe(true); // no watch yet: the RPCs alone decide
    tel.etcdWatch(false, unreachable('lease watch'));
    tel.etcdRpc(true); // the probe's read still answers (a member that lost its quorum can refuse the watch only)
    expect(connected()).toBe(false);
    tel.etcdWatch(true);
    expect(connected()).toBe(true);
    tel.etcdWatch(false, unreachable('lease watch'));
    tel.etcdWatch(true); // back, but on a member that may have lost its quorum: no RPC has answered since
    expect(connected()).toBe(false);
    tel.etcdRpc(true);
    expect(connected()).toBe(true);
    tel.etcdRpc(false, unreachable('read the network config'));
    expect(connected()).toBe(false);
    expect(seen.map(([up]) => up)).toEqual([true, false, false, true, false, false, true, false]);
    expect(seen[1]).toEqual([false, 'TWILL_ERR_ETCD_UNAVAILABLE']);
    expect(seen.at(-1)).toEqual([false, 'TWILL_ERR_ETCD_UNAVAILABLE']);
  });
});

describe('an etcd outage, as the agent logs it', () => {
  it('says one warning when it starts and one line with its duration when it ends, however often the watch breaks', async () => {
    const a = (h = await agentHarness({ peers: [['10.244.2.0/24', '198.18.0.2']] }));
    await a.agent.start();
    await eventually(() => a.watchHandlers() !== null && a.agent.status().ready && a.agent.status().etcd.connected, 5000, 'running, watching, connected');
    expect(warnings(a.logLines())).toEqual([]);

    // The etcd client reconnects the stream by itself and fails again each time.
    for (let i = 0; i < 6; i++) a.watchHandlers()!.onConnection(false, unreachable(`lease watch (attempt ${i})`));
    expect(a.agent.status().etcd.connected).toBe(false);
    expect(a.agent.status().ready).toBe(true); // routes and readiness stay: an outage changes neither
    await new Promise((r) => setTimeout(r, 300));
    a.watchHandlers()!.onConnection(true);
    await eventually(() => a.agent.status().etcd.connected, 6000, 'connected again');

    expect(warnings(a.logLines())).toEqual(['etcd: etcd unreachable; retrying']);
    const start = a.logLines().find((l) => l.msg === 'etcd unreachable; retrying');
    expect(start).toMatchObject({ code: 'TWILL_ERR_ETCD_UNAVAILABLE', why: 'lease watch (attempt 0): etcd is unreachable (14 UNAVAILABLE: Connection dropped)' });
    const end = a.logLines().filter((l) => l.msg === 'etcd reachable again');
    expect(end).toHaveLength(1);
    expect(end[0]!.downSeconds).toBeGreaterThanOrEqual(0.3);
    // The lease stream said it too, at debug only.
    expect(a.logLines().filter((l) => l.msg === 'etcd watch connection lost').map((l) => l.level)).toEqual([20]);
  });

  it('stays quiet while stopping, when the closing client fails what is in flight', async () => {
    const a = (h = await agentHarness());
    await a.agent.start();
    await eventually(() => a.watchHandlers() !== null && a.agent.status().etcd.connected, 5000, 'connected');
    const handlers = a.watchHandlers()!;
    await a.agent.stop();
    handlers.onConnection(false, unreachable('lease watch'));
    a.agent.telemetry.etcdRpc(false, unreachable('renew etcd lease'));
    expect(warnings(a.logLines())).toEqual([]);
  });

  it("leaves an unreachable etcd to the agent's outage log in the lease manager too (debug), other failures as before", async () => {
    vi.useFakeTimers();
    const renewals: (number | TwillError)[] = [unreachable('renew etcd lease'), unreachable('renew etcd lease'), 3, new TwillError('TWILL_ERR_ETCD_REQUEST', 'renew etcd lease: permission denied by etcd')];
    const unused = () => Promise.reject(new Error('not used'));
    const registry: LeaseRegistry = {
      listLeases: async () => ({ leases: [], revision: '3', unreadable: [] }),
      createLease: async (subnet, attrs) => ({ subnet, attrs, etcdLeaseId: '42', modRevision: '4' }),
      renewLease: async () => {
        const next = renewals.shift() ?? 3;
        if (next instanceof TwillError) throw next;
        return next;
      },
      revokeLease: async () => undefined,
      takeOverLease: unused,
      getConfig: unused,
      putConfig: unused,
      createConfig: unused,
      deleteLease: unused,
      watchLeases: () => ({ close: async () => undefined }),
      close: () => undefined,
    };
    const log = memoryLogger();
    const mgr = new LeaseManager({
      registry,
      logger: log.logger,
      config: parseNetworkConfig('{"Network":"10.10.0.0/16","Backend":{"Type":"host-gw"}}'),
      attrs: { publicIP: '198.18.0.1', publicIPv6: null },
      ttlSeconds: 3,
      preferred: parseCidr('10.10.7.0/24'),
      onLease: () => undefined,
      onFatal: () => undefined,
      quietOutages: true,
    });
    await mgr.acquire();
    await vi.advanceTimersByTimeAsync(5000);
    mgr.stop();
    const renewLines = log.lines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('lease renewal failed'));
    expect(renewLines.map((l) => [l.level, l.code])).toEqual([
      [20, 'TWILL_ERR_ETCD_UNAVAILABLE'],
      [50, 'TWILL_ERR_ETCD_REQUEST'],
    ]);
  });
});
