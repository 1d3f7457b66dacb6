// Issue 17, part 2: `twill lab trace` follows one real ping through a lab, a tcpdump waiting on
// every interface. The underlay hop shows the inner packet inside the outer UDP (udp) or VXLAN
// (vxlan) header, and nothing around it for host-gw; a routed lab adds the router's legs; the
// outside node sees the pod masqueraded; a packet dropped on the way is named where it was lost.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hop, LabTrace } from '../../src/tools/lab/trace/types.js';
import { assertBuilt, CLI, inNetns, isRoot, labNamespaces, pollMs, twill } from '../support/lab.js';

const LABS = {
  'host-gw': { name: 'trg', args: ['--topology', 'flat', '--ip-masq'] },
  udp: { name: 'tru', args: ['--topology', 'routed'] },
  vxlan: { name: 'trv', args: ['--topology', 'flat'] },
} as const;
type Backend = keyof typeof LABS;

async function labTrace(backend: Backend, from: string, to: string): Promise<{ code: number; trace: LabTrace }> {
  const res = await twill(['lab', 'trace', from, to, '--name', LABS[backend].name, '--json']);
  expect(res.stdout.trimStart().startsWith('{'), res.stderr).toBe(true);
  return { code: res.code, trace: JSON.parse(res.stdout) as LabTrace };
}

const hop = (t: LabTrace, id: string): Hop => {
  const h = t.hops.find((x) => x.id === id);
  if (!h) throw new Error(`no hop ${id} in ${t.hops.map((x) => x.id).join(', ')}`);
  return h;
};
const protos = (h: Hop): string[] => h.packet?.layers.map((l) => l.proto) ?? [];

