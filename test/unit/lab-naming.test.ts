import { describe, expect, it } from 'vitest';
import { isTwillError } from '../../src/errors.js';
import { parseNetnsList, vethIntoNetnsLines } from '../../src/tools/kernel/netns.js';
import { agentArgs } from '../../src/tools/lab/agents.js';
import { etcdMemberArgs } from '../../src/tools/lab/etcd-members.js';
import { isLabNamespace, labPrefix, parseIntOption, teardownRank, validateLabName } from '../../src/tools/lab/naming.js';
import { networkConfigJson, parseBackend, planLab, planNamespaces } from '../../src/tools/lab/topology.js';
import { wiringBatches } from '../../src/tools/lab/wiring.js';

const plan = planLab({ name: 'x', hosts: 3, podsPerHost: 2, backend: 'host-gw', topology: 'flat', dir: '/tmp/twill-lab/x' });

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isTwillError(e) ? e.code : 'not a TwillError';
  }
  return undefined;
}

describe('lab naming', () => {
  it.each(['lab', 'a', 't2e', 'abc123'])('accepts %s', (name) => expect(validateLabName(name)).toBe(name));

  it.each(['', 'toolong', 'Lab', '1ab', 'a-b', 'a_b', 'a b'])('rejects "%s" with an option error', (name) => {
    expect(codeOf(() => validateLabName(name))).toBe('TWILL_ERR_OPTION_INVALID');
  });

  it('recognises only its own role names under its prefix', () => {
    expect(labPrefix('t')).toBe('twl-t-');
    for (const ns of ['twl-t-ul', 'twl-t-ul2', 'twl-t-rt', 'twl-t-etcd', 'twl-t-h1', 'twl-t-h12', 'twl-t-h3-p2']) expect(isLabNamespace('t', ns)).toBe(true);
    // Other tests' namespaces share the prefix but not the role pattern; down must leave them alone.
    for (const ns of ['twl-t-hg-x1', 'twl-t2-h1', 'twl-t-', 'twl-t-h1-x', 'other', 'twl-t-h', 'twl-t-rt1', 'twl-t-rtx', 'twl-t2-rt']) {
      expect(isLabNamespace('t', ns)).toBe(false);
    }
  });

  it('tears down pods before hosts and etcd, and the underlay last', () => {
    const sorted = ['twl-t-ul', 'twl-t-ul2', 'twl-t-h1', 'twl-t-rt', 'twl-t-etcd', 'twl-t-h1-p1'].sort((a, b) => teardownRank('t', a) - teardownRank('t', b));
    expect(sorted[0]).toBe('twl-t-h1-p1');
    expect(sorted.slice(-2).sort()).toEqual(['twl-t-ul', 'twl-t-ul2']);
    expect(teardownRank('t', 'twl-t-rt')).toBe(teardownRank('t', 'twl-t-h1'));
  });

  it('parses bounded integer options', () => {
    expect(parseIntOption('3', '--hosts', 1, 50)).toBe(3);
    for (const bad of ['0', '51', '2.5', 'x', '', '-1']) expect(codeOf(() => parseIntOption(bad, '--hosts', 1, 50))).toBe('TWILL_ERR_OPTION_INVALID');
    expect(codeOf(() => parseBackend('ipip'))).toBe('TWILL_ERR_OPTION_INVALID');
    expect(parseBackend('vxlan')).toBe('vxlan');
    expect(parseBackend('host-gw')).toBe('host-gw');
    expect(parseBackend('udp')).toBe('udp');
  });

  it('reads `ip netns list` with and without ids', () => {
    expect(parseNetnsList('twl-x-h1 (id: 3)\ntwl-x-ul\n\n')).toEqual(['twl-x-h1', 'twl-x-ul']);
  });
});

