import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/app.js';
import { TwillError } from '../../src/errors.js';
import { formatCidr, formatIp, mask, parseCidr, type Ipv4Net } from '../../src/lib/ipv4.js';
import { LEASE_REJECT_REASONS, NO_OBSERVER, type AgentObserver, type LeaseRejectReason } from '../../src/status/observer.js';
import type { AgentStatus } from '../../src/status/types.js';
import { REJECT_REASONS } from '../../src/subnet/lease-check.js';
import { formatLeaseValue, leaseKey } from '../../src/subnet/lease-format.js';
import { agentHarness, type AgentHarness } from '../support/agent-harness.js';
import { eventually, memoryLogger } from '../support/logger.js';
import { RECORDING_TYPE } from '../support/recording-backend.js';

const PEER = ['10.244.2.0/24', '198.18.0.2'] as const;
const value = (publicIP: string) => formatLeaseValue({ publicIP, publicIPv6: null, backendType: RECORDING_TYPE });

let h: AgentHarness | null = null;
afterEach(async () => {
  await h?.dispose();
  h = null;
});

/** A running agent with one peer, the counts its observer saw, and its own subnet. */
async function running(): Promise<{ a: AgentHarness; own: Ipv4Net; counted: LeaseRejectReason[] }> {
  const counted: LeaseRejectReason[] = [];
  const observer: AgentObserver = { ...NO_OBSERVER, leaseRejected: (reason) => counted.push(reason) };
  const a = (h = await agentHarness({ peers: [PEER], observer }));
  await a.agent.start();
  await eventually(() => a.backends[0]?.batches.length === 1, 2000, 'first peer batch');
  return { a, own: a.backends[0]!.ownLease.subnet, counted };
}

/** Every hostile key of issue 13 against this node's subnet, with the reason each is rejected for. */
function hostile(prefix: string, own: Ipv4Net): { key: string; value: string; reason: LeaseRejectReason; subnet: string | null }[] {
  const half = parseCidr(`${formatIp(own.addr + 128)}/25`)!;
  const cover = { addr: (own.addr & mask(23)) >>> 0, len: 23 };
  const k = (n: Ipv4Net) => leaseKey(prefix, n);
  return [
    { key: k(parseCidr('10.99.0.0/24')!), value: value('198.18.0.66'), reason: 'outside-network', subnet: '10.99.0.0/24' },
    { key: k(half), value: value('198.18.0.77'), reason: 'overlaps-own', subnet: formatCidr(half) },
    { key: k(cover), value: value('198.18.0.78'), reason: 'overlaps-own', subnet: formatCidr(cover) },
    { key: k(parseCidr('10.244.2.128/25')!), value: value('198.18.0.79'), reason: 'overlaps-peer', subnet: '10.244.2.128/25' },
    { key: k(parseCidr('10.244.200.0/24')!), value: '{"PublicIP":"not-an-ip"}', reason: 'bad-value', subnet: '10.244.200.0/24' },
    { key: k(parseCidr('10.244.201.0/24')!), value: 'not json', reason: 'bad-value', subnet: '10.244.201.0/24' },
    { key: `${prefix}/subnets/10.244.202.0_24`, value: value('198.18.0.80'), reason: 'bad-key', subnet: null },
  ];
}

const rejectedLines = (a: AgentHarness) => a.logLines().filter((l) => l['msg'] === 'lease rejected');
const everyCall = (a: AgentHarness) => a.backends.flatMap((b) => b.batches.flat());

