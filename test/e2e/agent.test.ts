import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../support/cli.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { eventually } from '../support/logger.js';
import { createNetns, deleteNetnsByPrefix, nsExec, nsIp, nsRoutes, veth } from '../support/netns.js';

// One node (agent + etcd on its loopback) and one peer, joined by a veth: the agent's
// reactions to config trouble, etcd outages and SIGTERM, seen from the kernel and its logs.
const PREFIX = 'twl-t-ag-';
const NODE = `${PREFIX}node`;
const PEER = `${PREFIX}peer`;
const root = process.getuid?.() === 0;

let etcd: EtcdServer | null = null;
let agent: ChildProcess | null = null;
let logs = '';
let dir = '';

const logLines = () =>
  logs
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const etcdctl = (...args: string[]) => nsExec(NODE, 'etcdctl', ['--endpoints', 'http://127.0.0.1:2379', ...args]);
const routeTo = async (dst: string) => (await nsRoutes(NODE)).find((r) => r.dst === dst);

beforeAll(async () => {
  if (!root) return;
  dir = await mkdtemp(join(tmpdir(), 'twill-agent-e2e-'));
  await createNetns(PREFIX, [NODE, PEER]);
  await veth({ ns: NODE, name: 'eth0' }, { ns: PEER, name: 'eth0' });
  await nsIp(NODE, ['addr', 'add', '198.18.3.1/24', 'dev', 'eth0']);
  await nsIp(PEER, ['addr', 'add', '198.18.3.2/24', 'dev', 'eth0']);
  await nsIp(NODE, ['route', 'add', 'default', 'via', '198.18.3.2']);
  // A twill route left by an earlier run, for a peer that is gone.
  await nsIp(NODE, ['route', 'add', '10.244.99.0/24', 'via', '198.18.3.2', 'proto', '116']);
  etcd = await startEtcd({ netns: NODE, dataDir: join(dir, 'etcd') });
});

afterAll(async () => {
  agent?.kill('SIGKILL');
  await etcd?.stop();
  await deleteNetnsByPrefix(PREFIX);
  if (dir) await rm(dir, { recursive: true, force: true });
});

function startAgent(): ChildProcess {
  const args = ['netns', 'exec', NODE, process.execPath, CLI, 'agent', '--etcd-endpoints', 'http://127.0.0.1:2379', '--subnet-file', join(dir, 'subnet.env'), '--subnet-lease-ttl', '30s'];
  const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (b: Buffer) => (logs += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (logs += b.toString()));
  return child;
}

describe.skipIf(!root)('twill agent in a namespace', () => {
  it('waits for a missing config with one clear line, and leaves existing routes alone', async () => {
    agent = startAgent();
    await eventually(() => logLines().some((l) => l.code === 'TWILL_ERR_CONFIG_MISSING'), 15_000, 'missing-config line');
    await new Promise((r) => setTimeout(r, 3000)); // several retries later...
    expect(logLines().filter((l) => l.code === 'TWILL_ERR_CONFIG_MISSING')).toHaveLength(1);
    expect(logLines().find((l) => l.code === 'TWILL_ERR_CONFIG_MISSING')?.msg).toMatch(/no network config at \/coreos.com\/network\/config/);
    expect(await routeTo('10.244.99.0/24')).toBeTruthy();
    expect((await nsExec(NODE, 'sysctl', ['-n', 'net.ipv4.ip_forward'])).stdout.trim()).toBe('1');
  });

  it('names the field of an invalid config, keeps retrying, and still leaves routes alone', async () => {
    await etcdctl('put', '/coreos.com/network/config', '{"Network":"10.244.0.0/16","SubnetLen":40,"Backend":{"Type":"host-gw"}}');
    await eventually(() => logLines().some((l) => l.code === 'TWILL_ERR_CONFIG_INVALID'), 15_000, 'invalid-config line');
    expect(logLines().find((l) => l.code === 'TWILL_ERR_CONFIG_INVALID')?.msg).toMatch(/SubnetLen 40 is too long/);
    expect(agent?.exitCode).toBeNull();
    expect(await routeTo('10.244.99.0/24')).toBeTruthy();
  });

  it('once the config is good: leases, writes subnet.env, routes peers, drops its stale route', async () => {
    await etcdctl('put', '/coreos.com/network/subnets/10.244.50.0-24', '{"PublicIP":"198.18.3.2","PublicIPv6":null,"BackendType":"host-gw"}');
    await etcdctl('put', '/coreos.com/network/config', '{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}');
    const env = await eventually(() => readFile(join(dir, 'subnet.env'), 'utf8'), 20_000, 'subnet.env');
    expect(env).toMatch(/^FLANNEL_NETWORK=10\.244\.0\.0\/16\nFLANNEL_SUBNET=10\.244\.\d+\.1\/24\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n$/);
    await eventually(async () => (await routeTo('10.244.50.0/24'))?.gateway === '198.18.3.2', 10_000, 'peer route');
    expect(await routeTo('10.244.50.0/24')).toMatchObject({ dev: 'eth0', protocol: '116' });
    await eventually(async () => !(await routeTo('10.244.99.0/24')), 10_000, 'stale route removed');
    const own = (await etcdctl('get', '--prefix', '/coreos.com/network/subnets/', '--keys-only')).stdout;
    expect(own).toMatch(/\/coreos.com\/network\/subnets\/10\.244\.\d+\.0-24/);
    for (const msg of ['using interface', 'lease acquired', 'subnet file written', 'peers changed', 'agent running']) {
      expect(logLines().some((l) => l.msg === msg)).toBe(true);
    }
  });

  it('keeps routes through an etcd outage and picks up changes after it', async () => {
    await etcd!.stop();
    await eventually(() => logLines().some((l) => l.msg === 'etcd unreachable; retrying'), 15_000, 'etcd unreachable line');
    await new Promise((r) => setTimeout(r, 6000)); // more than a resync period without etcd
    expect(await routeTo('10.244.50.0/24')).toBeTruthy();
    expect(agent?.exitCode).toBeNull();
    etcd = await startEtcd({ netns: NODE, dataDir: join(dir, 'etcd') });
    await etcdctl('put', '/coreos.com/network/subnets/10.244.51.0-24', '{"PublicIP":"198.18.3.2","PublicIPv6":null,"BackendType":"host-gw"}');
    await eventually(async () => Boolean(await routeTo('10.244.51.0/24')), 45_000, 'route for a peer added after the outage');
    // The outage in two lines (and no reminder: it lasted less than a minute), its length in the second.
    const backLines = () => logLines().filter((l) => l.msg === 'etcd reachable again');
    await eventually(() => backLines().length > 0, 10_000, 'etcd reachable line');
    const back = backLines();
    expect(back).toHaveLength(1);
    expect(back[0]!.downSeconds).toBeGreaterThan(6);
    expect(logLines().filter((l) => l.msg === 'etcd unreachable; retrying')).toHaveLength(1);
  });

  it('stops cleanly on SIGTERM with exit 0, keeping routes and lease', async () => {
    const exited = new Promise<number | null>((r) => agent!.once('exit', (code) => r(code)));
    agent!.kill('SIGTERM');
    expect(await exited).toBe(0);
    agent = null;
    expect(await routeTo('10.244.50.0/24')).toBeTruthy();
    const keys = (await etcdctl('get', '--prefix', '/coreos.com/network/subnets/', '--keys-only')).stdout;
    expect(keys.match(/subnets\//g)).toHaveLength(3);
    expect(logLines().some((l) => l.msg === 'stopped')).toBe(true);
  });
});
