import { afterEach, describe, expect, it } from 'vitest';
import { firstHost, formatCidr, formatIp } from '../../src/lib/ipv4.js';
import { agentHarness, type AgentHarness, type AgentHarnessOptions } from '../support/agent-harness.js';
import { eventually } from '../support/logger.js';

let h: AgentHarness | null = null;
const harness = async (opts: AgentHarnessOptions = {}) => (h = await agentHarness(opts));
afterEach(async () => {
  await h?.dispose();
  h = null;
});

/** Resolves with how long `p` took to settle from now, in ms (rejections count as settling). */
const settleTime = async (p: Promise<unknown>) => {
  const t0 = Date.now();
  await p.catch(() => undefined);
  return Date.now() - t0;
};
const lifecycleOf = (order: string[]) => order.filter((o) => /^(links|sysctl|backend|registry|watch)\./.test(o)).map((o) => o.split(' ')[0]);

describe('agent lifecycle, in one process', () => {
  it('starts interface → ip_forward → lease → backend → subnet.env → watch, and is running', async () => {
    const a = await harness();
    await a.agent.start();
    expect(a.agent.lifecycle.state).toBe('running');
    expect(lifecycleOf(a.order)).toEqual(['links.resolveExternal', 'sysctl.enableIpForward', 'backend.start', 'registry.watch']);
    const [own] = a.backends;
    const held = Object.entries(a.registry.peek()).filter(([, v]) => v.includes(`"PublicIP":"198.18.0.1"`));
    expect(held).toEqual([[`${a.registry.prefix}/subnets/${formatIp(own!.ownLease.subnet.addr)}-24`, '{"PublicIP":"198.18.0.1","PublicIPv6":null,"BackendType":"recording"}']]);
    const subnet = `${formatIp(firstHost(own!.ownLease.subnet))}/24`;
    expect(await a.subnetEnv()).toBe(`FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=${subnet}\nFLANNEL_MTU=1490\nFLANNEL_IPMASQ=false\n`);
  });

  it("gives the backend the full peer set as its first call, then each change as it comes", async () => {
    const a = await harness({ peers: [['10.244.2.0/24', '198.18.0.2'], ['10.244.3.0/24', '198.18.0.3']] });
    await a.agent.start();
    const b = a.backends[0]!;
    await eventually(() => b.batches.length === 1, 10_000, 'first batch');
    expect(b.batches[0]!.sort()).toEqual(['added 10.244.2.0/24 198.18.0.2', 'added 10.244.3.0/24 198.18.0.3']);
    await a.registry.createLease({ addr: 0x0af40400, len: 24 }, { publicIP: '198.18.0.4', publicIPv6: null }, 60);
    await eventually(() => b.batches.length === 2, 10_000, 'added peer');
    await a.registry.deleteLease({ addr: 0x0af40200, len: 24 });
    await eventually(() => b.batches.length === 3, 10_000, 'removed peer');
    expect(b.batches.slice(1)).toEqual([['added 10.244.4.0/24 198.18.0.4'], ['removed 10.244.2.0/24 198.18.0.2']]);
  });

  it('sends an empty full set first when there are no peers, so the backend knows it has them all', async () => {
    const a = await harness();
    await a.agent.start();
    const b = a.backends[0]!;
    await eventually(() => b.batches.length === 1, 10_000, 'first batch');
    expect(b.batches).toEqual([[]]);
    expect(formatCidr(b.ownLease.subnet)).not.toBe('10.244.2.0/24');
  });

  it('stops in reverse: lease watch closed, backend stopped and awaited, registry closed last; the lease stays', async () => {
    const a = await harness({ backend: { stopMs: 50 } });
    await a.agent.start();
    a.order.length = 0;
    await a.agent.stop();
    expect(a.agent.lifecycle.state).toBe('stopped');
    expect(lifecycleOf(a.order)).toEqual(['watch.close', 'backend.stop', 'backend.stopped', 'registry.close']);
    const own = a.backends[0]!.ownLease;
    expect(Object.keys(a.registry.peek())).toContain(`${a.registry.prefix}/subnets/${formatIp(own.subnet.addr)}-24`);
  });

  it('stop() while start() waits for an absent config: start() returns at once, no lease, stopped', async () => {
    const a = await harness({ config: null });
    const started = a.agent.start();
    await eventually(() => a.logLines().some((l) => l.code === 'TWILL_ERR_CONFIG_MISSING'), 10_000, 'waiting for the config');
    const stopped = a.agent.stop();
    expect(await settleTime(started)).toBeLessThan(300); // the config retry waits 750-1250 ms
    await stopped;
    await expect(started).resolves.toBeUndefined();
    expect(a.agent.lifecycle.state).toBe('stopped');
    expect(a.backends).toEqual([]);
    expect(a.registry.peek()).toEqual({}); // no lease taken
  });

  it('stop() while the config is being read: start() returns at once, not after another retry wait', async () => {
    const a = await harness({ config: null });
    let release = () => undefined as void;
    const gate = new Promise<void>((r) => (release = r));
    const read = a.registry.getConfig.bind(a.registry);
    a.registry.getConfig = async () => (await gate, read());
    const started = a.agent.start();
    await eventually(() => a.order.includes('sysctl.enableIpForward'), 10_000, 'reading the config');
    const stopped = a.agent.stop(); // no retry wait is pending yet: the read is in flight
    release();
    expect(await settleTime(started)).toBeLessThan(300);
    await stopped;
    expect(a.agent.lifecycle.state).toBe('stopped');
  });

  it('stop() while start() waits for a free subnet: start() settles at once, nothing started, stopped', async () => {
    const full = '{"Network":"10.9.0.0/28","Backend":{"Type":"recording"}}'; // three /30s, all taken
    const a = await harness({ config: full, peers: [['10.9.0.4/30', '198.18.5.1'], ['10.9.0.8/30', '198.18.5.2'], ['10.9.0.12/30', '198.18.5.3']] });
    const started = a.agent.start();
    await eventually(() => a.logLines().some((l) => (l.err as { code?: string } | undefined)?.code === 'TWILL_ERR_LEASE_NETWORK_FULL'), 10_000, 'network full');
    const stopped = a.agent.stop();
    expect(await settleTime(started)).toBeLessThan(300); // the lease retry waits 750 ms and more
    await stopped;
    expect(a.agent.lifecycle.state).toBe('stopped');
    expect(a.backends).toEqual([]);
  });

  // BUG in src/agent/agent.ts, not fixed here (another engineer owns the file): stop() does not wait
  // for an in-flight start(), and start() does not look at the lifecycle after the config. Stopped
  // while the backend starts, start() carries on after stop(): it writes subnet.env and opens a
  // lease stream on the closed registry, which retries for ever, so start() never settles (the CLI
  // awaits it after SIGTERM). Enable this test with the fix described in the issue 12 report.
  it('stop() while the backend starts: start() settles, the backend is stopped, no watch is left open', async () => {
    let open = () => undefined as void;
    const a = await harness({ backend: { startGate: new Promise<void>((r) => (open = r)) } });
    const started = a.agent.start();
    await eventually(() => a.backends.length === 1, 10_000, 'backend starting');
    const stopped = a.agent.stop();
    open();
    await stopped;
    expect(await settleTime(started)).toBeLessThan(300);
    expect(a.agent.lifecycle.state).toBe('stopped');
    expect(a.backends[0]!.state).toBe('stopped');
    const watches = lifecycleOf(a.order).filter((o) => o === 'registry.watch' || o === 'watch.close');
    expect(watches.filter((o) => o === 'registry.watch').length).toBe(watches.filter((o) => o === 'watch.close').length);
  });
});
