import { afterEach, describe, expect, it, vi } from 'vitest';
import { EtcdProbe } from '../../src/agent/etcd-probe.js';
import { Telemetry } from '../../src/agent/telemetry.js';
import { renderAgentStatus } from '../../src/cli/status-render.js';
import { TwillError } from '../../src/errors.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { changedFields, parseNetworkConfig } from '../../src/subnet/config.js';
import { memoryLogger } from '../support/logger.js';

afterEach(() => void vi.useRealTimers());

const RUNNING = '{"Network":"10.244.0.0/16","Backend":{"Type":"udp","Port":8285}}';

/** The config key as a test sets it; `hang` makes every read wait until released. */
function fakeRegistry(text: string | null = RUNNING) {
  const state = { text, hang: false, fail: null as TwillError | null, reads: 0, timeouts: [] as (number | undefined)[] };
  const pending: (() => void)[] = [];
  const registry = {
    getConfig: (options?: { timeoutMs?: number }): Promise<string | null> => {
      state.reads++;
      state.timeouts.push(options?.timeoutMs);
      if (state.fail) return Promise.reject(state.fail);
      const answer = state.text;
      if (!state.hang) return Promise.resolve(answer);
      return new Promise((resolve) => pending.push(() => resolve(answer)));
    },
  };
  return { registry, state, release: () => pending.splice(0).forEach((r) => r()), releaseOldest: () => pending.shift()?.() };
}

/** A probe feeding a real telemetry, as the agent wires them, and the metrics read from it. */
function probe(reg: ReturnType<typeof fakeRegistry>) {
  const log = memoryLogger();
  const config = parseNetworkConfig(RUNNING);
  const telemetry = new Telemetry({ nodeName: 'n1', etcdEndpoints: ['http://e:2379'], version: 'v' });
  const p = new EtcdProbe({
    registry: reg.registry,
    logger: log.logger,
    running: config,
    onContact: (ok, err) => telemetry.etcdRpc(ok, err),
    onChanged: (c) => telemetry.configChanged(c),
  });
  const status = () => telemetry.status({ state: 'running', iface: null, config, backend: null, watchRevision: '9' });
  const metrics = createMetrics({ status, version: 't', backends: [], defaultMetrics: false });
  const gauge = async (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await metrics.registry.metrics())?.[1]);
  const lines = (msg: string) => log.lines().filter((l) => l.msg === msg);
  return { p, status, gauge, lines, logLines: log.lines };
}

describe('etcd probe: contact', () => {
  it('turns connected false when a read hangs past its 3 s deadline, and true again once etcd answers', async () => {
    vi.useFakeTimers();
    const reg = fakeRegistry();
    const t = probe(reg);
    t.p.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(t.status().etcd.connected).toBe(true);
    expect(await t.gauge('twill_etcd_up')).toBe(1);
    expect(reg.state.timeouts[0]).toBe(3000); // the registry is asked for the same deadline

    reg.state.hang = true; // etcd frozen: the read neither answers nor fails
    await vi.advanceTimersByTimeAsync(5000); // the next read starts...
    expect(t.status().etcd.connected).toBe(true);
    await vi.advanceTimersByTimeAsync(2999);
    expect(t.status().etcd.connected).toBe(true);
    await vi.advanceTimersByTimeAsync(1); // ...and 3 s later counts as no contact
    expect(t.status().etcd.connected).toBe(false);
    expect(await t.gauge('twill_etcd_up')).toBe(0);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(t.status().etcd.connected).toBe(false);

    reg.state.hang = false;
    reg.release(); // the old reads' late answers change nothing: they were given up
    await vi.advanceTimersByTimeAsync(0);
    expect(t.status().etcd.connected).toBe(false);
    await vi.advanceTimersByTimeAsync(5000);
    expect(t.status().etcd.connected).toBe(true);
    expect(await t.gauge('twill_etcd_up')).toBe(1);
    await t.p.stop();
  });

  it('counts a refusal as contact and an unreachable etcd as none; stop() does not wait for a hanging read', async () => {
    vi.useFakeTimers();
    const reg = fakeRegistry();
    const t = probe(reg);
    reg.state.fail = new TwillError('TWILL_ERR_ETCD_REQUEST', 'read the network config: permission denied by etcd');
    await t.p.probe();
    expect(t.status().etcd.connected).toBe(true);
    reg.state.fail = new TwillError('TWILL_ERR_ETCD_UNAVAILABLE', 'read the network config: etcd is unreachable');
    await t.p.probe();
    expect(t.status().etcd.connected).toBe(false);
    reg.state.fail = null;
    reg.state.hang = true;
    void t.p.probe();
    await vi.advanceTimersByTimeAsync(3000); // given up...
    void t.p.probe();
    reg.releaseOldest(); // ...its late answer does not disarm the read now in flight
    await vi.advanceTimersByTimeAsync(0);
    let stopped = false;
    void t.p.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(true);
    const reads = reg.state.reads;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(reg.state.reads).toBe(reads);
  });
});

