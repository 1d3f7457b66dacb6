import { access, readdir, rm, rmdir } from 'node:fs/promises';
import { deleteNetns, listNetns, netnsPids } from '../kernel/netns.js';
import { stopProcess } from '../kernel/process.js';
import { isLabNamespace, nsName, roles, teardownRank } from './naming.js';
import { stateFile } from './state.js';

export interface DownSummary {
  readonly processes: number;
  readonly namespaces: readonly string[];
  /** kept: the directory holds no state.json, so it is not a lab directory and is left alone. */
  readonly dir: 'removed' | 'absent' | 'kept';
}

/**
 * Tears a lab down whatever state it is in (state.json missing, partial or fine): everything is
 * discovered from the namespaces, so it also cleans up after a crash half-way through `up`.
 * Only processes found inside the lab's namespaces are signalled, never a pid from a file that
 * may have been reused by now.
 */
export async function labDown(name: string, dir: string, opts: { keepDir?: boolean } = {}): Promise<DownSummary> {
  const namespaces = (await listNetns()).filter((ns) => isLabNamespace(name, ns));
  const processes = await stopLabProcesses(name, namespaces);
  const ordered = [...namespaces].sort((a, b) => teardownRank(name, a) - teardownRank(name, b));
  for (const ns of ordered) await deleteNetns(ns);
  return { processes, namespaces: ordered, dir: opts.keepDir ? 'kept' : await removeLabDir(dir) };
}

/** Agents first (they talk to etcd), then etcd, then anything else left in a lab namespace. */
async function stopLabProcesses(name: string, namespaces: readonly string[]): Promise<number> {
  const etcdNs = nsName(name, roles.etcd());
  const waves = [namespaces.filter((ns) => ns !== etcdNs), namespaces.filter((ns) => ns === etcdNs)];
  let count = 0;
  for (const wave of waves) {
    const pids = [...new Set((await Promise.all(wave.map(netnsPids))).flat())];
    await Promise.all(pids.map((pid) => stopProcess(pid)));
    count += pids.length;
  }
  return count;
}

/** Removes the lab dir only if it is one (holds state.json) or is empty: never an unrelated directory. */
export async function removeLabDir(dir: string): Promise<DownSummary['dir']> {
  const entries = await readdir(dir).catch(() => null);
  if (entries === null) return 'absent';
  if (entries.length === 0) {
    await rmdir(dir);
    return 'removed';
  }
  const marked = await access(stateFile(dir)).then(
    () => true,
    () => false,
  );
  if (!marked) return 'kept';
  await rm(dir, { recursive: true, force: true });
  return 'removed';
}
