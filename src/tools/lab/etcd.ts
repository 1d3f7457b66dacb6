import { mkdir } from 'node:fs/promises';
import { TwillError } from '../../errors.js';
import { exec } from '../../kernel/exec.js';
import { isAlive, startDaemon } from '../kernel/process.js';
import { etcdMemberArgs, etcdMemberFiles, leadsFromStatusFields, type EtcdMemberPlan } from './etcd-members.js';
import type { LabPlan } from './topology.js';
import { pollUntil } from './wait.js';

const HEALTH_TIMEOUT_MS = 20_000;

export interface StartedMember {
  readonly name: string;
  readonly endpoint: string;
  readonly pid: number;
}

/** A clean environment: ETCD_* variables of the caller must not reconfigure the lab's etcd. */
export function daemonEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };
}

/** Starts one member (its data dir, if there, makes this a restart) without waiting for it. */
export async function launchMember(plan: Pick<LabPlan, 'dir' | 'etcd'>, member: EtcdMemberPlan): Promise<number> {
  const files = etcdMemberFiles(plan.dir, member.name);
  await mkdir(files.dir, { recursive: true });
  const args = etcdMemberArgs(member, plan.etcd.members, files.dataDir);
  return startDaemon({ cmd: 'etcd', args, netns: plan.etcd.ns, logFile: files.log, pidFile: files.pidFile, env: daemonEnv() });
}

/** Starts every member, then waits for all to be healthy (a member is healthy only once a leader is elected). */
export async function startEtcd(plan: LabPlan, signal?: AbortSignal): Promise<StartedMember[]> {
  const started: StartedMember[] = [];
  for (const m of plan.etcd.members) started.push({ name: m.name, endpoint: m.clientUrl, pid: await launchMember(plan, m) });
  await waitMembersHealthy(plan, started, signal);
  return started;
}

export async function waitMembersHealthy(plan: Pick<LabPlan, 'dir' | 'etcd'>, members: readonly StartedMember[], signal?: AbortSignal, timeoutMs = HEALTH_TIMEOUT_MS): Promise<void> {
  const names = members.map((m) => m.name).join(', ');
  const what = `etcd ${names} in ${plan.etcd.ns} did not become healthy; see ${plan.dir}/etcd/<member>/etcd.log`;
  await pollUntil(async () => ((await Promise.all(members.map((m) => probeHealth(plan, m)))).every(Boolean) ? true : undefined), { timeoutMs, what, signal });
}

async function probeHealth(plan: Pick<LabPlan, 'dir' | 'etcd'>, m: StartedMember): Promise<boolean> {
  const log = etcdMemberFiles(plan.dir, m.name).log;
  if (!isAlive(m.pid)) throw new TwillError('TWILL_ERR_LAB_STATE', `etcd ${m.name} in ${plan.etcd.ns} exited; see ${log}`, { details: { log } });
  return (await etcdctl(plan.etcd.ns, m.endpoint, ['endpoint', 'health'])).code === 0;
}

/** Whether the member at `endpoint` leads; null when it does not answer. */
export async function memberLeads(ns: string, endpoint: string): Promise<boolean | null> {
  const res = await etcdctl(ns, endpoint, ['endpoint', 'status', '-w', 'fields']);
  return res.code === 0 ? leadsFromStatusFields(res.stdout) : null;
}

function etcdctl(ns: string, endpoint: string, args: readonly string[]) {
  return exec('etcdctl', ['--endpoints', endpoint, '--dial-timeout', '1s', '--command-timeout', '2s', ...args], {
    netns: ns,
    allowFailure: true,
    env: { ...daemonEnv(), ETCDCTL_API: '3' },
    timeoutMs: 5_000,
  });
}
