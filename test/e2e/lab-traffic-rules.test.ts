/**
 * Traffic rules end to end, as root: a 3-host host-gw lab whose agents run with --ip-masq, and
 * the lab's "outside" namespace (198.18.0.3 on the underlay, no route to the pods) standing in
 * for the internet. Source addresses are measured at the receiver. afterAll runs `lab down`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeNft, renderTwillTable } from '../../src/rules/nft-ruleset.js';
import { assertBuilt, CLI, inNetns, isRoot, labNamespaces, pollMs, readLabState, run, twill, type LabStateFile } from '../support/lab.js';
import { sourceSeenBy } from '../support/udp-source.js';

const NAME = 'tmq';
const DIR = `/tmp/twill-lab/${NAME}`;
const LAB = ['--name', NAME];
const OUTSIDE = { ns: `twl-${NAME}-out`, ip: '198.18.0.3' };
const ns = (role: string): string => `twl-${NAME}-${role}`;

const ping = async (from: string, ip: string): Promise<boolean> => (await inNetns(ns(from), 'ping', ['-c', '1', '-W', '1', ip])).code === 0;
const table = async (host: string): Promise<string | null> => {
  const res = await inNetns(ns(host), 'nft', ['list', 'table', 'ip', 'twill']);
  return res.code === 0 ? res.stdout : null;
};
const lines = (text: string): string[] => text.split('\n').filter((l) => l.trim() !== '');

describe.skipIf(!isRoot())('traffic rules in the lab (3 hosts, host-gw, --ip-masq)', () => {
  let state: LabStateFile;
  let manual: ChildProcess | null = null;
  const host = (i: number) => state.hosts[i - 1]!;
  const pod = (i: number) => ({ ns: ns(`h${i}-p1`), ip: state.pods.find((p) => p.id === `h${i}-p1`)!.ip! });

  beforeAll(async () => {
    assertBuilt();
    await twill(['lab', 'down', ...LAB]);
    const up = await twill(['lab', 'up', ...LAB, '--hosts', '3', '--backend', 'host-gw', '--ip-masq']);
    expect(up.code, up.stderr).toBe(0);
    state = await readLabState(DIR);
  });

  afterAll(async () => {
    manual?.kill('SIGKILL');
    const down = await twill(['lab', 'down', ...LAB]);
    expect(down.code, down.stderr).toBe(0);
    expect(await labNamespaces(NAME)).toEqual([]);
  });

  it("writes FLANNEL_IPMASQ=true and programs flannel's masquerade rules for the host's own subnet", async () => {
    for (const h of state.hosts) {
      expect(await readFile(`${DIR}/${h.id}/subnet.env`, 'utf8')).toContain('FLANNEL_IPMASQ=true\n');
      const listed = await table(h.id);
      expect(listed, `no table ip twill in ${h.ns}`).not.toBeNull();
      expect(normalizeNft(listed!)).toBe(normalizeNft(renderTwillTable({ network: '10.244.0.0/16', subnet: h.subnet! })));
    }
  });

  it("a pod reaches the outside, which sees the host's underlay address as the source", async () => {
    expect(await ping('h1-p1', OUTSIDE.ip)).toBe(true);
    expect(await sourceSeenBy(OUTSIDE, pod(1).ns)).toBe(host(1).ip);
    expect(await sourceSeenBy(OUTSIDE, pod(2).ns)).toBe(host(2).ip);
  });

  it("pod-to-pod traffic across hosts arrives with the sending pod's own address", async () => {
    expect(await sourceSeenBy(pod(2), pod(1).ns)).toBe(pod(1).ip);
    expect(await sourceSeenBy(pod(1), pod(3).ns)).toBe(pod(3).ip);
  });

  it('puts back a table deleted by hand within 10 s, and logs it', async () => {
    const del = await inNetns(ns('h1'), 'nft', ['delete', 'table', 'ip', 'twill']);
    expect(del.code, del.stderr).toBe(0);
    const want = normalizeNft(renderTwillTable({ network: '10.244.0.0/16', subnet: host(1).subnet! }));
    const ms = await pollMs(async () => normalizeNft((await table('h1')) ?? '') === want, 10_000);
    process.stderr.write(`deleted nft table back after ${ms} ms\n`);
    expect(ms, 'table not restored within 10 s').not.toBeNull();
    const log = lines(await readFile(`${DIR}/h1/agent.log`, 'utf8')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(log.filter((l) => l.msg === 'nft table restored')).toHaveLength(1);
    expect(await sourceSeenBy(OUTSIDE, pod(1).ns)).toBe(host(1).ip);
  });

  it("keeps pods talking when the hosts' FORWARD policy is DROP, and not without twill's forward rules", async () => {
    for (const h of state.hosts) expect((await inNetns(h.ns, 'iptables', ['-P', 'FORWARD', 'DROP'])).code).toBe(0);
    expect(await ping('h1-p1', pod(2).ip)).toBe(true);
    expect(await ping('h2-p1', pod(1).ip)).toBe(true);
    expect(await ping('h1-p1', OUTSIDE.ip)).toBe(true);

    // h1's agent again, as the lab runs it, but with --forward-rules=false: it removes its rules.
    expect((await run('ip', ['netns', 'pids', host(1).ns])).stdout.trim()).not.toBe('');
    await stopAgentIn(host(1).ns);
    let out = '';
    const args = ['agent', '--etcd-endpoints', 'http://198.18.0.2:2379', '--iface', 'eth0', '--subnet-file', `${DIR}/h1/subnet.env`, '--ip-masq', '--forward-rules=false'];
    manual = spawn('ip', ['netns', 'exec', host(1).ns, process.execPath, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    manual.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    expect(await pollMs(async () => out.includes('"forward rules removed"'), 15_000), out).not.toBeNull();
    expect((await inNetns(host(1).ns, 'iptables', ['-S', 'FORWARD'])).stdout).not.toContain('twill-forward');
    expect(await ping('h1-p1', pod(2).ip)).toBe(false);
    expect(await ping('h2-p1', pod(1).ip)).toBe(false);
    expect(await ping('h1-p1', OUTSIDE.ip)).toBe(false);
    expect(await ping('h2-p1', pod(3).ip)).toBe(true); // h2 and h3 still have theirs

    const exited = new Promise((r) => manual!.once('exit', r));
    manual.kill('SIGTERM');
    await exited;
    manual = null;
    const restart = await twill(['lab', 'restart-agent', ...LAB, '--host', '1']);
    expect(restart.code, restart.stderr).toBe(0);
    expect(await pollMs(() => ping('h1-p1', pod(2).ip), 10_000)).not.toBeNull();
  });

  it('--cleanup leaves the host with no twill state, and everything else as it was', async () => {
    const h = host(3);
    await stopAgentIn(h.ns);
    // Someone else's route, table and FORWARD rule, and a TUN device a crashed udp agent left.
    for (const [cmd, args] of [
      ['ip', ['route', 'add', '198.19.250.0/24', 'via', '198.18.0.1']],
      ['nft', ['add', 'table', 'ip', 'someone']],
      ['nft', ['add', 'chain', 'ip', 'someone', 'c', '{ type filter hook forward priority 10; policy accept; }']],
      ['iptables', ['-A', 'FORWARD', '-s', '198.19.251.0/24', '-j', 'DROP']],
      ['ip', ['tuntap', 'add', 'dev', 'twill0', 'mode', 'tun']],
    ] as const) {
      const res = await inNetns(h.ns, cmd, args);
      expect(res.code, `${cmd} ${args.join(' ')}: ${res.stderr}`).toBe(0);
    }
    const before = await snapshot(h.ns);
    expect(before.routes.some((r) => r.includes('proto 116'))).toBe(true);
    expect(before.tables).toContain('table ip twill');
    expect(before.forward.some((r) => r.includes('twill-forward'))).toBe(true);
    expect(before.links.some((l) => l.startsWith('twill0'))).toBe(true);

    const cleanup = await run('ip', ['netns', 'exec', h.ns, process.execPath, CLI, 'agent', '--cleanup', '--subnet-file', `${DIR}/h3/subnet.env`]);
    expect(cleanup.code, cleanup.stderr).toBe(0);
    expect(cleanup.stdout).toContain('"cleanup done"');

    const after = await snapshot(h.ns);
    expect(after.routes).toEqual(before.routes.filter((r) => !r.includes('proto 116')));
    expect(after.tables).toEqual(before.tables.filter((t) => t !== 'table ip twill'));
    expect(after.forward).toEqual(before.forward.filter((r) => !r.includes('twill-forward')));
    expect(after.links).toEqual(before.links.filter((l) => !l.startsWith('twill0')));
    expect(after.nat).toEqual(before.nat);
    await expect(access(`${DIR}/h3/subnet.env`)).rejects.toThrow();
    expect(after.routes).toContain('198.19.250.0/24 via 198.18.0.1 dev eth0');
    expect(after.forward).toContain('-A FORWARD -s 198.19.251.0/24 -j DROP');
  });
});

/** Stops the agent in a host namespace (whatever runs there) and waits until it is gone. */
async function stopAgentIn(netns: string): Promise<void> {
  const pids = (await run('ip', ['netns', 'pids', netns])).stdout.split('\n').filter((l) => l.trim() !== '');
  for (const pid of pids) process.kill(Number(pid), 'SIGTERM');
  expect(await pollMs(async () => (await run('ip', ['netns', 'pids', netns])).stdout.trim() === '', 10_000)).not.toBeNull();
}

async function snapshot(netns: string) {
  const get = async (cmd: string, args: readonly string[]): Promise<string[]> => {
    const res = await inNetns(netns, cmd, args);
    expect(res.code, res.stderr).toBe(0);
    return lines(res.stdout).map((l) => l.trim());
  };
  return {
    routes: await get('ip', ['-4', 'route', 'show', 'table', 'all']),
    tables: await get('nft', ['list', 'tables']),
    forward: await get('iptables', ['-S', 'FORWARD']),
    nat: await get('iptables', ['-t', 'nat', '-S']),
    links: (await get('ip', ['-o', 'link', 'show'])).map((l) => l.split(': ')[1] ?? l),
  };
}
