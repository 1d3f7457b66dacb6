// Issue 16, part 3: the bundled etcd (deploy/kubernetes/etcd/) as it would run, short of
// Kubernetes: make-certs.sh makes the PKI and the Secrets; three real etcd processes run with
// the StatefulSet's own command line (its $(VAR)s filled as the downward API and the
// ConfigMap would fill them, on 127.0.0.2-4 in a namespace of the test's) and the Secret's
// files; they form one TLS cluster that refuses a client without a certificate; twill's config
// and a running agent's lease go through it with the agents' Secret, and both stay through a
// lost member, a lost quorum and the restart (pod traffic through such an outage: lab-etcd-cluster).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { CLI, twill } from '../support/cli.js';
import { run, isRoot } from '../support/lab.js';
import { eventually } from '../support/logger.js';
import { createNetns, deleteNetnsByPrefix, nsExec, nsIp } from '../support/netns.js';

const DIR = fileURLToPath(new URL('../../deploy/kubernetes/etcd/', import.meta.url));
const PREFIX = 'twl-t-kube-etcd';
const NS = `${PREFIX}1`;
const IPS = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
const NET = '{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}';

interface Doc {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: { template: { spec: { containers: { command: string[]; args: string[] }[] } } };
}

async function docs(file: string): Promise<Doc[]> {
  return parseAllDocuments(await readFile(file, 'utf8')).map((d) => d.toJS() as Doc);
}

