/**
 * twill's vxlan next to a node configured exactly as flanneld v0.28 configures itself, made here
 * with `ip` and `bridge` only: flannel.1 with a random MAC, `<subnet>.0/32`, and a permanent
 * neighbour, FDB entry and onlink route toward the twill node, read from twill's lease in etcd;
 * its own lease written into that etcd in flannel's format. The other node runs the real agent
 * (dist/). Namespaces twl-t-vxi-*; the etcd runs in the flannel node's namespace.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../support/cli.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { assertBuilt, parseEtcdctlGet } from '../support/lab.js';
import { eventually } from '../support/logger.js';
import { bridge, createNetns, deleteNetnsByPrefix, nsExec, nsIp, veth } from '../support/netns.js';

const PREFIX = 'twl-t-vxi-';
const [F, T, BR] = [`${PREFIX}f`, `${PREFIX}t`, `${PREFIX}br`];
const [F_IP, T_IP] = ['198.18.0.21', '198.18.0.22'];
const ETCD = `http://${F_IP}:2379`;
const F_SUBNET = '10.244.7.0/24';
const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}';
const LEASE_RE = /^\{"PublicIP":"198\.18\.0\.22","PublicIPv6":null,"BackendType":"vxlan","BackendData":\{"VNI":1,"VtepMAC":"([0-9a-f]{2}(?::[0-9a-f]{2}){5})"\}\}$/;

let etcd: EtcdServer | null = null;
let agent: ChildProcess | null = null;
let agentLog = '';
let dir = '';
const etcdctl = (...args: string[]) => nsExec(F, 'etcdctl', ['--endpoints', ETCD, ...args]);

/** The flannel node: the device as flanneld's newVXLANDevice and Configure leave it, and its lease as flanneld writes it. */
async function flannelNode(): Promise<string> {
  await nsIp(F, ['link', 'add', 'flannel.1', 'type', 'vxlan', 'id', '1', 'local', F_IP, 'dev', 'eth0', 'dstport', '8472', 'nolearning']);
  await nsIp(F, ['link', 'set', 'flannel.1', 'mtu', '1450']);
  await nsIp(F, ['addr', 'add', '10.244.7.0/32', 'dev', 'flannel.1']);
  await nsIp(F, ['link', 'set', 'flannel.1', 'up']);
  await nsIp(F, ['addr', 'add', '10.244.7.1/32', 'dev', 'lo']); // stands in for a pod
  const mac = (JSON.parse((await nsIp(F, ['-json', 'link', 'show', 'flannel.1'])).stdout) as [{ address: string }])[0].address;
  const grant = await etcdctl('lease', 'grant', '3600');
  const leaseId = /lease ([0-9a-f]+) granted/.exec(grant.stdout)?.[1];
  expect(leaseId, grant.stdout).toBeDefined();
  const value = `{"PublicIP":"${F_IP}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`;
  const put = await etcdctl('put', '--lease', leaseId!, '/coreos.com/network/subnets/10.244.7.0-24', value);
  expect(put.code, put.stderr).toBe(0);
  return mac;
}

function startAgent(): ChildProcess {
  const args = ['netns', 'exec', T, process.execPath, CLI, 'agent', '--etcd-endpoints', ETCD, '--iface', 'eth0', '--subnet-file', join(dir, 'subnet.env')];
  const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (b: Buffer) => (agentLog += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (agentLog += b.toString()));
  return child;
}

/** flanneld's handling of a peer lease: neighbour, FDB entry, route, in that order. */
async function flannelAddsPeer(subnet: string, publicIP: string, mac: string): Promise<void> {
  const gateway = subnet.split('/')[0]!;
  await nsIp(F, ['neigh', 'replace', gateway, 'lladdr', mac, 'dev', 'flannel.1', 'nud', 'permanent']);
  await nsExec(F, 'bridge', ['fdb', 'replace', mac, 'dev', 'flannel.1', 'dst', publicIP, 'self', 'permanent']);
  await nsIp(F, ['route', 'replace', subnet, 'via', gateway, 'dev', 'flannel.1', 'onlink']);
}