describe('lab topology plan', () => {
  it('addresses the underlay, etcd and hosts', () => {
    expect(plan.segments).toEqual([
      { id: 'A', ns: 'twl-x-ul', bridge: 'br0', subnet: '198.18.0.0/24', gateway: '198.18.0.1', bridgeCidr: '198.18.0.1/24', prefixLen: 24 },
    ]);
    expect(plan.router).toBeNull();
    expect(plan.hosts.map((h) => h.segment)).toEqual(['A', 'A', 'A']);
    expect(plan.etcd).toMatchObject({ ns: 'twl-x-etcd', ip: '198.18.0.2', endpoint: 'http://198.18.0.2:2379' });
    expect(plan.hosts.map((h) => [h.id, h.ns, h.ip, h.dir])).toEqual([
      ['h1', 'twl-x-h1', '198.18.0.11', '/tmp/twill-lab/x/h1'],
      ['h2', 'twl-x-h2', '198.18.0.12', '/tmp/twill-lab/x/h2'],
      ['h3', 'twl-x-h3', '198.18.0.13', '/tmp/twill-lab/x/h3'],
    ]);
    expect(plan.hosts[1]?.links).toEqual([{ segmentNs: 'twl-x-ul', port: 'h2', iface: 'eth0', address: '198.18.0.12/24', gateway: '198.18.0.1' }]);
    expect(plan.pods.map((p) => p.ns)).toEqual(['twl-x-h1-p1', 'twl-x-h1-p2', 'twl-x-h2-p1', 'twl-x-h2-p2', 'twl-x-h3-p1', 'twl-x-h3-p2']);
  });

  it('names every namespace with the prefix, segments first', () => {
    const all = planNamespaces(plan);
    expect(all[0]).toBe('twl-x-ul');
    expect(all).toHaveLength(1 + 1 + 3 + 1 + 6);
    expect(all.every((ns) => isLabNamespace('x', ns))).toBe(true);
  });

  it('writes the network config for the backend', () => {
    expect(JSON.parse(networkConfigJson(plan))).toEqual({ Network: '10.244.0.0/16', SubnetLen: 24, Backend: { Type: 'host-gw' } });
    expect(JSON.parse(networkConfigJson({ ...plan, backend: 'vxlan', directRouting: true }))).toEqual({ Network: '10.244.0.0/16', SubnetLen: 24, Backend: { Type: 'vxlan', DirectRouting: true } });
  });
});

describe('lab wiring batches', () => {
  const { segments, nodes } = wiringBatches(plan);

  it('only ever addresses lab namespaces', () => {
    expect([...segments, ...nodes].every((b) => isLabNamespace('x', b.ns))).toBe(true);
  });

  it('creates each veth in the segment with its peer straight in the node namespace', () => {
    expect(vethIntoNetnsLines('h1', 'eth0', 'twl-x-h1')[0]).toBe('link add h1 type veth peer name eth0 netns twl-x-h1');
    const ul = segments[0]!;
    expect(ul.lines.slice(0, 4)).toEqual(['link set lo up', 'link add br0 type bridge', 'addr add 198.18.0.1/24 dev br0', 'link set br0 up']);
    for (const port of ['etcd', 'h1', 'h2', 'h3', 'out']) expect(ul.lines).toContain(`link set ${port} master br0`);
    expect(ul.lines.filter((l) => l.includes('type veth')).every((l) => / netns twl-x-(etcd|h\d|out)$/.test(l))).toBe(true);
  });

  it('brings lo up everywhere and gives hosts an address and a default route', () => {
    expect(nodes.every((b) => b.lines[0] === 'link set lo up')).toBe(true);
    expect(nodes.find((b) => b.ns === 'twl-x-h3')?.lines).toEqual([
      'link set lo up',
      'addr add 198.18.0.13/24 dev eth0',
      'link set eth0 up',
      'route add default via 198.18.0.1 dev eth0',
    ]);
  });
});

describe('lab daemon command lines', () => {
  it('etcd listens for clients on the underlay address only, peers on loopback', () => {
    const args = etcdMemberArgs(plan.etcd.members[0]!, plan.etcd.members, '/d/etcd/data').join(' ');
    expect(args).toContain('--listen-client-urls http://198.18.0.2:2379');
    expect(args).toContain('--listen-peer-urls http://127.0.0.1:2380');
    expect(args).toContain('--data-dir /d/etcd/data');
  });

  it('the agent runs with the flags an operator would give it', () => {
    expect(agentArgs(plan, plan.hosts[0]!, '/repo/dist/cli/main.js')).toEqual([
      '/repo/dist/cli/main.js', 'agent', '--etcd-endpoints', 'http://198.18.0.2:2379', '--iface', 'eth0', '--subnet-file', '/tmp/twill-lab/x/h1/subnet.env',
      '--cni-conf-file', '/tmp/twill-lab/x/h1/net.d/10-twill.conflist', '--status-addr', '198.18.0.11:8475',
    ]);
    expect(agentArgs({ ...plan, ipMasq: true }, plan.hosts[0]!, 'cli').at(-1)).toBe('--ip-masq');
  });

  it('puts the outside namespace on segment A with no route to the pods, only a default route', () => {
    expect(plan.outside).toMatchObject({ ns: 'twl-x-out', ip: '198.18.0.3' });
    expect(wiringBatches(plan).nodes.find((b) => b.ns === 'twl-x-out')?.lines).toEqual([
      'link set lo up',
      'addr add 198.18.0.3/24 dev eth0',
      'link set eth0 up',
      'route add default via 198.18.0.1 dev eth0',
    ]);
    expect(isLabNamespace('x', 'twl-x-out')).toBe(true);
  });
});
