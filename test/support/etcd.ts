import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from '../../src/kernel/exec.js';

export interface EtcdServer {
  readonly endpoint: string;
  readonly port: number;
  /** etcd's own process (for SIGSTOP/SIGCONT: a frozen etcd). */
  readonly pid: number;
  stop(): Promise<void>;
}

/** A free TCP port on loopback (bound and released; good enough for a test's lifetime). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts Debian's etcd on loopback with a temporary data dir; resolves when it serves. With
 * `netns`, it runs on that namespace's own loopback (fixed ports: the namespace is fresh) and
 * `dataDir` lets a test restart it on the same data.
 */
export interface EtcdTls {
  readonly certFile: string;
  readonly keyFile: string;
  /** The CA that signed certFile (for the health check); with clientCertAuth also etcd's --trusted-ca-file. */
  readonly caFile: string;
  /** Clients must show a certificate the CA signed. Off: no --trusted-ca-file either, because etcd 3.4 demands client certificates whenever it has one. */
  readonly clientCertAuth: boolean;
  /** Client files for the health check (etcdctl) when clientCertAuth is on. */
  readonly clientCert?: string;
  readonly clientKey?: string;
}

export async function startEtcd(opts: { netns?: string; dataDir?: string; host?: string; tls?: EtcdTls } = {}): Promise<EtcdServer> {
  const dir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'twill-etcd-')));
  const [port, peer] = opts.netns ? [2379, 2380] : [await freePort(), await freePort()];
  // `host`: an address of the namespace, so that other namespaces reach this etcd too.
  const url = `${opts.tls ? 'https' : 'http'}://${opts.host ?? '127.0.0.1'}:${port}`;
  const tls = opts.tls
    ? [`--cert-file=${opts.tls.certFile}`, `--key-file=${opts.tls.keyFile}`, ...(opts.tls.clientCertAuth ? [`--trusted-ca-file=${opts.tls.caFile}`, '--client-cert-auth'] : [])]
    : [];
  const inNs = opts.netns ? ['netns', 'exec', opts.netns, 'etcd'] : [];
  const child: ChildProcess = spawn(
    opts.netns ? 'ip' : 'etcd',
    [
      ...inNs,
      '--name=t',
      `--data-dir=${join(dir, 'data')}`,
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      `--listen-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-cluster=t=http://127.0.0.1:${peer}`,
      '--log-level=error',
      ...tls,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  await waitHealthy(url, child, () => stderr, opts.netns, opts.tls && etcdctlTlsArgs(opts.tls));
  return {
    endpoint: url,
    port,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      if (!opts.dataDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** etcdctl's flags to reach a TLS etcd as a trusted client. */
export function etcdctlTlsArgs(tls: EtcdTls): string[] {
  return [`--cacert=${tls.caFile}`, ...(tls.clientCert && tls.clientKey ? [`--cert=${tls.clientCert}`, `--key=${tls.clientKey}`] : [])];
}

async function waitHealthy(url: string, child: ChildProcess, stderr: () => string, netns?: string, tlsArgs?: string[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`etcd exited: ${stderr()}`);
    const ok = netns || tlsArgs
      ? (await exec('etcdctl', ['--endpoints', url, ...(tlsArgs ?? []), 'endpoint', 'health'], { ...(netns && { netns }), allowFailure: true })).code === 0
      : await fetch(`${url}/health`).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`etcd did not become healthy: ${stderr()}`);
}

/** One member of a test cluster: killed and restarted on the same data (and ports). */
export interface EtcdMember {
  readonly name: string;
  readonly endpoint: string;
  /** The running process's pid; null while stopped. */
  pid(): number | null;
  /** SIGKILL (a crashed member): no goodbye to the others. */
  kill(): Promise<void>;
  /** Starts it again on its data dir; resolves once it serves (/health needs a leader). */
  restart(): Promise<void>;
}

export interface EtcdCluster {
  readonly endpoints: readonly string[];
  readonly members: readonly EtcdMember[];
  /** The member that leads now, asked of the members that run. */
  leader(): Promise<EtcdMember>;
  /** Kills every member and removes the data. */
  stop(): Promise<void>;
}

/** `size` etcd members on loopback ports in one cluster, each with its own temporary data dir. */
export async function startEtcdCluster(size: number): Promise<EtcdCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'twill-etcd-cluster-'));
  const ports: { client: number; peer: number }[] = [];
  for (let i = 0; i < size; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const names = ports.map((_, i) => `m${i}`);
  const initial = ports.map((p, i) => `${names[i]}=http://127.0.0.1:${p.peer}`).join(',');
  const members = ports.map((p, i) => clusterMember(names[i]!, p, initial, join(dir, names[i]!)));
  try {
    // A member is healthy only once a leader is elected: start them all, then wait.
    const started = members.map((m) => m.launch());
    await Promise.all(started);
  } catch (err) {
    await Promise.all(members.map((m) => m.kill()));
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const endpoints = members.map((m) => m.endpoint);
  return {
    endpoints,
    members,
    leader: async () => {
      for (const m of members.filter((x) => x.pid() !== null)) {
        // `-w fields` prints the 64-bit IDs as text (JSON numbers would be rounded).
        const res = await exec('etcdctl', ['--endpoints', m.endpoint, 'endpoint', 'status', '-w', 'fields'], { allowFailure: true });
        const field = (name: string) => new RegExp(`^"${name}" : (\\d+)$`, 'm').exec(res.stdout)?.[1];
        if (res.code === 0 && field('MemberID') !== undefined && field('MemberID') === field('Leader')) return m;
      }
      throw new Error('no member leads');
    },
    stop: async () => {
      await Promise.all(members.map((m) => m.kill()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function clusterMember(name: string, ports: { client: number; peer: number }, initialCluster: string, dataDir: string): EtcdMember & { launch(): Promise<void> } {
  const endpoint = `http://127.0.0.1:${ports.client}`;
  let child: ChildProcess | null = null;
  const launch = async () => {
    const proc = spawn(
      'etcd',
      [
        `--name=${name}`,
        `--data-dir=${dataDir}`,
        `--listen-client-urls=${endpoint}`,
        `--advertise-client-urls=${endpoint}`,
        `--listen-peer-urls=http://127.0.0.1:${ports.peer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${ports.peer}`,
        `--initial-cluster=${initialCluster}`,
        '--initial-cluster-state=new', // ignored on a restart: the data dir knows the cluster
        '--log-level=error',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child = proc;
    let stderr = '';
    proc.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    await waitHealthy(endpoint, proc, () => stderr);
  };
  const kill = async () => {
    const proc = child;
    child = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGCONT'); // a member a test froze must not stay frozen
    proc.kill('SIGKILL');
    await exited;
  };
  return { name, endpoint, pid: () => child?.pid ?? null, kill, restart: launch, launch };
}
