/**
 * `twill lab --topology routed` end to end, as root: hosts on two L2 segments joined by a router
 * namespace (h1, h3 on A; h2, h4 on B), real agents, a real etcd on A, pods wired by the real
 * CNI plugins. host-gw cannot route across the router, so exactly the cross-segment pairs fail;
 * udp and vxlan can. The udp cases run once the agent's backend table has udp; the vxlan ones
 * always. afterAll always runs `lab down` for every lab name used here, so nothing is left behind
 * even on failure.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../../src/backend/index.js';
import type { AgentStatus } from '../../src/status/types.js';
import { nsGet } from '../support/http.js';
import { assertBuilt, inNetns, isRoot, labNamespaces, pollMs, readLabState, twill, type LabStateFile } from '../support/lab.js';

const udpAvailable = Object.hasOwn(BACKENDS, 'udp');
const NAMES = { routedHostGw: 't3r', routedUdp: 't3u', flatUdp: 't3f', routedVxlan: 't3vr', flatVxlan: 't3vf', directVxlan: 't3vd', directUdp: 't3ud' } as const;
const dirOf = (name: string): string => `/tmp/twill-lab/${name}`;
const UNREACHABLE_MSG = 'peer unreachable on L2';
// One host-gw resync (DEFAULT_RESYNC_MS, 5 s) and a bit: long enough for a repeated log line to show.
const RESYNC_WAIT_MS = 6_000;

type HostRow = LabStateFile['hosts'][number] & { readonly segment: string };

async function labUp(name: string, args: readonly string[]): Promise<void> {
  await twill(['lab', 'down', '--name', name]); // leftovers of an interrupted run
  const up = await twill(['lab', 'up', '--name', name, ...args]);
  expect(up.code, up.stdout + up.stderr).toBe(0);
  process.stderr.write(`lab up ${name} (${args.join(' ')}) took ${up.ms} ms\n`);
}

/** The check matrix as "from>to" → reachable (✓) or not (✗). */
function parseMatrix(text: string): Map<string, boolean> {
  const [header, ...rest] = text.split('\n');
  const cols = (header ?? '').trim().split(/\s+/).slice(1);
  const cells = new Map<string, boolean>();
  for (const row of rest.filter((l) => /[✓✗]/.test(l) && !l.startsWith('FAIL'))) {
    const [from, ...marks] = row.trim().split(/\s+/);
    marks.forEach((mark, i) => {
      if (mark !== '·') cells.set(`${from}>${cols[i]}`, mark === '✓');
    });
  }
  return cells;
}

/** How many `peer unreachable on L2` lines the host's agent logged, by peer PublicIP. */
async function unreachableLog(name: string, host: string): Promise<Map<string, number>> {
  const text = await readFile(`${dirOf(name)}/${host}/agent.log`, 'utf8').catch(() => '');
  const counts = new Map<string, number>();
  for (const entry of text.split('\n').map(jsonLine)) {
    if (entry?.msg === UNREACHABLE_MSG && entry.publicIP) counts.set(entry.publicIP, (counts.get(entry.publicIP) ?? 0) + 1);
  }
  return counts;
}

/** A log line as JSON; null for anything else (a line still being written, a stray stderr line). */
function jsonLine(line: string): { msg?: string; publicIP?: string } | null {
  try {
    return JSON.parse(line) as { msg?: string; publicIP?: string };
  } catch {
    return null;
  }
}

async function expectAllReachable(name: string, pairs: number): Promise<void> {
  const check = await twill(['lab', 'check', '--name', name]);
  expect(check.code, check.stdout + check.stderr).toBe(0);
  expect(check.stdout).toContain(`${pairs}/${pairs} reachable`);
}

