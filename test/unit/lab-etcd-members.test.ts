import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isTwillError } from '../../src/errors.js';
import { agentArgs } from '../../src/tools/lab/agents.js';
import { clientEndpoints, etcdMemberArgs, etcdMemberFiles, findMember, initialCluster, leadsFromStatusFields, parseEtcdMembers } from '../../src/tools/lab/etcd-members.js';
import { initialState, loadState, planOf, updateEtcdMember } from '../../src/tools/lab/state.js';
import { renderStatus, type LabStatus } from '../../src/tools/lab/status.js';
import { planLab, type LabOptions } from '../../src/tools/lab/topology.js';
import { wiringBatches } from '../../src/tools/lab/wiring.js';

const base: LabOptions = { name: 'x', hosts: 2, podsPerHost: 1, backend: 'udp', topology: 'flat', dir: '/tmp/twill-lab/x' };
const one = planLab(base);
const three = planLab({ ...base, etcdMembers: 3 });

function errorOf(fn: () => unknown): { code: string; message: string; details: unknown } | undefined {
  try {
    fn();
  } catch (e) {
    return isTwillError(e) ? { code: e.code, message: e.message, details: e.details } : { code: 'not a TwillError', message: String(e), details: null };
  }
  return undefined;
}

// A follower's and the leader's `etcdctl endpoint status -w fields` (etcd 3.4), IDs past 2^53.
const fields = (member: string, leader: string) =>
  ['"ClusterID" : 7855965530579937127', `"MemberID" : ${member}`, '"Revision" : 4', '"RaftTerm" : 2', '"Version" : "3.4.23"', `"Leader" : ${leader}`, '"IsLearner" : false', '"Errors" : []', '"Endpoint" : "http://198.18.0.4:2379"', ''].join('\n');

describe('--etcd-members', () => {
  it.each([
    ['1', 1],
    ['3', 3],
    [' 3 ', 3],
  ])('accepts "%s"', (text, n) => expect(parseEtcdMembers(text)).toBe(n));

  it.each(['0', '2', '4', '5', '', 'three', '3.0', '-1'])('refuses "%s" with an option error naming the option', (text) => {
    const err = errorOf(() => parseEtcdMembers(text));
    expect(err?.code).toBe('TWILL_ERR_OPTION_INVALID');
    expect(err?.message).toContain('--etcd-members');
    expect(err?.details).toEqual({ option: '--etcd-members', value: text });
  });
});

describe('lab etcd members', () => {
  it('one member by default, where the lab always had it', () => {
    expect(one.etcd.members).toEqual([{ name: 'etcd1', ip: '198.18.0.2', clientUrl: 'http://198.18.0.2:2379', peerUrl: 'http://127.0.0.1:2380' }]);
    expect(one.etcd).toMatchObject({ ip: '198.18.0.2', endpoint: 'http://198.18.0.2:2379', endpoints: 'http://198.18.0.2:2379' });
    expect(agentArgs(one, one.hosts[0]!, 'cli').slice(2, 4)).toEqual(['--etcd-endpoints', 'http://198.18.0.2:2379']);
  });

  it('three members: own underlay address each, peers on loopback addresses of their own, in the one etcd namespace', () => {
    expect(three.etcd.members.map((m) => [m.name, m.clientUrl, m.peerUrl])).toEqual([
      ['etcd1', 'http://198.18.0.2:2379', 'http://127.0.0.1:2380'],
      ['etcd2', 'http://198.18.0.4:2379', 'http://127.0.0.2:2380'],
      ['etcd3', 'http://198.18.0.5:2379', 'http://127.0.0.3:2380'],
    ]);
    expect(three.etcd).toMatchObject({ ns: 'twl-x-etcd', ip: '198.18.0.2', endpoint: 'http://198.18.0.2:2379' });
    expect(initialCluster(three.etcd.members)).toBe('etcd1=http://127.0.0.1:2380,etcd2=http://127.0.0.2:2380,etcd3=http://127.0.0.3:2380');
    const all = 'http://198.18.0.2:2379,http://198.18.0.4:2379,http://198.18.0.5:2379';
    expect(clientEndpoints(three.etcd.members)).toBe(all);
    expect(three.etcd.endpoints).toBe(all);
    expect(agentArgs(three, three.hosts[1]!, 'cli').slice(2, 4)).toEqual(['--etcd-endpoints', all]);
  });

  it('udp agents get --udp-datapath only when the lab asks for one', () => {
    expect(agentArgs(one, one.hosts[0]!, 'cli')).not.toContain('--udp-datapath');
    const dgram = planLab({ ...base, udpDatapath: 'dgram' });
    expect(agentArgs(dgram, dgram.hosts[0]!, 'cli').slice(-2)).toEqual(['--udp-datapath', 'dgram']);
  });

  it('gives the etcd namespace one address per member on its eth0, and nobody else more', () => {
    const batch = (p: typeof three, ns: string) => wiringBatches(p).nodes.find((b) => b.ns === ns)?.lines;
    expect(batch(three, 'twl-x-etcd')).toEqual([
      'link set lo up',
      'addr add 198.18.0.2/24 dev eth0',
      'addr add 198.18.0.4/24 dev eth0',
      'addr add 198.18.0.5/24 dev eth0',
      'link set eth0 up',
      'route add default via 198.18.0.1 dev eth0',
    ]);
    expect(batch(one, 'twl-x-etcd')?.filter((l) => l.startsWith('addr add'))).toEqual(['addr add 198.18.0.2/24 dev eth0']);
    expect(batch(three, 'twl-x-h1')).toEqual(batch(one, 'twl-x-h1'));
  });

  it("runs each member with its own name, data dir and URLs, and the whole cluster's initial membership", () => {
    const m2 = three.etcd.members[1]!;
    const files = etcdMemberFiles('/tmp/twill-lab/x', 'etcd2');
    expect(files).toEqual({ dir: '/tmp/twill-lab/x/etcd/etcd2', dataDir: '/tmp/twill-lab/x/etcd/etcd2/data', log: '/tmp/twill-lab/x/etcd/etcd2/etcd.log', pidFile: '/tmp/twill-lab/x/etcd/etcd2/etcd.pid' });
    expect(etcdMemberArgs(m2, three.etcd.members, files.dataDir)).toEqual([
      '--name', 'etcd2', '--data-dir', '/tmp/twill-lab/x/etcd/etcd2/data',
      '--listen-client-urls', 'http://198.18.0.4:2379', '--advertise-client-urls', 'http://198.18.0.4:2379',
      '--listen-peer-urls', 'http://127.0.0.2:2380', '--initial-advertise-peer-urls', 'http://127.0.0.2:2380',
      '--initial-cluster', 'etcd1=http://127.0.0.1:2380,etcd2=http://127.0.0.2:2380,etcd3=http://127.0.0.3:2380', '--initial-cluster-state', 'new',
    ]);
  });

  it('names members by name; an unknown one is an option error listing the others', () => {
    expect(findMember(three.etcd.members, 'etcd3').ip).toBe('198.18.0.5');
    const err = errorOf(() => findMember(three.etcd.members, 'etcd4'));
    expect(err?.code).toBe('TWILL_ERR_OPTION_INVALID');
    expect(err?.message).toContain('etcd1, etcd2, etcd3');
  });

  it('tells the leader from `endpoint status -w fields`, comparing 64-bit IDs as text', () => {
    expect(leadsFromStatusFields(fields('13195394291058371180', '13195394291058371180'))).toBe(true);
    // Equal as doubles (both round to 13195394291058372000), different as IDs.
    expect(leadsFromStatusFields(fields('13195394291058371181', '13195394291058371180'))).toBe(false);
    expect(leadsFromStatusFields(fields('2533347876291518694', '0'))).toBe(false); // no leader
    expect(leadsFromStatusFields('{"Endpoint":"x"}')).toBeNull();
    expect(leadsFromStatusFields('')).toBeNull();
  });
});

