/**
 * Network namespaces for end-to-end tests. Every name must start with `twl-t-`, and every
 * command runs with `ip -n NS`: nothing here can change the root namespace.
 */
import { exec, type ExecResult } from '../../src/kernel/exec.js';

const TEST_NS = /^twl-t-[a-z0-9-]{1,20}$/;

function checkName(ns: string): string {
  if (!TEST_NS.test(ns)) throw new Error(`refusing to touch namespace "${ns}": test namespaces are named twl-t-*`);
  return ns;
}

/** `ip -n NS ARGS...`; throws on a non-zero exit. */
export function nsIp(ns: string, args: readonly string[], input?: string): Promise<ExecResult> {
  return exec('ip', ['-n', checkName(ns), ...args], input === undefined ? {} : { input });
}

/** Runs a program inside the namespace (`ip netns exec NS ...`). */
export function nsExec(ns: string, cmd: string, args: readonly string[], allowFailure = false): Promise<ExecResult> {
  return exec(cmd, args, { netns: checkName(ns), allowFailure });
}

export interface RouteJson {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
}

/** IPv4 routes of table main, as `ip -json route show` prints them (with `protocol`). */
export async function nsRoutes(ns: string): Promise<RouteJson[]> {
  const { stdout } = await nsIp(ns, ['-json', '-4', 'route', 'show', 'table', 'main']);
  return JSON.parse(stdout.trim() || '[]') as RouteJson[];
}

export async function listNetns(): Promise<string[]> {
  const { stdout } = await exec('ip', ['-json', 'netns', 'list']);
  return (JSON.parse(stdout.trim() || '[]') as { name: string }[]).map((n) => n.name);
}

/** Deletes every namespace whose name starts with `prefix` (leftovers of a crashed run, too). */
export async function deleteNetnsByPrefix(prefix: string): Promise<void> {
  checkName(`${prefix}x`);
  for (const ns of await listNetns()) {
    if (ns.startsWith(prefix)) await exec('ip', ['netns', 'del', ns], { allowFailure: true });
  }
}

/** Creates fresh namespaces (leftovers with the prefix are deleted first), loopback up. */
export async function createNetns(prefix: string, names: readonly string[]): Promise<void> {
  await deleteNetnsByPrefix(prefix);
  for (const ns of names) {
    if (!ns.startsWith(prefix)) throw new Error(`namespace ${ns} does not start with ${prefix}`);
    await exec('ip', ['netns', 'add', checkName(ns)]);
    await nsIp(ns, ['link', 'set', 'lo', 'up']);
  }
}

/** A veth pair created inside `a.ns` with its peer moved straight into `b.ns`; both ends up. */
export async function veth(a: { ns: string; name: string }, b: { ns: string; name: string }): Promise<void> {
  await nsIp(a.ns, ['link', 'add', a.name, 'type', 'veth', 'peer', 'name', b.name, 'netns', checkName(b.ns)]);
  await nsIp(a.ns, ['link', 'set', a.name, 'up']);
  await nsIp(b.ns, ['link', 'set', b.name, 'up']);
}

/** A bridge inside `ns` with the given ports enslaved. */
export async function bridge(ns: string, name: string, ports: readonly string[]): Promise<void> {
  await nsIp(ns, ['link', 'add', name, 'type', 'bridge']);
  for (const port of ports) await nsIp(ns, ['link', 'set', port, 'master', name]);
  await nsIp(ns, ['link', 'set', name, 'up']);
}