describe.skipIf(!isRoot())('twill lab --topology routed', () => {
  beforeAll(() => assertBuilt());

  afterAll(async () => {
    for (const name of Object.values(NAMES)) {
      const down = await twill(['lab', 'down', '--name', name]);
      expect(down.code, down.stderr).toBe(0);
      expect(await labNamespaces(name)).toEqual([]);
    }
  });

  describe('with host-gw (4 hosts)', () => {
    const NAME = NAMES.routedHostGw;
    let hosts: readonly HostRow[];
    const segmentOf = (pod: string): string | undefined => hosts.find((h) => h.id === pod.split('-')[0])?.segment;

    beforeAll(async () => {
      await labUp(NAME, ['--hosts', '4', '--backend', 'host-gw', '--topology', 'routed']);
      hosts = (await readLabState(dirOf(NAME))).hosts as readonly HostRow[];
    });

    afterAll(async () => {
      await twill(['lab', 'down', '--name', NAME]);
    });

    it('brings every agent up on both segments, etcd reached from B through the router', async () => {
      expect(hosts.map((h) => [h.id, h.segment, h.ip])).toEqual([
        ['h1', 'A', '198.18.0.11'],
        ['h2', 'B', '198.19.0.12'],
        ['h3', 'A', '198.18.0.13'],
        ['h4', 'B', '198.19.0.14'],
      ]);
      expect(hosts.every((h) => h.subnet !== null)).toBe(true);
      const status = await twill(['lab', 'status', '--name', NAME]);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toContain(`topology routed`);
      expect(status.stdout).toContain(`router twl-${NAME}-rt`);
      for (const h of hosts) expect(status.stdout).toMatch(new RegExp(`^${h.id}\\s+twl-${NAME}-${h.id}\\s+${h.segment}\\s+${h.ip.replaceAll('.', '\\.')}\\s.*pid \\d+ alive$`, 'm'));
      const health = await inNetns(`twl-${NAME}-h2`, 'etcdctl', ['--endpoints', 'http://198.18.0.2:2379', 'endpoint', 'health']);
      expect(health.code, health.stderr).toBe(0);
    });

    it('pods reach pods on their own segment only: exactly the cross-segment pairs fail', async () => {
      const check = await twill(['lab', 'check', '--name', NAME]);
      expect(check.code, check.stdout).toBe(1);
      const cells = parseMatrix(check.stdout);
      expect(cells.size).toBe(12);
      for (const [pair, ok] of cells) {
        const [from = '', to = ''] = pair.split('>');
        expect(ok, `${from} -> ${to}`).toBe(segmentOf(from) === segmentOf(to));
      }
      const failed = [...check.stdout.matchAll(/^FAIL (\S+) -> (\S+):/gm)].map((m) => `${m[1]}>${m[2]}`).sort();
      expect(failed).toEqual([...cells].filter(([, ok]) => !ok).map(([pair]) => pair).sort());
      expect(check.stdout).toContain('4/12 reachable');
    });

    it('each agent logs "peer unreachable on L2" exactly once per peer on the other segment', async () => {
      const expected = (h: HostRow): Map<string, number> => new Map(hosts.filter((p) => p.segment !== h.segment).map((p) => [p.ip, 1]));
      const allLogged = async (): Promise<boolean> => {
        const logs = await Promise.all(hosts.map((h) => unreachableLog(NAME, h.id)));
        return logs.every((log, i) => [...expected(hosts[i]!).keys()].every((ip) => log.has(ip)));
      };
      expect(await pollMs(allLogged, 15_000), 'not every agent reported its unreachable peers').not.toBeNull();
      await sleep(RESYNC_WAIT_MS);
      for (const h of hosts) expect(await unreachableLog(NAME, h.id), h.id).toEqual(expected(h));
    });
  });

  it.skipIf(!udpAvailable)('with udp, routed (4 hosts): every pod reaches every other, pod MTU from FLANNEL_MTU', async () => {
    const NAME = NAMES.routedUdp;
    try {
      await labUp(NAME, ['--hosts', '4', '--backend', 'udp', '--topology', 'routed']);
      await expectAllReachable(NAME, 12);
      const env = await readFile(`${dirOf(NAME)}/h2/subnet.env`, 'utf8');
      expect(env).toContain('FLANNEL_MTU=1472\n');
      const link = await inNetns(`twl-${NAME}-h2-p1`, 'ip', ['link', 'show', 'eth0']);
      expect(link.stdout).toContain('mtu 1472');
      const config = await inNetns(`twl-${NAME}-h2`, 'etcdctl', ['--endpoints', 'http://198.18.0.2:2379', 'get', '--print-value-only', '/coreos.com/network/config']);
      expect(JSON.parse(config.stdout)).toEqual({ Network: '10.244.0.0/16', SubnetLen: 24, Backend: { Type: 'udp' } });
    } finally {
      await twill(['lab', 'down', '--name', NAME]);
    }
  });

  it.skipIf(!udpAvailable)('with udp, flat (3 hosts): every pod reaches every other', async () => {
    const NAME = NAMES.flatUdp;
    try {
      await labUp(NAME, ['--hosts', '3', '--backend', 'udp']);
      await expectAllReachable(NAME, 6);
    } finally {
      await twill(['lab', 'down', '--name', NAME]);
    }
  });

  it('with vxlan, routed (4 hosts): every pod reaches every other through the kernel tunnel, pod MTU 1450', async () => {
    const NAME = NAMES.routedVxlan;
    try {
      await labUp(NAME, ['--hosts', '4', '--backend', 'vxlan', '--topology', 'routed']);
      await expectAllReachable(NAME, 12);
      expect(await readFile(`${dirOf(NAME)}/h2/subnet.env`, 'utf8')).toContain('FLANNEL_MTU=1450\n');
      const link = await inNetns(`twl-${NAME}-h2`, 'ip', ['-d', 'link', 'show', 'flannel.1']);
      expect(link.stdout).toMatch(/mtu 1450 .*\n[\s\S]*vxlan id 1 local 198\.19\.0\.12 dev eth0 .*dstport 8472 nolearning/);
    } finally {
      await twill(['lab', 'down', '--name', NAME]);
    }
  });

  it('with vxlan, flat (3 hosts): every pod reaches every other', async () => {
    const NAME = NAMES.flatVxlan;
    try {
      await labUp(NAME, ['--hosts', '3', '--backend', 'vxlan']);
      await expectAllReachable(NAME, 6);
    } finally {
      await twill(['lab', 'down', '--name', NAME]);
    }
  });

  it.each([
    ['vxlan', NAMES.directVxlan],
    ['udp', NAMES.directUdp],
  ])('with %s and --direct-routing, routed (4 hosts): the peer on the same segment by a plain route, the others tunnelled, all reachable', async (backend, NAME) => {
    try {
      await labUp(NAME, ['--hosts', '4', '--backend', backend, '--topology', 'routed', '--direct-routing']);
      await expectAllReachable(NAME, 12);
      const hosts = (await readLabState(dirOf(NAME))).hosts as readonly HostRow[];
      const [h1, h3] = [hosts[0]!, hosts[2]!];
      // h1 and h3 share segment A: one route via h3's address; h2 and h4 (segment B) go through the tunnel.
      const direct = await inNetns(h1.ns, 'ip', ['route', 'show', 'proto', '116', 'dev', 'eth0']);
      expect(direct.stdout.trim()).toBe(`${h3.subnet} via ${h3.ip}`);
      const status = JSON.parse((await nsGet(h1.ns, `http://${h1.ip}:8475/v1/status`)).body) as AgentStatus;
      const via = Object.fromEntries(status.peers.map((p) => [p.publicIP, p.via]));
      expect(via).toEqual({ [h3.ip]: 'direct', [hosts[1]!.ip]: backend, [hosts[3]!.ip]: backend });
      // The tunnel device's counters: still for 20 pings to h3's pod (direct), +20 for h2's (tunnelled).
      const { pods } = await readLabState(dirOf(NAME));
      const podOf = (h: HostRow) => pods.find((p) => p.host === h.id)!;
      const tunnel = backend === 'vxlan' ? 'flannel.1' : 'twill0';
      const txPackets = async () => (JSON.parse((await inNetns(h1.ns, 'ip', ['-s', '-j', 'link', 'show', tunnel])).stdout) as { stats64: { tx: { packets: number } } }[])[0]!.stats64.tx.packets;
      const ping = (to: HostRow) => inNetns(podOf(h1).ns, 'ping', ['-c', '20', '-i', '0.01', '-W', '1', '-q', podOf(to).ip!]);
      const before = await txPackets();
      expect((await ping(h3)).code).toBe(0);
      const afterDirect = await txPackets();
      expect((await ping(hosts[1]!)).code).toBe(0);
      const afterTunnel = await txPackets();
      expect(afterDirect - before).toBeLessThan(3); // nothing of the pings (at most a stray packet)
      expect(afterTunnel - afterDirect).toBeGreaterThanOrEqual(20);
    } finally {
      await twill(['lab', 'down', '--name', NAME]);
    }
  });
});
