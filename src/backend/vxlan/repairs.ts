import type { Logger } from '../../log.js';
import type { DeviceAction } from './device.js';
import type { VxlanPlan } from './plan.js';
import type { VxlanRepairs } from './status.js';

/**
 * Drift and what was done about it: counted by kind for status and metrics, and logged once per
 * occurrence (one line per pass that repaired, one per stale entry that would not go).
 */
export class RepairBook {
  private readonly counts: Record<keyof VxlanRepairs, number> = { device: 0, neighbour: 0, fdb: 0, route: 0 };
  private deviceSeen = false;
  private readonly staleLogged = new Set<string>();

  constructor(
    private readonly log: Logger,
    private readonly device: string,
  ) {}

  get repairs(): VxlanRepairs {
    return { ...this.counts };
  }

  /** What ensureDevice did; returns 'kept' when the device was already as wanted (its entries then tell drift). */
  deviceAction(d: DeviceAction): 'kept' | 'made' {
    const fields = { device: this.device };
    if (d.action === 'recreated') this.log.warn({ ...fields, reason: d.reason }, 'vxlan device incompatible; recreated');
    if ((d.action === 'created' || d.action === 'recreated') && this.deviceSeen) {
      this.counts.device++;
      this.log.warn(fields, 'vxlan device was gone; recreated, peers reprogrammed');
    }
    if (d.action === 'configured' && this.deviceSeen) this.log.warn(fields, 'vxlan device settings changed under us; put back');
    this.deviceSeen = true;
    return d.action === 'kept' ? 'kept' : 'made';
  }

  /** A pass with no lease change that still changes the kernel found drift: one line, counted by kind. */
  drift(plan: VxlanPlan): void {
    const n = { neighbour: plan.neigh.length, fdb: plan.fdb.length, route: plan.routes.length };
    if (n.neighbour + n.fdb + n.route === 0) return;
    this.counts.neighbour += n.neighbour;
    this.counts.fdb += n.fdb;
    this.counts.route += n.route;
    this.log.warn(n, 'vxlan entries changed under us; put back');
  }

  /** An entry no peer wants whose removal failed: logged once. */
  staleFailed(entry: string): void {
    if (this.staleLogged.has(entry)) return;
    this.staleLogged.add(entry);
    this.log.warn({ entry }, 'stale vxlan entry not removed');
  }
}
