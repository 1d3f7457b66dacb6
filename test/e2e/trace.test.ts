// Issue 17, part 1: `twill trace` on a lab node, against the real kernel and agent. A whole
// path for host-gw, udp and vxlan; broken cases made for real and named: a foreign route that
// shadows twill's, ip_forward off, a peer whose lease is gone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadState } from '../../src/tools/lab/state.js';
import { stopProcess } from '../../src/tools/kernel/process.js';
import { assertBuilt, CLI, inNetns, isRoot, labNamespaces, readLabState, twill, type LabStateFile } from '../support/lab.js';

const LABS = { 'host-gw': 't17h', udp: 't17u', vxlan: 't17v' } as const;
const dirOf = (name: string): string => `/tmp/twill-lab/${name}`;

/** `twill trace` run on a host, asking that host's agent. */
function traceOn(state: LabStateFile, hostId: string, dst: string, json = false, from?: string) {
  const h = state.hosts.find((x) => x.id === hostId)!;
  return inNetns(h.ns, process.execPath, [CLI, 'trace', dst, '--addr', `${h.ip}:8475`, ...(json ? ['--json'] : []), ...(from ? ['--from', from] : [])]);
}
const podIp = (state: LabStateFile, hostId: string) => state.pods.find((p) => p.host === hostId)!.ip!;

describe.skipIf(!isRoot())('twill trace in the lab', () => {
  const states: Partial<Record<keyof typeof LABS, LabStateFile>> = {};

  beforeAll(async () => {
    assertBuilt();
    for (const [backend, name] of Object.entries(LABS)) {
      await twill(['lab', 'down', '--name', name]);
      const up = await twill(['lab', 'up', '--name', name, '--hosts', backend === 'host-gw' ? '3' : '2', '--backend', backend]);
      expect(up.code, up.stderr).toBe(0);
      states[backend as keyof typeof LABS] = await readLabState(dirOf(name));
    }
  }, 90_000);

  afterAll(async () => {
    for (const name of Object.values(LABS)) {
      await twill(['lab', 'down', '--name', name]);
      expect(await labNamespaces(name)).toEqual([]);
    }
  });

  it.each([
    ['host-gw', 'routed: no encapsulation, next hop 198.18.0.12 on eth0'],
    ['udp', 'udp tunnel: the packet whole inside UDP 198.18.0.11:8285 → 198.18.0.12:8285'],
    ['vxlan', 'vxlan: the inner frame inside UDP 198.18.0.11 → 198.18.0.12:8472'],
  ] as const)('%s: a whole path from h1 to h2\'s pod, exit 0', async (backend, carriage) => {
    const st = states[backend]!;
    const res = await traceOn(st, 'h1', podIp(st, 'h2'));
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toContain(carriage);
    expect(res.stdout).toContain('the path is complete');
    if (backend === 'vxlan') expect(res.stdout).toMatch(/the FDB sends [0-9a-f:]{17} to 198\.18\.0\.12/);
  });

  it("--from one of h1's pods: the route as its packets take it, in from the bridge", async () => {
    const st = states['host-gw']!;
    const res = await traceOn(st, 'h1', podIp(st, 'h2'), false, podIp(st, 'h1'));
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toContain(`trace to ${podIp(st, 'h2')} from ${podIp(st, 'h1')}:`);
    expect(res.stdout).toContain("the kernel sends it out of eth0 via 198.18.0.12, by");
  });

  it('--json: the same chain for machines', async () => {
    const st = states['host-gw']!;
    const res = await traceOn(st, 'h1', podIp(st, 'h2'), true);
    const t = JSON.parse(res.stdout) as { dst: string; complete: boolean; steps: { step: string }[]; problems: unknown[] };
    expect(t).toMatchObject({ dst: podIp(st, 'h2'), complete: true, problems: [] });
    expect(t.steps.map((s) => s.step)).toEqual(['destination', 'mtu', 'route', 'carriage', 'neighbour', 'forwarding']);
  });

  it('a foreign route that shadows twill\'s: exit 1, named, with its fix; whole again once it is gone', async () => {
    const st = states['host-gw']!;
    const h1 = st.hosts.find((h) => h.id === 'h1')!;
    const shadow = `${podIp(st, 'h2')}/32`;
    await inNetns(h1.ns, 'ip', ['route', 'add', shadow, 'via', '198.18.0.1']);
    const broken = await traceOn(st, 'h1', podIp(st, 'h2'));
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain('[wrong-route]');
    expect(broken.stdout).toContain(`by ${shadow}, not twill's`);
    await inNetns(h1.ns, 'ip', ['route', 'del', shadow]);
    expect((await traceOn(st, 'h1', podIp(st, 'h2'))).code).toBe(0);
  });

  it('ip_forward off: exit 1, named', async () => {
    const st = states['host-gw']!;
    const h1 = st.hosts.find((h) => h.id === 'h1')!;
    await inNetns(h1.ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=0']);
    try {
      const res = await traceOn(st, 'h1', podIp(st, 'h2'));
      expect(res.code).toBe(1);
      expect(res.stdout).toContain('[ip-forward-off]');
      expect(res.stdout).toContain('fix: sysctl -w net.ipv4.ip_forward=1');
    } finally {
      await inNetns(h1.ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    }
  });

  it("a peer whose lease is gone: exit 1, no lease owns its pods' addresses", async () => {
    const st = states['host-gw']!;
    const h3 = st.hosts.find((h) => h.id === 'h3')!;
    await stopProcess((await loadState(dirOf(LABS['host-gw'])))!.hosts.find((h) => h.id === 'h3')!.pid!);
    const key = `/coreos.com/network/subnets/${h3.subnet!.replace('/', '-')}`;
    expect((await inNetns(`twl-${LABS['host-gw']}-etcd`, 'etcdctl', ['--endpoints', 'http://198.18.0.2:2379', 'del', key])).stdout.trim()).toBe('1');
    let res = await traceOn(st, 'h1', podIp(st, 'h3'));
    for (let i = 0; i < 50 && !res.stdout.includes('[no-lease]'); i++) {
      await new Promise((r) => setTimeout(r, 200));
      res = await traceOn(st, 'h1', podIp(st, 'h3'));
    }
    expect(res.code).toBe(1);
    expect(res.stdout).toContain('[no-lease]');
  });

  it('a bad destination is a clear error (exit 2), not a trace', async () => {
    const res = await traceOn(states['host-gw']!, 'h1', '10.244.1');
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('"10.244.1" is not an IPv4 address');
  });
});
