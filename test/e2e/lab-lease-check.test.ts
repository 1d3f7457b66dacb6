/**
 * Hostile leases in a running lab (issue 13), as root: three host-gw hosts with real agents and a
 * real etcd, all in twl-tlr-* namespaces. Keys are written with etcdctl from inside host 1; every
 * agent must refuse them (route table, log, /metrics, /v1/status) and pods keep talking.
 * afterAll always runs `lab down`, so nothing is left behind even on failure.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containsNet, formatCidr, formatIp, mask, parseCidr, type Ipv4Net } from '../../src/lib/ipv4.js';
import type { AgentStatus } from '../../src/status/types.js';
import { nsGet } from '../support/http.js';
import { assertBuilt, inNetns, isRoot, pollMs, readLabState, twill, type LabStateFile } from '../support/lab.js';

const NAME = 'tlr';
const DIR = `/tmp/twill-lab/${NAME}`;
const LAB = ['--name', NAME];
const ETCD = 'http://198.18.0.2:2379';
const SUBNETS = '/coreos.com/network/subnets/';
const hostGw = (publicIP: string) => `{"PublicIP":"${publicIP}","PublicIPv6":null,"BackendType":"host-gw"}`;

interface Hostile {
  readonly key: string;
  readonly value: string;
  readonly subnet: Ipv4Net | null;
  /** The reason on a host whose subnet it does not touch (one it overlaps says overlaps-own). */
  readonly reason: string;
}

/** What issue 13 lists, aimed at host 1: outside the Network, half of h1's subnet, a /23 covering it, an unreadable value, a malformed key. */
function hostileKeys(h1: Ipv4Net, otherIp: string): Hostile[] {
  const half = { addr: h1.addr + 128, len: 25 };
  const cover = { addr: (h1.addr & mask(23)) >>> 0, len: 23 };
  const key = (n: Ipv4Net) => `${SUBNETS}${formatIp(n.addr)}-${n.len}`;
  return [
    { key: key(parseCidr('10.99.0.0/24')!), value: hostGw('198.18.0.99'), subnet: parseCidr('10.99.0.0/24'), reason: 'outside-network' },
    { key: key(half), value: hostGw(otherIp), subnet: half, reason: 'overlaps-peer' },
    { key: key(cover), value: hostGw('198.18.0.98'), subnet: cover, reason: 'overlaps-peer' },
    { key: `${SUBNETS}10.244.250.0-24`, value: 'not json', subnet: null, reason: 'bad-value' },
    { key: `${SUBNETS}not-a-subnet`, value: hostGw('198.18.0.97'), subnet: null, reason: 'bad-key' },
  ];
}

const overlap = (a: Ipv4Net, b: Ipv4Net) => containsNet(a, b) || containsNet(b, a);

/** The agent's 'lease rejected' lines, as [key, reason]. */
async function rejectedLines(host: string): Promise<[string, string][]> {
  const text = await readFile(`${DIR}/${host}/agent.log`, 'utf8').catch(() => '');
  const out: [string, string][] = [];
  for (const line of text.split('\n')) {
    try {
      const l = JSON.parse(line) as { msg?: string; key?: string; reason?: string };
      if (l.msg === 'lease rejected') out.push([l.key ?? '', l.reason ?? '']);
    } catch {
      // a line still being written
    }
  }
  return out;
}

