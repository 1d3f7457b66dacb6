import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backendFactory } from '../../backend/index.js';
import { TwillError } from '../../errors.js';

/** Where Debian's containernetworking-plugins puts them, then the upstream default. */
const CNI_DIRS = ['/usr/lib/cni', '/opt/cni/bin'] as const;
const CNI_PLUGINS = ['bridge', 'host-local', 'loopback'] as const;

/** Programs `up` runs; `check` adds ping. */
export const UP_PROGRAMS = ['ip', 'sysctl', 'etcd', 'etcdctl', 'iptables', 'nft'] as const;

export function assertRoot(command = 'twill lab'): void {
  if (process.getuid?.() !== 0) {
    throw new TwillError('TWILL_ERR_LAB_NOT_ROOT', `${command} needs root: it creates network namespaces (run it with sudo)`);
  }
}

async function isExecutable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

function notFound(what: string, hint: string): TwillError {
  return new TwillError('TWILL_ERR_KERNEL_NOT_FOUND', `${what} is not installed (${hint})`, { details: { program: what } });
}

export async function findProgram(name: string, pathVar = process.env.PATH ?? ''): Promise<string | null> {
  for (const dir of [...pathVar.split(delimiter), '/usr/sbin', '/sbin']) {
    if (dir !== '' && (await isExecutable(`${dir}/${name}`))) return `${dir}/${name}`;
  }
  return null;
}

export async function requirePrograms(names: readonly string[]): Promise<void> {
  for (const name of names) {
    if (!(await findProgram(name))) throw notFound(name, 'not found in PATH; on Debian: etcd-server, etcd-client, iproute2, procps, iptables, nftables, iputils-ping');
  }
}

/** The CNI plugin directory holding bridge, host-local and loopback. */
export async function findCniDir(): Promise<string> {
  for (const dir of CNI_DIRS) {
    if (await isExecutable(`${dir}/bridge`)) {
      for (const plugin of CNI_PLUGINS) {
        if (!(await isExecutable(`${dir}/${plugin}`))) throw notFound(`CNI plugin ${dir}/${plugin}`, 'install containernetworking-plugins');
      }
      return dir;
    }
  }
  throw notFound(`CNI plugin "bridge" (looked in ${CNI_DIRS.join(', ')})`, 'install containernetworking-plugins');
}

/** The compiled CLI entry next to this module (dist/tools/lab → dist/cli/main.js): agents run the same build. */
export async function cliEntry(): Promise<string> {
  const path = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
  const exists = await access(path).then(
    () => true,
    () => false,
  );
  if (!exists) {
    throw notFound(`twill CLI build ${path}`, 'run "npm run build"');
  }
  return path;
}

/**
 * The agents run this build, so its backend table must know the lab's backend: fail before
 * anything is built rather than at `twill config set` (TWILL_ERR_BACKEND_UNKNOWN).
 */
export function assertBackendBuilt(type: string): void {
  backendFactory(type);
}
