import { readFile } from 'node:fs/promises';
import { TwillError } from '../errors.js';
import { formatCidr, type Ipv4Net } from '../lib/ipv4.js';
import { writeFileAtomic } from './subnet-env.js';

/** kube-flannel's cniVersion; bridge, host-local and portmap 1.x all take it. */
export const CNI_VERSION = '0.3.1';
export const DEFAULT_CNI_NETWORK_NAME = 'cbr0';
/** The reference plugins the conflist names: what a node must have in its CNI bin dir. */
/** The bridge the conflist puts pods on (kube-flannel's name). */
export const CNI_BRIDGE = 'cni0';

export const CNI_PLUGINS = ['bridge', 'host-local', 'portmap'] as const;

/** libcni's rule for a network name. */
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** --cni-network-name, checked: a name libcni would refuse is a clear error at start. */
export function checkCniNetworkName(name: string): string {
  if (!NETWORK_NAME.test(name)) throw new TwillError('TWILL_ERR_OPTION_INVALID', `--cni-network-name: "${name}" is not a CNI network name (letters, digits, _ . -, not starting with _ . -)`);
  return name;
}

export interface ConflistInput {
  readonly name: string;
  readonly network: Ipv4Net;
  readonly subnet: Ipv4Net;
  readonly mtu: number;
  /** The agent's --ip-masq: when twill masquerades, the bridge plugin must not. */
  readonly ipMasq: boolean;
}

/**
 * Pure: the node's conflist, with the values the flannel CNI plugin derives from subnet.env for
 * kube-flannel's stock config (delegate: hairpinMode, isDefaultGateway), then portmap.
 */
export function renderConflist(c: ConflistInput): string {
  const bridge = {
    type: 'bridge',
    bridge: CNI_BRIDGE,
    isGateway: true,
    isDefaultGateway: true,
    hairpinMode: true,
    ipMasq: !c.ipMasq,
    mtu: c.mtu,
    ipam: { type: 'host-local', ranges: [[{ subnet: formatCidr(c.subnet) }]], routes: [{ dst: formatCidr(c.network) }] },
  };
  const portmap = { type: 'portmap', capabilities: { portMappings: true } };
  return `${JSON.stringify({ name: c.name, cniVersion: CNI_VERSION, plugins: [bridge, portmap] }, null, 2)}\n`;
}

/** Writes the conflist atomically (a dot-name the runtime ignores, fsync, rename), only when its content changes. */
export async function writeConflist(path: string, text: string): Promise<boolean> {
  const current = await readFile(path, 'utf8').catch(() => null);
  if (current === text) return false;
  await writeFileAtomic(path, text);
  return true;
}
