import { formatCidr } from '../lib/ipv4.js';
import { formatLeaseValue } from './lease-format.js';
import type { Lease, LeaseEvent } from './types.js';

/** The map key of a lease: its subnet in CIDR form. */
export function leaseId(lease: Pick<Lease, 'subnet'>): string {
  return formatCidr(lease.subnet);
}

function sameAttrs(a: Lease, b: Lease): boolean {
  return formatLeaseValue(a.attrs) === formatLeaseValue(b.attrs);
}

/** The events that turn `known` into `snapshot` (after a re-list). */
export function diffLeases(known: ReadonlyMap<string, Lease>, snapshot: readonly Lease[]): LeaseEvent[] {
  const events: LeaseEvent[] = [];
  const seen = new Set<string>();
  for (const lease of snapshot) {
    const id = leaseId(lease);
    seen.add(id);
    const old = known.get(id);
    if (!old || !sameAttrs(old, lease)) events.push({ type: 'added', lease });
  }
  for (const [id, lease] of known) if (!seen.has(id)) events.push({ type: 'removed', lease });
  return events;
}

/**
 * Applies one watch event to `known` and returns the event to pass on, or null when it changes
 * nothing (a renewal PUT of the same value, a delete of a key we never saw).
 */
export function applyLeaseEvent(known: Map<string, Lease>, event: LeaseEvent): LeaseEvent | null {
  const id = leaseId(event.lease);
  const old = known.get(id);
  if (event.type === 'removed') {
    if (!old) return null;
    known.delete(id);
    return { type: 'removed', lease: old };
  }
  known.set(id, event.lease);
  return old && sameAttrs(old, event.lease) ? null : event;
}

/** Applies one watch response's events to `known`, in order; returns the ones that change something. */
export function applyLeaseBatch(known: Map<string, Lease>, events: readonly LeaseEvent[]): LeaseEvent[] {
  const out: LeaseEvent[] = [];
  for (const e of events) {
    const effective = applyLeaseEvent(known, e);
    if (effective) out.push(effective);
  }
  return out;
}
