import { afterEach, describe, expect, it } from 'vitest';
import { parseCidr } from '../../src/lib/ipv4.js';
import { formatLeaseValue, leaseKey } from '../../src/subnet/lease-format.js';
import { agentHarness, type AgentHarness } from '../support/agent-harness.js';
import { eventually } from '../support/logger.js';
import { RECORDING_TYPE } from '../support/recording-backend.js';

let h: AgentHarness | null = null;
afterEach(async () => {
  await h?.dispose();
  h = null;
});

/** N other nodes' leases, as key and value. */
function joins(n: number, from = 0): [string, string][] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    // /28s in 10.244.128.0/17: inside the Network (the agent rejects leases outside it) and clear of the own subnet.
    const key = leaseKey('/coreos.com/network', parseCidr(`10.244.${128 + (i >> 4)}.${(i & 15) << 4}/28`)!);
    return [key, formatLeaseValue({ publicIP: `198.19.${i >> 8}.${i & 255}`, publicIPv6: null, backendType: RECORDING_TYPE })];
  });
}

describe('peer events travel as batches, end to end', () => {
  it('one watch response of 1,000 leases reaches the backend as one call, logged in one info line', async () => {
    const a = (h = await agentHarness({ peers: [['10.244.2.0/24', '198.18.0.2']] }));
    await a.agent.start();
    await eventually(() => a.backends[0]?.batches.length === 1, 2000, 'first peer batch');
    a.registry.putRawMany(joins(1000));
    await eventually(() => a.backends[0]!.batches.length === 2, 5000, 'the burst');
    expect(a.backends[0]!.batches.map((b) => b.length)).toEqual([1, 1000]);
    const lines = a.logLines().filter((l) => l['msg'] === 'peers changed');
    expect(lines.at(-1)).toMatchObject({ added: 1000, removed: 0, more: 990 });
    expect((lines.at(-1)!['subnets'] as string[])).toHaveLength(10);
    expect(a.logLines().filter((l) => l['msg'] === 'peer added' && l['level'] === 30)).toHaveLength(0);
  });

  it('what arrives while the backend is busy goes into its next call', async () => {
    const a = (h = await agentHarness({ backend: { applyMs: 300 } }));
    await a.agent.start();
    await eventually(() => a.backends[0]?.batches.length === 1, 2000, 'first (empty) batch');
    a.registry.putRawMany(joins(1, 0));
    await eventually(() => a.backends[0]!.batches.length === 2, 2000, 'a call in flight');
    for (let i = 1; i < 20; i++) {
      a.registry.putRawMany(joins(1, i)); // 19 more responses, one lease each, while the backend is busy
      await new Promise((r) => setImmediate(r));
    }
    await eventually(() => a.backends[0]!.batches.flat().length === 20, 5000, 'all twenty');
    expect(a.backends[0]!.batches.slice(1).map((b) => b.length)).toEqual([1, 19]);
  });

  it('stop is bounded: it waits for the call in flight, not for the backlog', async () => {
    const a = (h = await agentHarness({ backend: { applyMs: 1000 } }));
    await a.agent.start();
    await eventually(() => a.backends[0]?.batches.length === 1, 3000, 'first batch');
    await new Promise((r) => setTimeout(r, 1100)); // the first call is done
    for (let i = 0; i < 50; i++) {
      a.registry.putRawMany(joins(1, i));
      await new Promise((r) => setImmediate(r));
    }
    await eventually(() => a.backends[0]!.batches.length === 2, 2000, 'a call in flight');
    const t0 = Date.now();
    await a.agent.stop();
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(a.backends[0]!.batches.length).toBe(2); // the backlog was left to the next start
    expect(a.logLines().some((l) => l['msg']?.toString().startsWith('stopping: peer changes not yet applied'))).toBe(true);
  });
});
