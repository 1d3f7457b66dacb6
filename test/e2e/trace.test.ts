// Issue 17, part 1: `twill trace` on a lab node, against the real kernel and agent. A whole
// path for host-gw, udp and vxlan; broken cases made for real and named: a foreign route that
// shadows twill's, ip_forward off, FORWARD DROP without twill's rules, a peer whose lease is
// gone. The vxlan lab runs with --ip-masq: what the masquerade rules do, pod → outside and pod → pod.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentArgs, stopAgent } from '../../src/tools/lab/agents.js';
import { daemonEnv } from '../../src/tools/lab/etcd.js';
import { loadState, planOf } from '../../src/tools/lab/state.js';
import { hostFiles, LAB_NETWORK } from '../../src/tools/lab/topology.js';
import { startDaemon, stopProcess } from '../../src/tools/kernel/process.js';
import { assertBuilt, CLI, inNetns, isRoot, labNamespaces, pollMs, readLabState, twill, type LabStateFile } from '../support/lab.js';

const LABS = { 'host-gw': 't17h', udp: 't17u', vxlan: 't17v' } as const;
/** The lab's "outside" namespace: no route to the pods, so it hears back only from masqueraded packets. */
const OUTSIDE = '198.18.0.3';
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
      const masq = backend === 'vxlan' ? ['--ip-masq'] : [];
      const up = await twill(['lab', 'up', '--name', name, '--hosts', backend === 'host-gw' ? '3' : '2', '--backend', backend, ...masq]);
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
    expect(res.stdout).toContain('masquerade  no twill masquerade rules (--ip-masq off), so the CNI bridge plugin masquerades it: leaving');
  });

  it('--ip-masq: pod → outside is masqueraded, by the rule as the kernel lists it; pod → pod is not', async () => {
    const st = states.vxlan!;
    const [h1, h2] = [podIp(st, 'h1'), podIp(st, 'h2')];
    const subnet = st.hosts.find((h) => h.id === 'h1')!.subnet!;
    const out = await traceOn(st, 'h1', OUTSIDE, false, h1);
    expect(out.code, out.stdout + out.stderr).toBe(0);
    expect(out.stdout).toContain(`masquerade  masqueraded to the node's address on eth0 by rule \`ip saddr ${LAB_NETWORK} ip daddr != 224.0.0.0/4 masquerade fully-random\``);
    const pod = await traceOn(st, 'h1', h2, false, h1);
    expect(pod.code, pod.stdout + pod.stderr).toBe(0);
    expect(pod.stdout).toContain(`masquerade  not masqueraded: rule \`ip saddr ${subnet} ip daddr ${LAB_NETWORK} return\` returns it, so it keeps its source ${h1}`);
  });

  it('--json: the same chain for machines', async () => {
    const st = states['host-gw']!;
    const res = await traceOn(st, 'h1', podIp(st, 'h2'), true);
    const t = JSON.parse(res.stdout) as { dst: string; complete: boolean; steps: { step: string }[]; problems: unknown[] };
    expect(t).toMatchObject({ dst: podIp(st, 'h2'), complete: true, problems: [] });
    expect(t.steps.map((s) => s.step)).toEqual(['destination', 'mtu', 'route', 'carriage', 'neighbour', 'forwarding', 'masquerade']);
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

  it("FORWARD policy DROP without twill's rules: exit 1, named; whole again with the agent's rules back", async () => {
    const st = states['host-gw']!;
    const lab = (await loadState(dirOf(LABS['host-gw'])))!;
    const h1 = planOf(lab).hosts.find((h) => h.id === 'h1')!;
    // Deleted by hand, the agent puts its rules back at once (it watches the ruleset): h1's agent
    // runs again as the lab runs it, but with --forward-rules=false, so it removes them for good.
    await stopAgent(h1);
    const files = hostFiles(h1);
    await startDaemon({ cmd: process.execPath, args: [...agentArgs(planOf(lab), h1, CLI), '--forward-rules=false'], netns: h1.ns, logFile: files.log, pidFile: files.pidFile, env: daemonEnv() });
    try {
      expect((await inNetns(h1.ns, 'iptables', ['-P', 'FORWARD', 'DROP'])).code).toBe(0);
      let res = { code: -1, stdout: '', stderr: '' };
      const caught = await pollMs(async () => {
        res = await traceOn(st, 'h1', podIp(st, 'h2'));
        return res.stdout.includes('[forward-drop]') && !res.stdout.includes('[agent-not-ready]');
      }, 20_000, 200);
      expect(caught, res.stdout + res.stderr).not.toBeNull();
      expect((await inNetns(h1.ns, 'iptables', ['-S', 'FORWARD'])).stdout).not.toContain('twill-forward');
      expect(res.code).toBe(1);
      expect(res.stdout).toContain('forwarding  ip_forward on; FORWARD policy DROP\n');
      expect(res.stdout).toContain("the FORWARD policy is DROP and twill's accept rules for the Network are not there [forward-drop]");
    } finally {
      await inNetns(h1.ns, 'iptables', ['-P', 'FORWARD', 'ACCEPT']);
      const restart = await twill(['lab', 'restart-agent', '--name', LABS['host-gw'], '--host', '1']);
      expect(restart.code, restart.stderr).toBe(0);
    }
    expect(await pollMs(async () => (await traceOn(st, 'h1', podIp(st, 'h2'))).code === 0, 20_000, 200)).not.toBeNull();
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
