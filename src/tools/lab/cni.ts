import { parseEnvFile } from '../../lib/env-file.js';
import { formatCidr, parseCidr } from '../../lib/ipv4.js';

/**
 * Pure: subnet.env text → parsed env (what the lab reads of each host), the conflist's plugin
 * confs as a runtime hands them over, and the CNI environment. No I/O, so it is unit-tested as is.
 */
export interface FlannelEnv {
  readonly network: string;
  /** FLANNEL_SUBNET as written: the lease subnet with its first host address (10.244.1.1/24). */
  readonly subnet: string;
  /** The same subnet as a network (10.244.1.0/24). */
  readonly subnetNet: string;
  readonly mtu: number;
  readonly ipMasq: boolean;
}

export type ParseResult = { readonly ok: true; readonly env: FlannelEnv } | { readonly ok: false; readonly reason: string };

export function parseSubnetEnv(text: string): ParseResult {
  const vars = parseEnvFile(text);
  const network = parseCidr(vars.get('FLANNEL_NETWORK') ?? '', true);
  const subnet = parseCidr(vars.get('FLANNEL_SUBNET') ?? '', false);
  const mtu = Number(vars.get('FLANNEL_MTU'));
  const ipMasq = vars.get('FLANNEL_IPMASQ');
  if (!network) return { ok: false, reason: 'FLANNEL_NETWORK missing or not a CIDR' };
  if (!subnet) return { ok: false, reason: 'FLANNEL_SUBNET missing or not a CIDR' };
  if (!Number.isInteger(mtu) || mtu < 68) return { ok: false, reason: 'FLANNEL_MTU missing or not a valid MTU' };
  if (ipMasq !== 'true' && ipMasq !== 'false') return { ok: false, reason: 'FLANNEL_IPMASQ must be true or false' };
  const env = { network: formatCidr(network), subnet: vars.get('FLANNEL_SUBNET')!, subnetNet: formatCidr(subnet), mtu, ipMasq: ipMasq === 'true' };
  return { ok: true, env };
}

export const CNI_VERSION = '0.3.1';

export function loopbackConf(): Record<string, unknown> {
  return { cniVersion: CNI_VERSION, name: 'lo', type: 'loopback' };
}

export interface CniCall {
  readonly command: 'ADD' | 'DEL';
  readonly containerId: string;
  readonly netnsPath: string;
  readonly ifName: string;
  readonly cniPath: string;
}

export function cniEnv(call: CniCall, path: string | undefined): NodeJS.ProcessEnv {
  return {
    PATH: path ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerId,
    CNI_NETNS: call.netnsPath,
    CNI_IFNAME: call.ifName,
    CNI_PATH: call.cniPath,
  };
}

/** The pod's IPv4 address (without prefix length) from a CNI result; null if there is none. */
export function resultIpv4(resultJson: string): string | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(resultJson);
  } catch {
    return null;
  }
  const ips = (parsed as { ips?: unknown }).ips;
  if (!Array.isArray(ips)) return null;
  for (const entry of ips as unknown[]) {
    const address = (entry as { address?: unknown }).address;
    const cidr = typeof address === 'string' ? parseCidr(address, false) : null;
    if (cidr && typeof address === 'string') return address.slice(0, address.indexOf('/'));
  }
  return null;
}

/**
 * Pure: what a runtime (libcni) hands each plugin of a conflist on ADD, in order: the plugin's
 * own object with the list's `name` and `cniVersion`; `prevResult` is added as each one answers.
 * The lab's one artefact: host-local gets a per-host `dataDir`, since every lab host shares
 * this machine's /var/lib/cni.
 */
export function conflistPluginConfs(conflistText: string, dataDir: string): Record<string, unknown>[] {
  const list = JSON.parse(conflistText) as { name: string; cniVersion: string; plugins: Record<string, unknown>[] };
  return list.plugins.map((p) => {
    const ipam = p['ipam'] as Record<string, unknown> | undefined;
    const withData = ipam?.['type'] === 'host-local' ? { ipam: { ...ipam, dataDir } } : {};
    return { cniVersion: list.cniVersion, name: list.name, ...p, ...withData };
  });
}