describe('etcd probe: a config changed in etcd while running', () => {
  it('warns once naming the fields, sets twill_config_stale 1, and says once when etcd agrees again', async () => {
    vi.useFakeTimers();
    const reg = fakeRegistry();
    const t = probe(reg);
    t.p.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(await t.gauge('twill_config_stale')).toBe(0);
    expect(t.logLines().filter((l) => (l.level as number) >= 40)).toEqual([]);

    reg.state.text = '{"network":"10.244.0.0/16","SubnetLen":26,"Backend":{"Type":"udp","port":8472}}';
    await vi.advanceTimersByTimeAsync(60_000); // twelve reads of the same change
    const warned = t.lines('network config changed in etcd; restart the agent to apply it');
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ level: 40, changed: ['SubnetLen', 'Backend.port'] });
    expect(await t.gauge('twill_config_stale')).toBe(1);
    expect(t.status().network?.changedInEtcd).toEqual(['SubnetLen', 'Backend.port']);
    expect(renderAgentStatus({ ...t.status(), rejectedLeases: { total: 0, leases: [] } })).toMatch(/CHANGED IN ETCD: SubnetLen, Backend.port \(a restart applies it\)/);

    // Spelled differently, meaning the same: in step again.
    reg.state.text = '{"Backend":{"port":8285,"type":"UDP"},"Network":"10.244.0.0/16","SubnetLen":24}';
    await vi.advanceTimersByTimeAsync(15_000);
    expect(t.lines('network config in etcd matches the running one again')).toHaveLength(1);
    expect(await t.gauge('twill_config_stale')).toBe(0);
    expect(t.status().network?.changedInEtcd).toEqual([]);
    expect(t.lines('network config changed in etcd; restart the agent to apply it')).toHaveLength(1);
    await t.p.stop();
  });

  it('says so once for a deleted config and once for an invalid one, with its code', async () => {
    const reg = fakeRegistry(null);
    const t = probe(reg);
    await t.p.probe();
    await t.p.probe();
    expect(t.lines('network config deleted from etcd; the agent keeps running on the one it started with')).toHaveLength(1);
    expect(t.status().network?.changedInEtcd).toEqual(['(deleted)']);
    reg.state.text = '{"Network":"10.244.0.0/16","SubnetLen":40}';
    await t.p.probe();
    await t.p.probe();
    const invalid = t.lines('network config in etcd is invalid; the agent keeps running on the one it started with');
    expect(invalid).toHaveLength(1);
    expect(invalid[0]).toMatchObject({ changed: ['(invalid)'], code: 'TWILL_ERR_CONFIG_INVALID' });
    expect(await t.gauge('twill_config_stale')).toBe(1);
  });
});

describe('changedFields', () => {
  const cfg = (text: string) => parseNetworkConfig(text);
  it('compares meaning, not spelling: defaults, key case and order', () => {
    const a = cfg('{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}');
    expect(changedFields(a, cfg('{"network":"10.244.0.0/16","SubnetLen":24,"SubnetMin":"10.244.1.0","backend":{"type":"HOST-GW"}}'))).toEqual([]);
    // SubnetMin and SubnetMax follow Network and SubnetLen unless set: only what was changed is named.
    expect(changedFields(a, cfg('{"Network":"10.245.0.0/16","Backend":{"Type":"host-gw"}}'))).toEqual(['Network']);
    expect(changedFields(a, cfg('{"Network":"10.244.0.0/16","SubnetLen":25,"Backend":{"Type":"host-gw"}}'))).toEqual(['SubnetLen']);
    expect(changedFields(a, cfg('{"Network":"10.244.0.0/16","SubnetMin":"10.244.10.0","Backend":{"Type":"host-gw"}}'))).toEqual(['SubnetMin']);
    expect(changedFields(a, cfg('{"Network":"10.244.0.0/16","SubnetLen":25,"SubnetMax":"10.244.100.0","Backend":{"Type":"host-gw"}}'))).toEqual(['SubnetLen', 'SubnetMax']);
    expect(changedFields(a, cfg('{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}'))).toEqual(['Backend.Type']);
    const b = cfg('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":1,"Opts":{"a":1,"b":[2]}}}');
    expect(changedFields(b, cfg('{"Network":"10.244.0.0/16","Backend":{"vni":1,"Type":"vxlan","Opts":{"b":[2],"a":1}}}'))).toEqual([]);
    expect(changedFields(b, cfg('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":2,"Port":4789}}'))).toEqual(['Backend.VNI', 'Backend.Opts', 'Backend.Port']);
  });
});
