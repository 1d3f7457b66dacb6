import { addNetns, ipBatch, netnsSysctl } from '../kernel/netns.js';
import { planNamespaces, type LabPlan } from './topology.js';
import { mapLimit } from './wait.js';
import { forwarders, wiringBatches } from './wiring.js';

const PARALLEL = 8;

/**
 * Creates every namespace of the plan and wires it. Veths are created from the segment's
 * namespace with their peer placed straight into the node's, so the root namespace never holds
 * a lab interface, even for a moment.
 */
export async function buildNetwork(plan: LabPlan, signal?: AbortSignal): Promise<void> {
  // Sequential: concurrent first-time `ip netns add` calls race on mounting /run/netns.
  for (const ns of planNamespaces(plan)) {
    signal?.throwIfAborted();
    await addNetns(ns);
  }
  const { segments, nodes } = wiringBatches(plan);
  for (const batch of segments) await ipBatch(batch.ns, batch.lines);
  await mapLimit(nodes, PARALLEL, (batch) => ipBatch(batch.ns, batch.lines));
  // Hosts route between their pods' bridge and the underlay, the router between the segments
  // (set inside those namespaces only).
  await mapLimit(forwarders(plan), PARALLEL, (ns) => netnsSysctl(ns, 'net.ipv4.ip_forward', '1'));
}
