/**
 * `twill trace` on the node: the kernel's facts for one destination, read through the kernel
 * wrappers (a handful of `ip` and `iptables` calls, `nft list table ip twill`, subnet.env),
 * handed with the agent's own status to the pure chain in src/trace/path.ts.
 */
import { readFile } from 'node:fs/promises';
import { isTwillError, TwillError } from '../errors.js';
import type { Kernel, KernelRoute } from '../kernel/index.js';
import { parseEnvFile } from '../lib/env-file.js';
import { contains, parseCidr, parseIp } from '../lib/ipv4.js';
import { FORWARD_CHAIN, FORWARD_TABLE, forwardRuleSpecs, parseForwardChain } from '../rules/forward-rules.js';
import { listedMasqRules, TWILL_NFT_FAMILY, TWILL_NFT_TABLE } from '../rules/nft-ruleset.js';
import type { AgentStatus } from '../status/types.js';
import { tracePath, type KernelFacts, type PathTrace } from '../trace/path.js';
import { CNI_BRIDGE } from './cni-conflist.js';

export interface TraceSources {
  readonly kernel: Kernel;
  readonly status: AgentStatus;
  readonly subnetFile: string;
}

/** `from`: a source address; one of this node's pods is taken as arriving on the CNI bridge, as its packets do. */
export async function traceFromNode(src: TraceSources, dst: string, from?: string): Promise<PathTrace> {
  for (const [what, ip] of [['destination', dst], ['source', from]] as const) {
    if (ip !== undefined && parseIp(ip) === null) throw new TwillError('TWILL_ERR_API_BAD_REQUEST', `trace: the ${what} "${ip}" is not an IPv4 address`, { details: { [what]: ip } });
  }
  return tracePath(dst, src.status, await kernelFacts(src, dst, from), from);
}

/** The route for a packet from `from`: from a local pod it arrives on the bridge; else as the node sends it. */
async function routeFrom(kernel: Kernel, status: AgentStatus, dst: string, from: string | undefined) {
  if (from === undefined) return kernel.routes.get(dst);
  const own = status.lease ? parseCidr(status.lease.subnet) : null;
  const ip = parseIp(from);
  const onBridge = own !== null && ip !== null && contains(own, ip);
  return (onBridge ? await kernel.routes.get(dst, { src: from, iif: CNI_BRIDGE }) : null) ?? kernel.routes.get(dst, { src: from });
}

async function kernelFacts({ kernel, status, subnetFile }: TraceSources, dst: string, from: string | undefined): Promise<KernelFacts> {
  const [route, main, ipForward, forwardText, envText, masquerade] = await Promise.all([
    routeFrom(kernel, status, dst, from),
    kernel.routes.listMain().catch(() => []),
    kernel.sysctl.ipForwardEnabled().catch(() => false),
    kernel.iptables.listChain(FORWARD_TABLE, FORWARD_CHAIN).catch(() => ''),
    readFile(subnetFile, 'utf8').catch(() => null),
    masqueradeRules(kernel),
  ]);
  const neighbour = route && !isTunnelDevice(route.dev, status) ? await kernel.neigh.lookup(route.gateway ?? dst) : null;
  const device = status.backend?.type === 'vxlan' ? status.backend.device : null;
  const fdb = device && neighbour?.lladdr ? (await kernel.fdb.listPermanent(device)).find((e) => e.mac === neighbour.lladdr) : undefined;
  const forward = parseForwardChain(forwardText);
  const owned = new Set(forward.owned.map((r) => r.join(' ')));
  const network = status.network?.network;
  return {
    route,
    routeEntry: longestMatch(main, dst),
    neighbour,
    ...(device ? { fdb: fdb ? { mac: fdb.mac, dst: fdb.dst } : null } : {}),
    ipForward,
    forward: { policy: forward.policy === 'DROP' ? 'DROP' : 'ACCEPT', twillRules: network !== undefined && forwardRuleSpecs(network).every((r) => owned.has(r.join(' '))) },
    subnetEnv: envText === null ? null : subnetEnvOf(envText),
    masquerade,
  };
}

/** twill's ip-masq table as the kernel holds it; without nft there is none. */
function masqueradeRules(kernel: Kernel): Promise<KernelFacts['masquerade']> {
  return kernel.nft.listTable(TWILL_NFT_FAMILY, TWILL_NFT_TABLE).then(
    (listing) => (listing === null ? null : { rules: listedMasqRules(listing) }),
    (err: unknown) => (isTwillError(err, 'TWILL_ERR_KERNEL_NOT_FOUND') ? null : { unreadable: err instanceof Error ? err.message : String(err) }),
  );
}

/** The udp tunnel's device has no neighbours: its packets go to the pump, not onto a link. */
function isTunnelDevice(dev: string, status: AgentStatus): boolean {
  return status.backend?.type === 'udp' && status.backend.device === dev;
}

/** The route of table main that decides for dst: the longest prefix containing it. */
export function longestMatch(routes: readonly KernelRoute[], dst: string): { dst: string; proto: string } | null {
  const ip = parseIp(dst);
  let best: { dst: string; proto: string; len: number } | null = null;
  for (const r of routes) {
    const net = parseCidr(r.dst, false);
    if (ip === null || net === null || !contains(net, ip) || (best !== null && net.len <= best.len)) continue;
    best = { dst: r.dst, proto: r.proto === undefined ? 'unknown' : String(r.proto), len: net.len };
  }
  return best && { dst: best.dst, proto: best.proto };
}

function subnetEnvOf(text: string): KernelFacts['subnetEnv'] {
  const vars = parseEnvFile(text);
  const mtu = Number(vars.get('FLANNEL_MTU'));
  const network = vars.get('FLANNEL_NETWORK');
  const subnet = vars.get('FLANNEL_SUBNET');
  const ipMasq = vars.get('FLANNEL_IPMASQ');
  const masq = ipMasq === 'true' || ipMasq === 'false' ? { ipMasq: ipMasq === 'true' } : {};
  return network && subnet && Number.isInteger(mtu) ? { network, subnet, mtu, ...masq } : null;
}
