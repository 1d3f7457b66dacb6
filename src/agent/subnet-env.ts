import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { firstHost, formatCidr, formatIp, parseCidr, type Ipv4Net } from '../lib/ipv4.js';
import { parseEnvFile } from '../lib/env-file.js';

export interface SubnetEnv {
  readonly network: Ipv4Net;
  readonly subnet: Ipv4Net;
  readonly mtu: number;
  readonly ipMasq: boolean;
}

/** flannel's subnet.env: FLANNEL_SUBNET is the lease subnet with its first host address. */
export function formatSubnetEnv(env: SubnetEnv): string {
  return [
    `FLANNEL_NETWORK=${formatCidr(env.network)}`,
    `FLANNEL_SUBNET=${formatIp(firstHost(env.subnet))}/${env.subnet.len}`,
    `FLANNEL_MTU=${env.mtu}`,
    `FLANNEL_IPMASQ=${env.ipMasq}`,
    '',
  ].join('\n');
}


/** The subnet a previous run leased, from its subnet file; null if none or unreadable. */
export async function readPreviousSubnet(path: string): Promise<Ipv4Net | null> {
  const text = await readFile(path, 'utf8').catch(() => null);
  const value = text === null ? undefined : parseEnvFile(text).get('FLANNEL_SUBNET');
  return value === undefined ? null : parseCidr(value, false);
}

/** Writes the file atomically (temp file in the same folder, fsync, rename), mode 0644. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(text);
    await fh.chmod(0o644);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path).catch(async (err: unknown) => {
    await unlink(tmp).catch(() => undefined);
    throw err;
  });
}
