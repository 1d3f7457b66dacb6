import { mkdir } from 'node:fs/promises';
import { TwillError } from '../../errors.js';
import { exec } from '../../kernel/exec.js';
import { isAlive, startDaemon } from '../kernel/process.js';
import { etcdFiles, type LabPlan } from './topology.js';
import { pollUntil } from './wait.js';

const PEER_URL = 'http://127.0.0.1:2380';
const MEMBER = 'twl-etcd';
const HEALTH_TIMEOUT_MS = 20_000;

/** Pure: etcd's flags. Clients only on the underlay address; the peer URL stays inside the namespace. */
export function etcdArgs(plan: Pick<LabPlan, 'etcd'>, dataDir: string): string[] {
  const client = plan.etcd.endpoint;
  return [
    ...['--name', MEMBER, '--data-dir', dataDir],
    ...['--listen-client-urls', client, '--advertise-client-urls', client],
    ...['--listen-peer-urls', PEER_URL, '--initial-advertise-peer-urls', PEER_URL],
    ...['--initial-cluster', `${MEMBER}=${PEER_URL}`, '--initial-cluster-state', 'new'],
  ];
}

/** A clean environment: ETCD_* variables of the caller must not reconfigure the lab's etcd. */
export function daemonEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };
}

export async function startEtcd(plan: LabPlan, signal?: AbortSignal): Promise<number> {
  const files = etcdFiles(plan.dir);
  await mkdir(files.dir, { recursive: true });
  const pid = await startDaemon({ cmd: 'etcd', args: etcdArgs(plan, files.dataDir), netns: plan.etcd.ns, logFile: files.log, pidFile: files.pidFile, env: daemonEnv() });
  await pollUntil(() => probeHealth(plan, pid, files.log), { timeoutMs: HEALTH_TIMEOUT_MS, what: `etcd in ${plan.etcd.ns} did not become healthy; see ${files.log}`, signal });
  return pid;
}

async function probeHealth(plan: LabPlan, pid: number, log: string): Promise<true | undefined> {
  if (!isAlive(pid)) throw new TwillError('TWILL_ERR_LAB_STATE', `etcd in ${plan.etcd.ns} exited; see ${log}`, { details: { log } });
  const res = await exec('etcdctl', ['--endpoints', plan.etcd.endpoint, '--dial-timeout', '1s', 'endpoint', 'health'], {
    netns: plan.etcd.ns,
    allowFailure: true,
    env: { ...daemonEnv(), ETCDCTL_API: '3' },
    timeoutMs: 5_000,
  });
  return res.code === 0 ? true : undefined;
}
