import { Counter, type Registry } from 'prom-client';
import type { BackendDetails } from '../../status/types.js';
import type { VxlanDetails } from './status.js';

/** Repairs of drift (someone deleted the device, a neighbour, an FDB entry or a route), copied from the status at scrape time. */
export function registerVxlanMetrics(registry: Registry, details: () => BackendDetails | undefined): void {
  new Counter({
    name: 'twill_vxlan_repairs_total',
    help: 'Kernel state of the vxlan backend found changed or missing and put back, by kind (device, neighbour, fdb, route).',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      const repairs = (details() as VxlanDetails | undefined)?.repairs;
      for (const [kind, n] of Object.entries(repairs ?? {})) this.inc({ kind }, n);
    },
  });
}
