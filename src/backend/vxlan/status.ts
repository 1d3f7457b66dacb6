import type { BackendDetails } from '../../status/types.js';
import type { StatusLines } from '../backend.js';

/** Kernel state found changed by someone else and put back, by kind. */
export interface VxlanRepairs {
  readonly device: number;
  readonly neighbour: number;
  readonly fdb: number;
  readonly route: number;
}

export const REPAIR_KINDS = ['device', 'neighbour', 'fdb', 'route'] as const;

/** The vxlan backend's details in /v1/status (`backend.details`). */
export interface VxlanDetails extends BackendDetails {
  readonly vni: number;
  /** The UDP port in use (8472 when Backend.Port is 0). */
  readonly port: number;
  readonly vtepMAC: string;
  readonly directRouting: boolean;
  /** Peers by how they are reached. */
  readonly peersDirect: number;
  readonly peersVxlan: number;
  readonly repairs: VxlanRepairs;
}

/** `twill status` lines; the details come as JSON from the agent, so each part may be missing. */
export function describeVxlanStatus(details: BackendDetails): StatusLines {
  const d = details as Partial<VxlanDetails>;
  const lines: [string, string][] = [];
  if (d.vni !== undefined) {
    const direct = d.directRouting ? `, DirectRouting on: ${d.peersDirect ?? 0} peer(s) direct` : '';
    lines.push(['vxlan', `VNI ${d.vni}, port ${d.port ?? '?'}, VtepMAC ${d.vtepMAC ?? '?'}, ${d.peersVxlan ?? 0} peer(s) over vxlan${direct}`]);
  }
  if (d.repairs) {
    const nonZero = Object.entries(d.repairs).filter(([, n]) => n > 0);
    lines.push(['repairs', nonZero.length === 0 ? 'none' : nonZero.map(([k, n]) => `${k} ${n}`).join(', ')]);
  }
  return lines;
}
