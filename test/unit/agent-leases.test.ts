import { afterEach, describe, expect, it } from 'vitest';
import { firstHost, formatCidr, formatIp, sameNet } from '../../src/lib/ipv4.js';
import { formatLeaseValue, leaseKey } from '../../src/subnet/lease-format.js';
import type { Lease } from '../../src/subnet/types.js';
import { agentHarness, OWN_IP, type AgentHarness } from '../support/agent-harness.js';
import { eventually } from '../support/logger.js';

const PEER = ['10.244.2.0/24', '198.18.0.2'] as const;
const THIEF = '198.18.0.9';

let h: AgentHarness | null = null;
afterEach(async () => {
  await h?.dispose();
  h = null;
});

/** A started agent with one peer, and the lease it holds. */
async function running(): Promise<{ a: AgentHarness; own: Lease }> {
  const a = (h = await agentHarness({ peers: [PEER] }));
  await a.agent.start();
  await eventually(() => a.backends[0]?.batches.length === 1, 2000, 'first peer batch');
  return { a, own: a.backends[0]!.ownLease };
}

/** The keys whose value names this PublicIP. */
const keysOf = (a: AgentHarness, ip: string) =>
  Object.entries(a.registry.peek())
    .filter(([, v]) => v.includes(`"PublicIP":"${ip}"`))
    .map(([k]) => k);

/** Another node writes our key, as flannel would with the same subnet: same key, its own PublicIP. */
const takeOurKey = (a: AgentHarness, own: Lease) =>
  a.registry.putRaw(leaseKey(a.registry.prefix, own.subnet), formatLeaseValue({ publicIP: THIEF, publicIPv6: null, backendType: 'recording' }));

describe('agent reacting to its lease, in one process', () => {
  it('gives up its key when another node writes it, takes another subnet, and rewrites subnet.env', async () => {
    const { a, own } = await running();
    takeOurKey(a, own);
    await eventually(() => keysOf(a, OWN_IP).length === 1 && keysOf(a, OWN_IP)[0] !== leaseKey(a.registry.prefix, own.subnet), 3000, 're-acquisition');
    expect(keysOf(a, THIEF)).toEqual([leaseKey(a.registry.prefix, own.subnet)]); // left to the other node, not fought over
    const next = a.backends.at(-1)!.ownLease;
    expect(sameNet(next.subnet, own.subnet)).toBe(false);
    expect(keysOf(a, OWN_IP)).toEqual([leaseKey(a.registry.prefix, next.subnet)]);
    await eventually(async () => (await a.subnetEnv()).includes(`FLANNEL_SUBNET=${formatIp(firstHost(next.subnet))}/24\n`), 3000, 'subnet.env rewritten');
  });

  it('restarts the backend with a re-acquired lease of another subnet and sends it every peer', async () => {
    const { a, own } = await running();
    takeOurKey(a, own);
    await eventually(() => a.backends.length === 2 && a.backends[1]!.batches.length >= 1, 3000, 'restarted backend with peers');
    const [old, next] = a.backends;
    expect(old!.state).toBe('stopped');
    expect(next!.state).toBe('started');
    expect(sameNet(next!.ownLease.subnet, own.subnet)).toBe(false);
    expect(next!.ownLease.attrs.publicIP).toBe(OWN_IP);
    // The first call is the whole peer set again, now with the node that took our old subnet.
    expect(next!.batches[0]!.sort()).toEqual([`added ${formatCidr(own.subnet)} ${THIEF}`, `added ${PEER[0]} ${PEER[1]}`].sort());
    expect(lifecycleOrder(a)).toEqual(['backend.start', 'backend.stop', 'backend.stopped', 'backend.start']);
  });

  it('re-creates its deleted key with the same subnet and leaves the backend running', async () => {
    const { a, own } = await running();
    const key = leaseKey(a.registry.prefix, own.subnet);
    const value = a.registry.peek()[key];
    await a.registry.deleteLease(own.subnet);
    expect(a.registry.peek()[key]).toBeUndefined();
    await eventually(() => a.registry.peek()[key] === value, 3000, 'key re-created');
    await new Promise((r) => setTimeout(r, 200)); // room for a wrong restart or peer call
    expect(a.backends).toHaveLength(1);
    expect(a.backends[0]!.state).toBe('started');
    expect(a.backends[0]!.batches.flat().some((e) => e.includes(formatCidr(own.subnet)))).toBe(false); // never its own subnet as a peer
    expect(a.logLines().some((l) => l.msg === 'lease lost; re-acquiring' && l.reason === 'lease key deleted from etcd')).toBe(true);
  });
});

function lifecycleOrder(a: AgentHarness): string[] {
  return a.order.filter((o) => o.startsWith('backend.')).map((o) => o.split(' ')[0]!);
}