describe.skipIf(!isRoot())('twill lab trace', () => {
  beforeAll(async () => {
    assertBuilt();
    for (const [backend, lab] of Object.entries(LABS)) {
      await twill(['lab', 'down', '--name', lab.name]);
      const up = await twill(['lab', 'up', '--name', lab.name, '--hosts', '2', '--backend', backend, ...lab.args]);
      expect(up.code, up.stderr).toBe(0);
    }
  }, 120_000);

  afterAll(async () => {
    for (const lab of Object.values(LABS)) {
      await twill(['lab', 'down', '--name', lab.name]);
      expect(await labNamespaces(lab.name)).toEqual([]);
    }
  });

  it('host-gw: every hop saw the packet; on the underlay it is the bare packet, no tunnel device on the way', async () => {
    const { code, trace } = await labTrace('host-gw', 'h1-p1', 'h2-p1');
    expect(code).toBe(0);
    expect(trace.complete).toBe(true);
    expect(trace.hops.map((h) => h.role)).toEqual(['pod', 'veth', 'bridge', 'underlay', 'underlay', 'bridge', 'veth', 'pod']);
    const ul = hop(trace, 'h1:eth0');
    expect(protos(ul)).toEqual(['ether', 'ipv4', 'icmp']);
    expect(ul.packet?.overheadBytes).toBe(0);
    expect(ul.packet?.summary).toContain(`> ${trace.to.ip} ICMP echo request`);
    expect(trace.chain?.complete).toBe(true);
  });

  it('udp, routed: the inner packet whole inside UDP to port 8285 (28 bytes more), through twill0 and both router legs', async () => {
    const { code, trace } = await labTrace('udp', 'h1-p1', 'h2-p1');
    expect(code, JSON.stringify(trace.hops.map((h) => [h.id, h.packet?.summary ?? null]))).toBe(0);
    expect(trace.hops.map((h) => h.id)).toEqual(expect.arrayContaining(['h1:twill0', 'rt:eth0', 'rt:eth1', 'h2:twill0']));
    for (const id of ['h1:eth0', 'rt:eth0', 'rt:eth1', 'h2:eth0']) {
      const ul = hop(trace, id);
      expect(protos(ul), id).toEqual(['ether', 'ipv4', 'udp', 'ipv4', 'icmp']);
      expect(ul.packet?.overheadBytes).toBe(28);
      const [outer, inner] = ul.packet!.layers.filter((l) => l.proto === 'ipv4');
      expect(outer).toMatchObject({ src: '198.18.0.11', dst: '198.19.0.12' });
      expect(inner?.dst).toBe(trace.to.ip);
      expect(ul.packet!.layers.find((l) => l.proto === 'udp')).toMatchObject({ dstPort: 8285 });
    }
    expect(protos(hop(trace, 'h1:twill0'))).toEqual(['ipv4', 'icmp']);
  });

  it('vxlan: the inner frame inside VXLAN to port 8472 (50 bytes more), through flannel.1; the text shows both headers', async () => {
    const { code, trace } = await labTrace('vxlan', 'h1-p1', 'h2-p1');
    expect(code).toBe(0);
    const ul = hop(trace, 'h2:eth0');
    expect(protos(ul)).toEqual(['ether', 'ipv4', 'udp', 'vxlan', 'ether', 'ipv4', 'icmp']);
    expect(ul.packet?.overheadBytes).toBe(50);
    expect(ul.packet!.layers.find((l) => l.proto === 'udp')).toMatchObject({ dstPort: 8472 });
    expect(hop(trace, 'h1:flannel.1').packet).not.toBeNull();
    const text = await twill(['lab', 'trace', 'h1-p1', 'h2-p1', '--name', LABS.vxlan.name]);
    expect(text.code, text.stdout + text.stderr).toBe(0);
    expect(text.stdout).toMatch(/198\.18\.0\.11:\d+ > 198\.18\.0\.12:8472 UDP VXLAN vni 1 \| [\d.]+ > [\d.]+ ICMP echo request \(\d+ B, \+50 B of encapsulation\)/);
    expect(text.stdout).toContain('every hop saw the packet');
    expect(text.stdout).toContain("the agent on h1-p1's host says:");
  });

  it('pod → outside with --ip-masq: the outside node sees the host, not the pod', async () => {
    const { code, trace } = await labTrace('host-gw', 'h1-p1', 'out');
    expect(code).toBe(0);
    expect(trace.hops.at(-1)?.id).toBe('out:eth0');
    expect(trace.masqueradedTo).toBe('198.18.0.11');
    const [seenByOut] = hop(trace, 'out:eth0').packet!.layers.filter((l) => l.proto === 'ipv4');
    expect(seenByOut).toMatchObject({ src: '198.18.0.11', dst: '198.18.0.3' });
    expect(protos(hop(trace, 'h1-p1:eth0'))).toEqual(['ether', 'ipv4', 'icmp']);
  });

  it("a packet dropped in h2's FORWARD chain: seen on h2's underlay, lost at its bridge, exit 1", async () => {
    const h2 = 'twl-trg-h2';
    const dst = (await labTrace('host-gw', 'h1-p1', 'h2-p1')).trace.to.ip;
    const drop = ['FORWARD', '-d', `${dst}/32`, '-p', 'icmp', '-j', 'DROP'];
    expect((await inNetns(h2, 'iptables', ['-I', ...drop])).code).toBe(0);
    try {
      const { code, trace } = await labTrace('host-gw', 'h1-p1', 'h2-p1');
      expect(code).toBe(1);
      expect(hop(trace, 'h2:eth0').packet).not.toBeNull();
      expect(trace.lostAt).toBe('h2:cni0');
      const text = await twill(['lab', 'trace', 'h1-p1', 'h2-p1', '--name', LABS['host-gw'].name]);
      expect(text.stdout).toContain('the packet was lost after the last hop that saw it: nothing at h2:cni0');
      expect(text.stdout).toMatch(/h2 cni0 +h2's bridge\n +NOTHING SEEN/);
    } finally {
      await inNetns(h2, 'iptables', ['-D', ...drop]);
    }
  });

  it("udp: a foreign route that shadows the tunnel for h2's subnet: `twill trace` names it, the lab trace loses the packet at the router", async () => {
    const h1 = 'twl-tru-h1';
    const { trace: whole } = await labTrace('udp', 'h1-p1', 'h2-p1');
    const subnet = `${whole.to.ip.split('.').slice(0, 3).join('.')}.0/24`;
    const shadow = [subnet, 'via', '198.18.0.1', 'dev', 'eth0', 'proto', 'static'];
    expect((await inNetns(h1, 'ip', ['route', 'add', ...shadow])).code).toBe(0);
    try {
      const agent = await inNetns(h1, process.execPath, [CLI, 'trace', whole.to.ip, '--addr', '198.18.0.11:8475']);
      expect(agent.code, agent.stdout).toBe(1);
      expect(agent.stdout).toMatch(/leaves by eth0 via 198\.18\.0\.1, not twill0 as the udp tunnel \[wrong-route\]/);
      const { code, trace } = await labTrace('udp', 'h1-p1', 'h2-p1');
      expect(code).toBe(1);
      expect(trace.hops.map((h) => h.id)).not.toContain('h1:twill0'); // the kernel no longer routes into it
      expect(protos(hop(trace, 'h1:eth0'))).toEqual(['ether', 'ipv4', 'icmp']); // bare, towards the router
      expect(trace.lostAt).toBe('rt:eth1'); // the router has no route into the pod network
    } finally {
      await inNetns(h1, 'ip', ['route', 'del', ...shadow]);
    }
  });

  it("udp: the tunnel's route deleted by hand is put back at once (route events), counted in status, and the trace is whole again", async () => {
    const h1 = 'twl-tru-h1';
    expect((await inNetns(h1, 'ip', ['route', 'del', '10.244.0.0/16', 'dev', 'twill0'])).code).toBe(0);
    const back = await pollMs(async () => (await inNetns(h1, 'ip', ['route', 'show', '10.244.0.0/16', 'dev', 'twill0', 'proto', '116'])).stdout.trim() !== '', 8_000);
    expect(back).not.toBeNull();
    expect(back!).toBeLessThan(2_000); // the deletion's event, not the 5-minute safety read
    const s = await inNetns(h1, process.execPath, [CLI, 'status', '--json', '--addr', '198.18.0.11:8475']);
    expect(JSON.parse(s.stdout)).toMatchObject({ backend: { details: { tunnel: { routeRepaired: 1 } } } });
    const { code } = await labTrace('udp', 'h1-p1', 'h2-p1');
    expect(code).toBe(0);
  });

  it('names a source that is no pod', async () => {
    const res = await twill(['lab', 'trace', 'h7-p1', 'h2-p1', '--name', LABS.vxlan.name]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('"h7-p1" is not a pod of lab trv');
  });
});