describe('agent: leases are checked before anything is programmed', () => {
  it('never hands a hostile lease to the backend, logs each once, counts it and lists it in /v1/status', async () => {
    const { a, own, counted } = await running();
    const bad = hostile(a.registry.prefix, own);
    for (const b of bad) a.registry.putRaw(b.key, b.value); // one watch response each
    a.registry.putRaw(leaseKey(a.registry.prefix, parseCidr('10.244.250.0/24')!), value('198.18.0.50')); // a good one, last
    await eventually(() => everyCall(a).includes('added 10.244.250.0/24 198.18.0.50'), 3000, 'the good lease');

    expect(everyCall(a).sort()).toEqual([`added ${PEER[0]} ${PEER[1]}`, 'added 10.244.250.0/24 198.18.0.50']);
    expect(rejectedLines(a).map((l) => [l['key'], l['reason'], l['level']])).toEqual(bad.map((b) => [b.key, b.reason, 40]));
    expect(rejectedLines(a).every((l) => typeof l['detail'] === 'string' && l['component'] === 'agent')).toBe(true);
    expect(counted).toEqual(bad.map((b) => b.reason));

    const api = buildApi({ status: a.agent, metrics: new Registry(), logger: memoryLogger().logger });
    const status = (await api.inject({ url: '/v1/status' })).json<AgentStatus>();
    await api.close();
    expect(status.rejectedLeases.total).toBe(bad.length);
    expect(status.rejectedLeases.leases.map((r) => [r.key, r.subnet, r.reason])).toEqual(bad.map((b) => [b.key, b.subnet, b.reason]));
    expect(status.rejectedLeases.leases[0]).toMatchObject({ publicIP: '198.18.0.66', detail: '10.99.0.0/24 is not inside the Network 10.244.0.0/16' });
    expect(status.peers).toEqual([]); // the recording backend lists none; the point is what it was handed
  });

  it('says it once: a re-list delivers the same keys again, silently', async () => {
    const { a, own, counted } = await running();
    const bad = hostile(a.registry.prefix, own);
    a.registry.putRawMany(bad.map((b) => [b.key, b.value])); // one response
    await eventually(() => rejectedLines(a).length === bad.length, 3000, 'every rejection');
    a.watchHandlers()!.onReset(new TwillError('TWILL_ERR_ETCD_WATCH_CANCELLED', 'test: watch cancelled'));
    await eventually(() => a.logLines().filter((l) => l['msg'] === 'leases listed').length === 2, 3000, 're-list');
    await new Promise((r) => setTimeout(r, 100));
    expect(rejectedLines(a)).toHaveLength(bad.length);
    expect(counted).toHaveLength(bad.length);
    expect(everyCall(a)).toEqual([`added ${PEER[0]} ${PEER[1]}`]);
  });

  it('takes a peer back when its value turns unreadable, and lets an overlapping lease in when the older goes', async () => {
    const { a } = await running();
    const peerKey = leaseKey(a.registry.prefix, parseCidr(PEER[0])!);
    const narrowKey = leaseKey(a.registry.prefix, parseCidr('10.244.2.128/25')!);
    a.registry.putRaw(narrowKey, value('198.18.0.79'));
    await eventually(() => rejectedLines(a).length === 1, 3000, 'overlaps-peer');
    a.registry.putRaw(peerKey, 'garbage');
    await eventually(() => everyCall(a).includes('added 10.244.2.128/25 198.18.0.79'), 3000, 'the /25 let in');
    expect(a.backends[0]!.batches.slice(1).flat()).toEqual([`removed ${PEER[0]} ${PEER[1]}`, 'added 10.244.2.128/25 198.18.0.79']);
    expect(rejectedLines(a).map((l) => l['reason'])).toEqual(['overlaps-peer', 'bad-value']);
    expect(a.agent.status().rejectedLeases.leases.map((r) => r.reason)).toEqual(['bad-value']);
  });

  it('keeps the status list bounded, with the total', async () => {
    const { a } = await running();
    a.registry.putRawMany(Array.from({ length: 150 }, (_, i) => [`${a.registry.prefix}/subnets/junk-${i}`, 'x'] as const));
    await eventually(() => a.agent.status().rejectedLeases.total === 150, 3000, '150 rejections');
    expect(a.agent.status().rejectedLeases.leases).toHaveLength(100);
  });

  it('uses one list of reasons in the gate, the status and the metric', () => {
    expect([...REJECT_REASONS]).toEqual([...LEASE_REJECT_REASONS]);
  });

  it('forgets a key that was not a lease once it is deleted, or absent from a re-list', async () => {
    const { a } = await running();
    const badKey = `${a.registry.prefix}/subnets/10.244.202.0_24`;
    const badValue = leaseKey(a.registry.prefix, parseCidr('10.244.200.0/24')!);
    a.registry.putRawMany([[badKey, value('198.18.0.80')], [badValue, 'not json']]);
    await eventually(() => a.agent.status().rejectedLeases.total === 2, 2000, 'both rejected');
    a.registry.deleteMany([badKey]);
    await eventually(() => a.agent.status().rejectedLeases.total === 1, 2000, 'the deleted bad key forgotten');
    expect(a.agent.status().rejectedLeases.leases.map((r) => r.key)).toEqual([badValue]);
    a.registry.deleteMany([badValue]);
    await eventually(() => a.agent.status().rejectedLeases.total === 0, 2000, 'the deleted bad value forgotten');
    expect(a.backends[0]!.batches.flat().some((e) => e.includes('10.244.200.0') || e.includes('10.244.202.0'))).toBe(false);
  });
});
