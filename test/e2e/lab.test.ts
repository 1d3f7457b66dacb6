/**
 * `twill lab` end to end, as root: three hosts with host-gw, each running the real agent against
 * a real etcd, pods wired by the real CNI plugins, all in twl-t2e-* namespaces. Needs a build
 * (dist/) first. afterAll always runs `lab down`, so nothing is left behind even on failure.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, inNetns, isRoot, labNamespaces, parseEtcdctlGet, pollMs, readLabState, twill, type LabStateFile } from '../support/lab.js';

const NAME = 't2e';
const DIR = `/tmp/twill-lab/${NAME}`;
const LAB = ['--name', NAME];
const ETCD = 'http://198.18.0.2:2379';
const KEY_RE = /^\/coreos\.com\/network\/subnets\/10\.244\.(\d+)\.0-24$/;

describe.skipIf(!isRoot())('twill lab (3 hosts, host-gw)', () => {
  let state: LabStateFile;

  beforeAll(async () => {
    assertBuilt();
    await twill(['lab', 'down', ...LAB]); // leftovers of an interrupted run
    const up = await twill(['lab', 'up', ...LAB, '--hosts', '3', '--backend', 'host-gw', '--pods-per-host', '2']);
    expect(up.code, up.stderr).toBe(0);
    process.stderr.write(`lab up (3 hosts, 6 pods) took ${up.ms} ms\n`);
    state = await readLabState(DIR);
  });

  afterAll(async () => {
    const down = await twill(['lab', 'down', ...LAB]);
    expect(down.code, down.stderr).toBe(0);
  });

  it('every pod reaches every other pod', async () => {
    const check = await twill(['lab', 'check', ...LAB]);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toContain('30/30 reachable');
    expect(check.stdout).not.toContain('✗');
  });

  it("wires the pods from the conflist each host's agent wrote (bridge + host-local over its subnet, portmap)", async () => {
    for (const host of state.hosts) {
      const conf = JSON.parse(await readFile(`${DIR}/${host.id}/net.d/10-twill.conflist`, 'utf8')) as { name: string; plugins: { type: string; mtu?: number; ipam?: { ranges: { subnet: string }[][] } }[] };
      expect(conf.plugins.map((p) => p.type)).toEqual(['bridge', 'portmap']);
      expect(conf.plugins[0]!.ipam!.ranges[0]![0]!.subnet).toBe(host.subnet);
      for (const pod of state.pods.filter((p) => p.host === host.id)) {
        // host-local keeps its allocations under the conflist's network name; the pod's MTU is the conflist's.
        expect(await readFile(`${DIR}/${host.id}/cni/${conf.name}/${pod.ip}`, 'utf8')).toContain(pod.ns);
        const link = JSON.parse((await inNetns(pod.ns, 'ip', ['-j', 'link', 'show', 'eth0'])).stdout) as { mtu: number }[];
        expect(link[0]!.mtu).toBe(conf.plugins[0]!.mtu);
      }
    }
  });

  it('publishes contract-format leases in etcd, matching each host subnet.env', async () => {
    const get = await inNetns('twl-t2e-h1', 'etcdctl', ['--endpoints', ETCD, 'get', '--prefix', '/coreos.com/network/']);
    expect(get.code, get.stderr).toBe(0);
    const kv = parseEtcdctlGet(get.stdout);
    expect(JSON.parse(kv.get('/coreos.com/network/config') ?? 'null')).toEqual({ Network: '10.244.0.0/16', SubnetLen: 24, Backend: { Type: 'host-gw' } });
    const leases = [...kv].filter(([k]) => k.startsWith('/coreos.com/network/subnets/'));
    expect(leases).toHaveLength(3);
    for (const host of state.hosts) {
      const lease = leases.find(([, v]) => v.includes(`"${host.ip}"`));
      expect(lease?.[0]).toMatch(KEY_RE);
      expect(lease?.[1]).toBe(`{"PublicIP":"${host.ip}","PublicIPv6":null,"BackendType":"host-gw"}`);
      const third = KEY_RE.exec(lease?.[0] ?? '')?.[1];
      expect(await readFile(`${DIR}/${host.id}/subnet.env`, 'utf8')).toContain(`FLANNEL_SUBNET=10.244.${third}.1/24\n`);
      expect(host.subnet).toBe(`10.244.${third}.0/24`);
    }
  });

  it('reports unreachable pairs in the matrix and exits non-zero', async () => {
    const subnet = state.hosts[1]!.subnet!;
    // A blackhole in one pod cuts its requests to host 2's pods (replies may still come back
    // masqueraded, so only the requests are asserted).
    const add = await inNetns('twl-t2e-h1-p1', 'ip', ['route', 'add', 'blackhole', subnet]);
    expect(add.code, add.stderr).toBe(0);
    try {
      const check = await twill(['lab', 'check', ...LAB]);
      expect(check.code).toBe(1);
      expect(check.stdout).toContain('FAIL h1-p1 -> h2-p1');
      expect(check.stdout).toContain('FAIL h1-p1 -> h2-p2');
      expect(check.stdout).toMatch(/^h1-p1\s+·\s+✓\s+✗\s+✗\s+✓\s+✓$/m);
    } finally {
      await inNetns('twl-t2e-h1-p1', 'ip', ['route', 'del', 'blackhole', subnet]);
    }
  });

  it('puts back a peer route deleted by hand within 10 s', async () => {
    const peer = state.hosts[1]!;
    const del = await inNetns('twl-t2e-h1', 'ip', ['route', 'del', peer.subnet!]);
    expect(del.code, del.stderr).toBe(0);
    const routeBack = async (): Promise<boolean> => {
      const show = await inNetns('twl-t2e-h1', 'ip', ['route', 'show', peer.subnet!]);
      return show.stdout.includes(`via ${peer.ip} dev eth0`);
    };
    // The agent's host-gw resync period bounds this (DEFAULT_RESYNC_MS in src/backend/host-gw).
    const ms = await pollMs(routeBack, 10_000);
    process.stderr.write(`deleted route back after ${ms} ms\n`);
    expect(ms, 'route not restored within 10 s').not.toBeNull();
  });

  it('keeps a host subnet across an agent restart', async () => {
    const before = state.hosts[1]!;
    const restart = await twill(['lab', 'restart-agent', ...LAB, '--host', '2']);
    expect(restart.code, restart.stderr).toBe(0);
    const after = (await readLabState(DIR)).hosts[1]!;
    expect(after.pid).not.toBe(before.pid);
    expect(after.subnet).toBe(before.subnet);
    const get = await inNetns('twl-t2e-h1', 'etcdctl', ['--endpoints', ETCD, 'get', '--prefix', '/coreos.com/network/subnets/']);
    const leases = [...parseEtcdctlGet(get.stdout)];
    expect(leases).toHaveLength(3);
    expect(leases.filter(([, v]) => v.includes(`"${before.ip}"`)).map(([k]) => k)).toEqual([
      `/coreos.com/network/subnets/${before.subnet!.replace('/', '-')}`,
    ]);
    const check = await twill(['lab', 'check', ...LAB]);
    expect(check.code, check.stdout).toBe(0);
  });

  it('shows every agent alive in status', async () => {
    const status = await twill(['lab', 'status', ...LAB]);
    expect(status.code, status.stderr).toBe(0);
    for (const h of ['h1', 'h2', 'h3']) expect(status.stdout).toMatch(new RegExp(`^${h}\\s+twl-t2e-${h}\\s+.*pid \\d+ alive$`, 'm'));
    expect(status.stdout).toContain(DIR);
  });

  it('down removes every namespace and the lab dir, and can run again', async () => {
    const down = await twill(['lab', 'down', ...LAB]);
    expect(down.code, down.stderr).toBe(0);
    expect(await labNamespaces(NAME)).toEqual([]);
    await expect(readFile(`${DIR}/state.json`)).rejects.toThrow();
    const again = await twill(['lab', 'down', ...LAB]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('0 namespace(s) deleted');
  });
});
