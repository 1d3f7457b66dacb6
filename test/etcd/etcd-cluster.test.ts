import { afterEach, describe, expect, it } from 'vitest';
import type { TwillError } from '../../src/errors.js';
import { EtcdRegistry } from '../../src/subnet/etcd-registry.js';
import { startEtcdCluster, type EtcdCluster } from '../support/etcd.js';
import { etcdAgent, type EtcdAgent } from '../support/etcd-agent.js';
import { eventually } from '../support/logger.js';

// Three real etcd members on loopback; members are killed (SIGKILL) and restarted on their data.
let cluster: EtcdCluster | null = null;
let a: EtcdAgent | null = null;
const closers: (() => unknown)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await a?.dispose();
  a = null;
  await cluster?.stop();
  cluster = null;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a 3-member etcd cluster', () => {
  it('drops a lease watch on a member that lost its quorum (require-leader), and it comes back with the quorum', async ({ annotate }) => {
    const c = (cluster = await startEtcdCluster(3));
    const [survivor, ...others] = c.members;
    // The watch can reach only the member that will be left alone: nothing else can break it.
    const registry = new EtcdRegistry({ endpoints: [survivor!.endpoint], prefix: '/require-leader/network' });
    const seen: { connected: boolean; code: string | undefined; at: number }[] = [];
    const watch = registry.watchLeases('1', {
      onBatch: () => undefined,
      onReset: () => undefined,
      onConnection: (connected: boolean, err?: TwillError) => void seen.push({ connected, code: err?.code, at: Date.now() }),
    });
    closers.push(() => watch.close(), () => registry.close());
    await eventually(() => seen.at(-1)?.connected === true, 10_000, 'watch connected');

    for (const m of others) await m.kill();
    const lostAt = Date.now();
    await eventually(() => seen.at(-1)?.connected === false, 15_000, 'watch refused without a leader');
    const refusedMs = seen.find((s) => !s.connected)!.at - lostAt;
    expect(seen.find((s) => !s.connected)!.code).toBe('TWILL_ERR_ETCD_UNAVAILABLE');
    expect(survivor!.pid()).not.toBeNull(); // the member runs and answers: only its missing leader broke the watch
    expect((await fetch(`${survivor!.endpoint}/version`)).ok).toBe(true);
    await sleep(3000);
    expect(seen.at(-1)?.connected).toBe(false); // and it stays refused, however often the client retries

    await Promise.all(others.map((m) => m.restart()));
    await eventually(() => seen.at(-1)?.connected === true, 20_000, 'watch connected again');
    await annotate(`watch on a member without quorum refused after ${refusedMs} ms`);
  }, 120_000);

  it('keeps the agent ready and connected when the leader dies, shows connected: false without quorum, and recovers', async ({ annotate }) => {
    const c = (cluster = await startEtcdCluster(3));
    const t = (a = await etcdAgent(c.endpoints));
    await t.addPeer('10.244.2.0/24', '198.18.0.2');
    await t.agent.start();
    await eventually(() => t.agent.status().ready && t.agent.status().etcd.connected, 15_000, 'ready and connected');
    const status = () => t.agent.status();

    // The leader dies: a new one is elected among the two left; the agent stays ready and connected.
    const leader = await c.leader();
    const killedAt = Date.now();
    await leader.kill();
    let notReady = 0;
    let notConnected = 0;
    for (let i = 0; i < 100; i++) {
      await sleep(100);
      if (!status().ready) notReady++;
      if (!status().etcd.connected) notConnected++;
    }
    expect(notReady).toBe(0);
    expect(status().etcd.connected).toBe(true);
    expect(await t.gauge('twill_etcd_up')).toBe(1);
    await t.addPeer('10.244.3.0/24', '198.18.0.3'); // the watch still delivers
    await eventually(() => t.backends[0]!.batches.flat().includes('added 10.244.3.0/24 198.18.0.3'), 15_000, 'peer added after the leader died');

    // A second member dies: the last one has no quorum.
    const second = c.members.find((m) => m !== leader && m.pid() !== null)!;
    const batches = JSON.stringify(t.backends[0]!.batches);
    await second.kill();
    const lostAt = Date.now();
    await eventually(() => !status().etcd.connected, 15_000, 'connected: false without quorum');
    const detectedMs = Date.now() - lostAt;
    expect(await t.gauge('twill_etcd_up')).toBe(0);
    await sleep(5000);
    expect(status().etcd.connected).toBe(false);
    expect(status().ready).toBe(true); // routes and readiness stay: etcd's trouble removes nothing
    expect(t.backends).toHaveLength(1);
    expect(t.backends[0]!.state).toBe('started');
    expect(JSON.stringify(t.backends[0]!.batches)).toBe(batches);

    // Both come back: connected again, and the watch delivers again.
    const backAt = Date.now();
    await Promise.all([leader.restart(), second.restart()]);
    await eventually(() => status().etcd.connected, 20_000, 'connected again');
    const recoveredMs = Date.now() - backAt;
    await t.addPeer('10.244.4.0/24', '198.18.0.4');
    await eventually(() => t.backends[0]!.batches.flat().includes('added 10.244.4.0/24 198.18.0.4'), 15_000, 'peer added after the quorum is back');

    // The quorum outage in two lines, the second with its length.
    const after = (ms: number) => t.logLines().filter((l) => (l.time as number) >= ms);
    // One start line for the outage: after the quorum went, or already at the leader's death when
    // that blip ran straight into it (one outage either way).
    expect(after(lostAt).filter((l) => l.msg === 'etcd unreachable; retrying').length).toBeLessThanOrEqual(1);
    expect(after(killedAt).filter((l) => l.msg === 'etcd unreachable; retrying').length).toBeGreaterThanOrEqual(1);
    expect(after(lostAt).filter((l) => l.msg === 'etcd still unreachable')).toHaveLength(0);
    const back = after(backAt).filter((l) => l.msg === 'etcd reachable again');
    expect(back).toHaveLength(1);
    // Its length: the outage is dated from the first failed call or probe, which may come a few
    // seconds after the watch saw the quorum go (the probe runs every 5 s), and ends with the restart.
    expect(back[0]!.downSeconds).toBeGreaterThan(0);
    expect(back[0]!.downSeconds).toBeLessThanOrEqual((Date.now() - lostAt) / 1000);
    await annotate(`leader killed: not connected for ${notConnected * 100} ms of 10 s; quorum lost: connected false after ${detectedMs} ms; members restarted: connected after ${recoveredMs} ms`);
  }, 180_000);
});
