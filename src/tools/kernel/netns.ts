import { exec, type ExecResult } from '../../kernel/exec.js';

export { NETNS_DIR, netnsPath } from '../../kernel/netns-path.js';

export async function addNetns(name: string): Promise<void> {
  await exec('ip', ['netns', 'add', name]);
}

/** Deletes a namespace; a missing one is not an error (idempotent teardown). */
export async function deleteNetns(name: string): Promise<void> {
  if (!(await listNetns()).includes(name)) return;
  await exec('ip', ['netns', 'del', name]);
}

/** Names of all named namespaces (`ip netns list` prints "name (id: N)" once an id is assigned). */
export async function listNetns(): Promise<string[]> {
  const { stdout } = await exec('ip', ['netns', 'list']);
  return parseNetnsList(stdout);
}

export function parseNetnsList(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name !== '');
}

/** Pids of the processes whose network namespace is `name`; none if the namespace is gone. */
export async function netnsPids(name: string): Promise<number[]> {
  const res = await exec('ip', ['netns', 'pids', name], { allowFailure: true });
  if (res.code !== 0) return [];
  return res.stdout
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

/** Runs `ip -n NS -batch -` with one command per line; the whole batch fails on the first error. */
export async function ipBatch(ns: string, lines: readonly string[]): Promise<ExecResult | null> {
  if (lines.length === 0) return null;
  return exec('ip', ['-n', ns, '-batch', '-'], { input: `${lines.join('\n')}\n` });
}

/** Sets a sysctl inside a namespace only (net.* sysctls are per namespace). */
export async function netnsSysctl(ns: string, key: string, value: string): Promise<void> {
  await exec('sysctl', ['-q', '-w', `${key}=${value}`], { netns: ns });
}

/** Batch lines that create a veth whose peer lands directly in another namespace. */
export function vethIntoNetnsLines(local: string, peer: string, peerNs: string): string[] {
  return [`link add ${local} type veth peer name ${peer} netns ${peerNs}`, `link set ${local} up`];
}

/** Batch lines that create a bridge with an address, up. */
export function bridgeLines(bridge: string, cidrAddr: string): string[] {
  return [`link add ${bridge} type bridge`, `addr add ${cidrAddr} dev ${bridge}`, `link set ${bridge} up`];
}

interface IpLink {
  readonly ifindex: number;
  readonly ifname: string;
  readonly link_index?: number;
}

/** The name of the far end of NS's veth `dev` inside `peerNs` (a pod's eth0 → its host's vethXXXX); null when there is none. */
export async function vethPeerName(ns: string, dev: string, peerNs: string): Promise<string | null> {
  const [mine] = JSON.parse((await exec('ip', ['-n', ns, '-j', 'link', 'show', 'dev', dev])).stdout) as IpLink[];
  if (mine?.link_index === undefined) return null;
  const theirs = JSON.parse((await exec('ip', ['-n', peerNs, '-j', 'link', 'show'])).stdout) as IpLink[];
  return theirs.find((l) => l.ifindex === mine.link_index)?.ifname ?? null;
}

/** The device NS's kernel routes `dst` to, as for a packet from `src` arriving on `iif` (`ip route get`); null: no route. */
export async function routeGetDev(ns: string, dst: string, src: string, iif: string): Promise<string | null> {
  const res = await exec('ip', ['-n', ns, '-j', 'route', 'get', dst, 'from', src, 'iif', iif], { allowFailure: true });
  if (res.code !== 0) return null;
  const [route] = JSON.parse(res.stdout) as { dev?: string; type?: string }[];
  return route?.dev ?? null;
}