describe.skipIf(process.getuid?.() !== 0)('vxlan interop with a flannel-configured node', () => {
  let fMac = '';
  let twill: { subnet: string; mac: string; pod: string };

  beforeAll(async () => {
    assertBuilt();
    try {
      dir = await mkdtemp(join(tmpdir(), 'twill-vxi-'));
      await createNetns(PREFIX, [BR, F, T]);
      await veth({ ns: F, name: 'eth0' }, { ns: BR, name: 'pf' });
      await veth({ ns: T, name: 'eth0' }, { ns: BR, name: 'pt' });
      await bridge(BR, 'br0', ['pf', 'pt']);
      await nsIp(F, ['addr', 'add', `${F_IP}/24`, 'dev', 'eth0']);
      await nsIp(T, ['addr', 'add', `${T_IP}/24`, 'dev', 'eth0']);
      etcd = await startEtcd({ netns: F, host: F_IP, dataDir: join(dir, 'etcd') });
      expect((await etcdctl('put', '/coreos.com/network/config', CONFIG)).code).toBe(0);
      fMac = await flannelNode();
      agent = startAgent();
      const found = await eventually(async () => {
        const kv = parseEtcdctlGet((await etcdctl('get', '--prefix', '/coreos.com/network/subnets/')).stdout);
        const own = [...kv].find(([, v]) => v.includes(`"${T_IP}"`));
        const mac = own && LEASE_RE.exec(own[1])?.[1];
        const key = own && /(\d+\.\d+\.\d+)\.0-24$/.exec(own[0]);
        return mac && key ? { subnet: `${key[1]}.0/24`, mac, pod: `${key[1]}.1` } : null;
      }, 20_000, "twill's lease in etcd");
      twill = found!;
      // The lease comes first, the device with the backend's start just after it.
      await eventually(async () => (await nsIp(T, ['-o', 'link', 'show'])).stdout.includes('flannel.1'), 10_000, "twill's device");
      await nsIp(T, ['addr', 'add', `${twill.pod}/32`, 'dev', 'lo']);
      await flannelAddsPeer(twill.subnet, T_IP, twill.mac);
    } catch (err) {
      agent?.kill('SIGKILL');
      await etcd?.stop();
      await deleteNetnsByPrefix(PREFIX);
      throw err;
    }
  }, 60_000);

  afterAll(async () => {
    agent?.kill('SIGTERM');
    await etcd?.stop();
    await deleteNetnsByPrefix(PREFIX);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('publishes its lease in flannel\'s format, with the MAC its flannel.1 carries', async () => {
    const link = (JSON.parse((await nsIp(T, ['-d', '-json', 'link', 'show', 'flannel.1'])).stdout) as [{ address: string; mtu: number }])[0];
    expect(link).toMatchObject({ address: twill.mac, mtu: 1450 });
  });

  it('programs the flannel node as a peer from its flannel-written lease', async () => {
    await eventually(async () => (await nsIp(T, ['route', 'show', F_SUBNET])).stdout.includes('via 10.244.7.0 dev flannel.1'), 10_000, 'the route to the flannel node');
    expect((await nsIp(T, ['neigh', 'show', '10.244.7.0', 'dev', 'flannel.1'])).stdout).toContain(`lladdr ${fMac} PERMANENT`);
    expect((await nsExec(T, 'bridge', ['fdb', 'show', 'dev', 'flannel.1'])).stdout).toContain(`${fMac} dst ${F_IP} self permanent`);
  });

  it('carries pod traffic both ways between the flannel node and the twill node', async () => {
    const fromFlannel = await nsExec(F, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', '-I', '10.244.7.1', twill.pod], true);
    expect(fromFlannel.code, fromFlannel.stdout + agentLog.slice(-2000)).toBe(0);
    const fromTwill = await nsExec(T, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', '-I', twill.pod, '10.244.7.1'], true);
    expect(fromTwill.code, fromTwill.stdout).toBe(0);
    // The traffic went through the tunnel: the flannel node's device received it.
    const rx = Number((await nsExec(F, 'cat', ['/sys/class/net/flannel.1/statistics/rx_packets'])).stdout);
    expect(rx).toBeGreaterThanOrEqual(6);
  });

  it('keeps its VtepMAC across a restart that lost the device (a reboot): the flannel node needs no update', async () => {
    const exited = new Promise((r) => agent!.once('exit', r));
    agent!.kill('SIGTERM');
    await exited;
    await nsIp(T, ['link', 'del', 'flannel.1']); // what a reboot does to it
    agent = startAgent();
    await eventually(async () => (await nsIp(T, ['route', 'show', F_SUBNET])).stdout.includes('dev flannel.1'), 15_000, 'the agent back');
    expect((await nsIp(T, ['link', 'show', 'flannel.1'])).stdout).toContain(twill.mac);
    const fromFlannel = await nsExec(F, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', '-I', '10.244.7.1', twill.pod], true);
    expect(fromFlannel.code, fromFlannel.stdout).toBe(0);
  });
});
