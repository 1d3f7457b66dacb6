import { bridgeLines, vethIntoNetnsLines } from '../kernel/netns.js';
import { planNodes, type LabNode, type LabPlan, type Segment } from './topology.js';

/** One `ip -n NS -batch -` run. */
export interface NsBatch {
  readonly ns: string;
  readonly lines: readonly string[];
}

/** Pure: the plan's links as ip batches. Segment batches must run before node batches (they create the veths). */
export function wiringBatches(plan: LabPlan): { segments: NsBatch[]; nodes: NsBatch[] } {
  const nodes = planNodes(plan);
  const segments = plan.segments.map((seg) => segmentBatch(seg, nodes));
  const nodeBatches = [...nodes.map(nodeBatch), ...plan.pods.map((p) => ({ ns: p.ns, lines: ['link set lo up'] }))];
  return { segments, nodes: nodeBatches };
}

function segmentBatch(seg: Segment, nodes: readonly LabNode[]): NsBatch {
  const ports = nodes.flatMap((n) => n.links.filter((l) => l.segmentNs === seg.ns).map((l) => ({ node: n, link: l })));
  const portLines = ports.flatMap(({ node, link }) => [
    ...vethIntoNetnsLines(link.port, link.iface, node.ns),
    `link set ${link.port} master ${seg.bridge}`,
  ]);
  return { ns: seg.ns, lines: ['link set lo up', ...segmentBridgeLines(seg), ...portLines] };
}

/** Flat: the bridge holds the gateway address. Routed: a plain switch, the router holds it. */
function segmentBridgeLines(seg: Segment): string[] {
  if (seg.bridgeCidr !== null) return bridgeLines(seg.bridge, seg.bridgeCidr);
  return [`link add ${seg.bridge} type bridge`, `link set ${seg.bridge} up`];
}

function nodeBatch(node: LabNode): NsBatch {
  const linkLines = node.links.flatMap((l) => [
    `addr add ${l.address} dev ${l.iface}`,
    ...(l.extraAddresses ?? []).map((a) => `addr add ${a} dev ${l.iface}`),
    `link set ${l.iface} up`,
    ...(l.gateway ? [`route add default via ${l.gateway} dev ${l.iface}`] : []),
  ]);
  return { ns: node.ns, lines: ['link set lo up', ...linkLines] };
}

/** The namespaces that forward IPv4 (net.ipv4.ip_forward=1 there only): the router, if any, and every host. */
export function forwarders(plan: Pick<LabPlan, 'router' | 'hosts'>): string[] {
  return [...(plan.router ? [plan.router.ns] : []), ...plan.hosts.map((h) => h.ns)];
}