describe.skipIf(!isRoot())('hostile leases in a lab (3 hosts, host-gw)', () => {
  let state: LabStateFile;
  let hostile: Hostile[];

  beforeAll(async () => {
    assertBuilt();
    await twill(['lab', 'down', ...LAB]); // leftovers of an interrupted run
    const up = await twill(['lab', 'up', ...LAB, '--hosts', '3', '--backend', 'host-gw', '--pods-per-host', '1']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    process.stderr.write(`lab up (3 hosts, 3 pods) took ${up.ms} ms\n`);
    state = await readLabState(DIR);
    const [h1, h2] = state.hosts;
    hostile = hostileKeys(parseCidr(h1!.subnet!)!, h2!.ip);
    for (const k of hostile) {
      const put = await inNetns(h1!.ns, 'etcdctl', ['--endpoints', ETCD, 'put', k.key, k.value]);
      expect(put.code, put.stderr).toBe(0);
    }
    const allSaid = async () => (await Promise.all(state.hosts.map((h) => rejectedLines(h.id)))).every((l) => l.length >= hostile.length);
    expect(await pollMs(allSaid, 15_000), 'every agent logs every rejection').not.toBeNull();
  }, 90_000);

  afterAll(async () => {
    const down = await twill(['lab', 'down', ...LAB]);
    expect(down.code, down.stderr).toBe(0);
  });

  /** The reason a host gives for a key: a subnet over its own is overlaps-own. */
  const expected = (host: LabStateFile['hosts'][number]) =>
    hostile.map((k): [string, string] => [k.key, k.subnet && k.reason === 'overlaps-peer' && overlap(k.subnet, parseCidr(host.subnet!)!) ? 'overlaps-own' : k.reason]);

  it('logs each rejection once on every host, with its reason', async () => {
    for (const h of state.hosts) expect((await rejectedLines(h.id)).sort(), h.id).toEqual(expected(h).sort());
    expect(expected(state.hosts[0]!).filter(([, r]) => r === 'overlaps-own')).toHaveLength(2); // the /25 and the /23 on h1
  });

  it('programs no route for any of them, and every own pod address stays on the bridge', async () => {
    for (const h of state.hosts) {
      const routes = await inNetns(h.ns, 'ip', ['-4', 'route', 'show']);
      expect(routes.code, routes.stderr).toBe(0);
      for (const k of hostile) if (k.subnet) expect(routes.stdout, `${h.id}: ${formatCidr(k.subnet)}`).not.toMatch(new RegExp(`^${formatCidr(k.subnet).replace(/\./g, '\\.')} `, 'm'));
      const own = parseCidr(h.subnet!)!;
      const pods = state.pods.filter((p) => p.id.startsWith(`${h.id}-`) && p.ip).map((p) => p.ip!);
      expect(pods.length, h.id).toBeGreaterThan(0);
      for (const ip of [...pods, formatIp(own.addr + 130)]) {
        const get = await inNetns(h.ns, 'ip', ['-4', 'route', 'get', ip]);
        expect(get.stdout, `${h.id}: route get ${ip}`).toMatch(/ dev cni0 /);
      }
    }
  });

  it('pods still reach each other', async () => {
    const check = await twill(['lab', 'check', ...LAB]);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toContain('6/6 reachable');
  });

  it('counts them in /metrics and lists them in /v1/status', async () => {
    for (const h of state.hosts) {
      const metrics = await nsGet(h.ns, `http://${h.ip}:8475/metrics`);
      expect(metrics.status, h.id).toBe(200);
      const byReason = new Map<string, number>();
      for (const [, r] of expected(h)) byReason.set(r, (byReason.get(r) ?? 0) + 1);
      for (const reason of ['bad-key', 'bad-value', 'outside-network', 'overlaps-own', 'overlaps-peer']) {
        expect(metrics.body, `${h.id} ${reason}`).toMatch(new RegExp(`^twill_lease_rejected_total\\{reason="${reason}"\\} ${byReason.get(reason) ?? 0}$`, 'm'));
      }
      const status = await nsGet(h.ns, `http://${h.ip}:8475/v1/status`);
      const s = JSON.parse(status.body) as AgentStatus;
      expect(s.rejectedLeases.total, h.id).toBe(hostile.length);
      expect(s.rejectedLeases.leases.map((r) => [r.key, r.reason]).sort(), h.id).toEqual(expected(h).sort());
      expect(s.peers.map((p) => p.subnet).sort(), h.id).toEqual(state.hosts.filter((o) => o.id !== h.id).map((o) => o.subnet).sort());
    }
  });
});
