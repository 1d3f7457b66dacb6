import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePki, type TestPki } from '../support/certs.js';
import { CLI } from '../support/cli.js';
import { etcdctlTlsArgs, startEtcd, type EtcdServer, type EtcdTls } from '../support/etcd.js';
import { eventually } from '../support/logger.js';
import { createNetns, deleteNetnsByPrefix, nsExec, nsIp, veth } from '../support/netns.js';

// `twill agent` against an etcd that wants TLS, a client certificate and a password, as a
// DaemonSet runs it: the agent leases and writes subnet.env, and its log (at debug) never
// carries the password, also when etcd refuses it.
const PREFIX = 'twl-t-tls-';
const NODE = `${PREFIX}node`;
const PEER = `${PREFIX}peer`;
const PASSWORD = 'pw-Kx93-agent-never-logs';
const root = process.getuid?.() === 0;

let dir = '';
let pki: TestPki;
let tls: EtcdTls;
let etcd: EtcdServer | null = null;
const agents: ChildProcess[] = [];

beforeAll(async () => {
  if (!root) return;
  dir = await mkdtemp(join(tmpdir(), 'twill-tls-e2e-'));
  pki = await makePki(join(dir, 'pki'));
  await createNetns(PREFIX, [NODE, PEER]);
  await veth({ ns: NODE, name: 'eth0' }, { ns: PEER, name: 'eth0' });
  await nsIp(NODE, ['addr', 'add', '198.18.5.1/24', 'dev', 'eth0']);
  tls = { certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.ca, clientCertAuth: true, clientCert: pki.clientCert, clientKey: pki.clientKey };
  etcd = await startEtcd({ netns: NODE, dataDir: join(dir, 'etcd'), tls });
  const ctl = (...args: string[]) => nsExec(NODE, 'etcdctl', ['--endpoints', etcd!.endpoint, ...etcdctlTlsArgs(tls), ...args]);
  await ctl('user', 'add', `root:${PASSWORD}`);
  await ctl('auth', 'enable');
  await ctl('--user', `root:${PASSWORD}`, 'put', '/coreos.com/network/config', '{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}');
});

afterAll(async () => {
  for (const a of agents) a.kill('SIGKILL');
  await etcd?.stop();
  await deleteNetnsByPrefix(PREFIX);
  if (dir) await rm(dir, { recursive: true, force: true });
});

function startAgent(password: string, subnetFile: string, statusPort: number): { child: ChildProcess; output: () => string } {
  const args = ['netns', 'exec', NODE, process.execPath, CLI, 'agent', '--iface', 'eth0', '--log-level', 'debug',
    '--etcd-endpoints', etcd!.endpoint, '--etcd-cafile', pki.ca, '--etcd-certfile', pki.clientCert, '--etcd-keyfile', pki.clientKey,
    '--etcd-username', 'root', '--subnet-file', subnetFile, '--status-addr', `127.0.0.1:${statusPort}`, '--forward-rules=false'];
  // The password as the DaemonSet and the systemd unit pass it: in the environment.
  const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TWILL_ETCD_PASSWORD: password } });
  agents.push(child);
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  return { child, output: () => out };
}

describe.skipIf(!root)('twill agent with etcd TLS, client certificate and password', () => {
  it('leases a subnet, writes subnet.env, and never logs the password', async () => {
    const subnetFile = join(dir, 'subnet.env');
    const agent = startAgent(PASSWORD, subnetFile, 8475);
    await eventually(() => agent.output().includes('"msg":"agent running"'), 30_000, 'agent running');
    expect(await readFile(subnetFile, 'utf8')).toMatch(/^FLANNEL_SUBNET=10\.244\.\d+\.1\/24$/m);
    const keys = await nsExec(NODE, 'etcdctl', ['--endpoints', etcd!.endpoint, ...etcdctlTlsArgs(tls), '--user', `root:${PASSWORD}`, 'get', '--prefix', '--keys-only', '/coreos.com/network/subnets/']);
    expect(keys.stdout).toMatch(/\/coreos.com\/network\/subnets\/10\.244\.\d+\.0-24/);
    expect(agent.output().split('\n').filter((l) => l.startsWith('{')).length).toBeGreaterThan(5);
    expect(agent.output()).not.toContain(PASSWORD);
    agent.child.kill('SIGTERM');
    await new Promise((r) => agent.child.once('exit', r));
    expect(agent.output()).not.toContain(PASSWORD);
  });

  it('a wrong password: TWILL_ERR_ETCD_AUTH is logged once and the agent exits 2 rather than retry; no password in the output', async () => {
    const wrong = `${PASSWORD}-wrong`;
    const agent = startAgent(wrong, join(dir, 'subnet2.env'), 8476);
    const exited = new Promise<number | null>((r) => agent.child.once('close', (code) => r(code))); // 'close': its output is all in
    expect(await exited).toBe(2);
    const lines = agent.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => l.code === 'TWILL_ERR_ETCD_AUTH')).toHaveLength(1);
    expect(agent.output()).toMatch(/etcd refused the user name or password \[TWILL_ERR_ETCD_AUTH\]/); // the CLI's last word, on stderr
    expect(agent.output()).not.toContain(PASSWORD);
  });
});
