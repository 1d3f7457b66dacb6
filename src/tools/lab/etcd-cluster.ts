import { access } from 'node:fs/promises';
import { TwillError } from '../../errors.js';
import { netnsPids } from '../kernel/netns.js';
import { isAlive } from '../kernel/process.js';
import { launchMember, memberLeads, waitMembersHealthy, type StartedMember } from './etcd.js';
import { etcdMemberFiles, findMember } from './etcd-members.js';
import { planOf, saveState, updateEtcdMember, type EtcdMemberState, type LabState } from './state.js';
import { pollUntil } from './wait.js';

/**
 * Crashing and restarting members of a running lab's etcd, and finding its leader: what a test
 * of an etcd outage needs (issue 13). Each call saves the state it returns; pass that on, since
 * calls run one after another, never side by side on the same state.
 */

/** The member's recorded pid if that process still runs in the etcd namespace (not a reused pid elsewhere). */
async function runningPid(state: LabState, m: EtcdMemberState): Promise<number | null> {
  return m.pid !== null && (await netnsPids(state.etcd.ns)).includes(m.pid) ? m.pid : null;
}

/** SIGKILL, as in a crash: no goodbye to the other members. Its data dir stays for a restart. */
export async function killEtcdMember(state: LabState, name: string): Promise<LabState> {
  const member = findMember(state.etcd.members, name);
  const pid = await runningPid(state, member);
  if (pid === null) throw new TwillError('TWILL_ERR_LAB_STATE', `etcd ${name} of lab ${state.options.name} is not running`, { details: { member: name } });
  process.kill(pid, 'SIGKILL');
  await pollUntil(async () => (isAlive(pid) ? undefined : true), { timeoutMs: 5_000, intervalMs: 20, what: `etcd ${name} (pid ${pid}) survived SIGKILL` });
  const next = updateEtcdMember(state, name, { pid: null });
  await saveState(next);
  return next;
}

/**
 * Starts stopped members again with their own flags and data dir (etcd then ignores the
 * initial-cluster flags and rejoins from its data), and waits until each is healthy, which
 * needs a quorum: restart members together when too few others run.
 */
export async function restartEtcdMembers(state: LabState, names: readonly string[], signal?: AbortSignal): Promise<LabState> {
  const plan = planOf(state);
  let next = state;
  const started: StartedMember[] = [];
  for (const name of names) {
    const member = findMember(plan.etcd.members, name);
    if ((await runningPid(next, findMember(next.etcd.members, name))) !== null) {
      throw new TwillError('TWILL_ERR_LAB_STATE', `etcd ${name} of lab ${state.options.name} is already running`, { details: { member: name } });
    }
    // Without its data dir, etcd would found a new cluster of its own rather than rejoin.
    const dataDir = etcdMemberFiles(plan.dir, name).dataDir;
    await access(dataDir).catch((e: unknown) => {
      throw new TwillError('TWILL_ERR_LAB_STATE', `etcd ${name} has no data dir ${dataDir} to restart from`, { cause: e, details: { member: name } });
    });
    const pid = await launchMember(plan, member);
    started.push({ name, endpoint: member.clientUrl, pid });
    next = updateEtcdMember(next, name, { pid });
    await saveState(next);
  }
  await waitMembersHealthy(plan, started, signal);
  return next;
}

/** Waits until every member of the lab runs and is healthy. */
export async function waitEtcdHealthy(state: LabState, timeoutMs?: number, signal?: AbortSignal): Promise<void> {
  const members = state.etcd.members.map((m) => {
    if (m.pid === null) throw new TwillError('TWILL_ERR_LAB_STATE', `etcd ${m.name} of lab ${state.options.name} is stopped`, { details: { member: m.name } });
    return { name: m.name, endpoint: m.endpoint, pid: m.pid };
  });
  await waitMembersHealthy(planOf(state), members, signal, timeoutMs);
}

/** The name of the member that leads now, asked of every running member; null while none does. */
export async function etcdLeader(state: LabState): Promise<string | null> {
  const running = state.etcd.members.filter((m) => m.pid !== null);
  const leads = await Promise.all(running.map((m) => memberLeads(state.etcd.ns, m.endpoint)));
  return running.find((_, i) => leads[i] === true)?.name ?? null;
}