describe.skipIf(!isRoot())("the bundled etcd: the StatefulSet's command line, make-certs.sh's Secrets, three real members", () => {
  let dir = '';
  const secrets: Record<string, Record<string, string>> = {};
  let command: string[] = [];
  const members: (ChildProcess | null)[] = [null, null, null];
  let agent: ChildProcess | null = null;

  /** Member i as the StatefulSet starts it on a node whose IP is IPS[i]. */
  function start(i: number): void {
    const env: Record<string, string> = {
      NODE_NAME: `m${i}`,
      HOST_IP: IPS[i]!,
      INITIAL_CLUSTER: IPS.map((ip, k) => `m${k}=https://${ip}:2380`).join(','),
      INITIAL_CLUSTER_TOKEN: 'twill-etcd',
    };
    const args = command.slice(1).map((a) =>
      a
        .replace(/\$\((\w+)\)/g, (_, v: string) => env[v]!)
        .replace('/var/lib/etcd', join(dir, `m${i}`))
        .replace('/etc/etcd/tls/', `${dir}/server/`)
        // Each node has a loopback of its own; here the three members share one namespace.
        .replace('https://127.0.0.1:2379', `https://127.0.1.${i + 1}:2379`),
    );
    members[i] = spawn('ip', ['netns', 'exec', NS, command[0]!, ...args], { stdio: ['ignore', 'ignore', openSync(join(dir, `m${i}.log`), 'a')] });
  }

  async function stop(i: number): Promise<void> {
    const m = members[i];
    if (!m || m.exitCode !== null) return;
    const exited = new Promise((r) => m.once('exit', r));
    m.kill('SIGKILL');
    await exited;
    members[i] = null;
  }

  const client = () => ['--cacert', `${dir}/agent/ca.crt`, '--cert', `${dir}/agent/tls.crt`, '--key', `${dir}/agent/tls.key`];
  const endpoints = IPS.map((ip) => `https://${ip}:2379`).join(',');
  const etcdctl = (args: readonly string[]) => nsExec(NS, 'etcdctl', ['--endpoints', endpoints, '--dial-timeout', '2s', '--command-timeout', '3s', ...args], true);
  const tls = () => ['--etcd-endpoints', endpoints, '--etcd-cafile', `${dir}/agent/ca.crt`, '--etcd-certfile', `${dir}/agent/tls.crt`, '--etcd-keyfile', `${dir}/agent/tls.key`];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'twill-kube-etcd-'));
    const made = await run('sh', [join(DIR, 'make-certs.sh'), ...IPS], { ...process.env, TWILL_PKI_DIR: join(dir, 'pki') });
    expect(made.code, made.stderr).toBe(0);
    // The Secrets as Kubernetes would mount them: one file per key.
    for (const s of await docs(join(dir, 'pki/secrets.yaml'))) secrets[s.metadata.name] = s.data!;
    for (const [name, sub] of [['twill-etcd-server', 'server'], ['twill-etcd-tls', 'agent']] as const) {
      await mkdir(join(dir, sub), { mode: 0o700 });
      for (const [key, value] of Object.entries(secrets[name]!)) await writeFile(join(dir, sub, key), Buffer.from(value, 'base64'), { mode: 0o400 });
    }
    const [sts] = (await docs(join(DIR, '02-statefulset.yaml'))).filter((d) => d.kind === 'StatefulSet');
    const container = sts!.spec!.template.spec.containers[0]!;
    command = [...container.command, ...container.args];
    const [members] = await docs(join(DIR, '00-members.yaml'));
    expect(members!.data!['initial-cluster-token']).toBe('twill-etcd');
    await createNetns(PREFIX, [NS]);
    for (let i = 0; i < 3; i++) start(i);
  }, 60_000);

  afterAll(async () => {
    if (agent && agent.exitCode === null) {
      const exited = new Promise((r) => agent!.once('exit', r));
      agent.kill('SIGTERM');
      await exited;
    }
    for (let i = 0; i < 3; i++) await stop(i);
    await deleteNetnsByPrefix(PREFIX);
    if (dir && !process.env['KEEP']) await rm(dir, { recursive: true, force: true });
  });

  it('make-certs.sh: two Secrets, the members valid for every member IP, the agents a client certificate from the same CA', async () => {
    expect(Object.keys(secrets).sort()).toEqual(['twill-etcd-server', 'twill-etcd-tls']);
    const san = await run('openssl', ['x509', '-in', `${dir}/server/tls.crt`, '-noout', '-ext', 'subjectAltName']);
    for (const ip of IPS) expect(san.stdout).toContain(`IP Address:${ip}`);
    const verify = await run('openssl', ['verify', '-CAfile', `${dir}/agent/ca.crt`, `${dir}/agent/tls.crt`]);
    expect(verify.stdout.trim()).toBe(`${dir}/agent/tls.crt: OK`);
  });

  it('forms one cluster of three over TLS, named after the nodes, and refuses a client without a certificate', async () => {
    await eventually(async () => (await etcdctl([...client(), 'endpoint', 'health'])).code === 0, 30_000, 'three healthy members');
    const list = await etcdctl([...client(), 'member', 'list']);
    expect(list.stdout.split('\n').filter(Boolean).map((l) => l.split(', ')[2]).sort()).toEqual(['m0', 'm1', 'm2']);
    const anonymous = await etcdctl(['--cacert', `${dir}/agent/ca.crt`, 'get', 'x']);
    expect(anonymous.code).not.toBe(0);
  });

  it("twill's config and an agent's lease go through it with the agents' Secret, and stay through a lost member, a lost quorum and the restart", async () => {
    expect((await twill(['config', 'set', ...tls()], { input: NET, netns: NS })).code).toBe(0);
    // An agent of this node: eth0 a veth inside the test's namespace (both ends); host-gw, no peers.
    await nsIp(NS, ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p']);
    await nsIp(NS, ['addr', 'add', '198.18.0.1/24', 'dev', 'eth0']);
    await nsIp(NS, ['link', 'set', 'eth0', 'up']);
    await nsIp(NS, ['link', 'set', 'eth0p', 'up']);
    const subnetFile = join(dir, 'subnet.env');
    agent = spawn('ip', ['netns', 'exec', NS, process.execPath, CLI, 'agent', ...tls(), '--iface', 'eth0', '--subnet-file', subnetFile, '--status-addr', '127.0.0.1:8475'], { stdio: ['ignore', openSync(join(dir, 'agent.log'), 'a'), openSync(join(dir, 'agent.log'), 'a')] });
    await eventually(() => existsSync(subnetFile), 20_000, "the agent's subnet.env");
    const leases = async () => (await etcdctl([...client(), 'get', '--prefix', '--keys-only', '/coreos.com/network/subnets/'])).stdout.split('\n').filter(Boolean);
    const [lease] = await leases();
    expect(lease).toMatch(/^\/coreos.com\/network\/subnets\/10\.244\./);
    const env = await readFile(subnetFile, 'utf8');

    await stop(0);
    const one = await twill(['config', 'get', ...tls()], { netns: NS });
    expect(JSON.parse(one.stdout)).toMatchObject({ Network: '10.244.0.0/16' }); // two of three: a quorum
    await stop(1);
    expect((await etcdctl([...client(), 'put', 'k', 'v'])).code).not.toBe(0); // one of three: none
    await new Promise((r) => setTimeout(r, 3_000));
    start(0);
    start(1);
    await eventually(async () => (await etcdctl([...client(), 'endpoint', 'health'])).code === 0, 30_000, 'the quorum back');
    const back = await twill(['config', 'get', ...tls()], { netns: NS });
    expect(JSON.parse(back.stdout)).toMatchObject({ Network: '10.244.0.0/16', Backend: { Type: 'host-gw' } });
    expect(agent.exitCode).toBeNull(); // the agent rode it out
    expect(await leases()).toEqual([lease]); // its lease intact, no second one
    expect(await readFile(subnetFile, 'utf8')).toBe(env);
    await eventually(async () => (await nsExec(NS, 'curl', ['-sf', 'http://127.0.0.1:8475/readyz'], true)).code === 0, 20_000, 'the agent ready');
  }, 120_000);
});