describe('lab state with etcd members', () => {
  it('records every member, with no pid until it runs; the options keep the member count', () => {
    const state = initialState({ ...base, etcdMembers: 3 }, three);
    expect(state.etcd).toEqual({
      ns: 'twl-x-etcd',
      endpoint: 'http://198.18.0.2:2379',
      members: [
        { name: 'etcd1', endpoint: 'http://198.18.0.2:2379', pid: null },
        { name: 'etcd2', endpoint: 'http://198.18.0.4:2379', pid: null },
        { name: 'etcd3', endpoint: 'http://198.18.0.5:2379', pid: null },
      ],
    });
    expect(planOf(state).etcd.endpoints).toBe(three.etcd.endpoints);
    expect(updateEtcdMember(state, 'etcd2', { pid: 7 }).etcd.members.map((m) => m.pid)).toEqual([null, 7, null]);
  });

  it('reads a state file from before --etcd-members as one member etcd1, and refuses a member count it cannot run', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'twill-lab-state-'));
    try {
      const old = {
        version: 1,
        phase: 'up',
        options: { name: 'x', hosts: 1, podsPerHost: 1, backend: 'host-gw', topology: 'flat', dir },
        etcd: { ns: 'twl-x-etcd', endpoint: 'http://198.18.0.2:2379', pid: 10 },
        hosts: [{ id: 'h1', ns: 'twl-x-h1', ip: '198.18.0.11', pid: 11, subnet: '10.244.3.0/24' }],
        pods: [],
      };
      await writeFile(join(dir, 'state.json'), JSON.stringify(old));
      const loaded = await loadState(dir);
      expect(loaded?.etcd.members).toEqual([{ name: 'etcd1', endpoint: 'http://198.18.0.2:2379', pid: 10 }]);
      expect(planOf(loaded!).etcd.members).toHaveLength(1);
      await writeFile(join(dir, 'state.json'), JSON.stringify({ ...old, options: { ...old.options, etcdMembers: 2 } }));
      await expect(loadState(dir)).rejects.toMatchObject({ code: 'TWILL_ERR_LAB_STATE' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('status lists each member, marks the leader and a stopped one', () => {
    const state = initialState({ ...base, etcdMembers: 3 }, three);
    const status: LabStatus = {
      state,
      underlay: { topology: 'flat', segments: three.segments, router: null },
      etcd: [
        { name: 'etcd1', endpoint: 'http://198.18.0.2:2379', pid: 21, alive: true, leads: false },
        { name: 'etcd2', endpoint: 'http://198.18.0.4:2379', pid: null, alive: false, leads: null },
        { name: 'etcd3', endpoint: 'http://198.18.0.5:2379', pid: 23, alive: true, leads: true },
      ],
      hosts: [],
      agents: [],
      prometheus: null,
    };
    expect(renderStatus(status)).toContain(
      ['etcd twl-x-etcd', '  etcd1 http://198.18.0.2:2379 pid 21 alive', '  etcd2 http://198.18.0.4:2379 stopped', '  etcd3 http://198.18.0.5:2379 pid 23 alive leader', ''].join('\n'),
    );
  });
});
