import type { Backend, BackendFactory } from '../../src/backend/backend.js';
import { formatCidr } from '../../src/lib/ipv4.js';
import type { Lease, LeaseEvent } from '../../src/subnet/types.js';

/** One backend the agent created: the lease it was given and every peer batch, as text. */
export interface BackendRecord {
  readonly ownLease: Lease;
  /** "added 10.244.2.0/24 198.18.0.2" per event, one array per applyPeerChanges call. */
  readonly batches: string[][];
  state: 'created' | 'started' | 'stopped';
}

export interface RecordingOptions {
  /** Shared with the other fakes: "backend.start <subnet>", "backend.stop", "backend.stopped". */
  readonly order?: string[];
  /** start() waits for this (a test holds the agent inside backend start). */
  readonly startGate?: Promise<void>;
  /** stop() takes this long, so that a caller that does not await it is caught. */
  readonly stopMs?: number;
  /** Each applyPeerChanges takes this long (a slow kernel): backlogs build up behind it. */
  readonly applyMs?: number;
}

export const RECORDING_TYPE = 'recording';

const describe = (e: LeaseEvent) => `${e.type} ${formatCidr(e.lease.subnet)} ${e.lease.attrs.publicIP}`;

/**
 * A backend that carries nothing and records what the agent asks of it; registered through the
 * agent's backend table as Backend.Type "recording". Its MTU is the interface's less 10.
 */
export function recordingBackend(opts: RecordingOptions = {}): { factory: BackendFactory<null, null>; instances: BackendRecord[] } {
  const instances: BackendRecord[] = [];
  const note = (line: string) => opts.order?.push(line);
  const factory: BackendFactory<null, null> = {
    type: RECORDING_TYPE,
    traits: { crossesRouters: true, carriesPackets: false },
    parseOptions: () => null,
    flags: [],
    parseFlags: () => null,
    mtu: (ifaceMtu) => ifaceMtu - 10,
    leaseAttrs: (publicIP) => ({ publicIP, publicIPv6: null, backendType: RECORDING_TYPE }),
    create: (ctx): Backend => {
      const rec: BackendRecord = { ownLease: ctx.ownLease, batches: [], state: 'created' };
      instances.push(rec);
      return {
        start: async () => {
          note(`backend.start ${formatCidr(ctx.ownLease.subnet)}`);
          await opts.startGate;
          rec.state = 'started';
        },
        applyPeerChanges: async (events) => {
          rec.batches.push(events.map(describe));
          if (opts.applyMs) await new Promise((r) => setTimeout(r, opts.applyMs));
        },
        stop: async () => {
          note('backend.stop');
          await new Promise((r) => setTimeout(r, opts.stopMs ?? 0));
          rec.state = 'stopped';
          note('backend.stopped');
        },
        status: () => ({ type: RECORDING_TYPE, mtu: ctx.iface.mtu - 10, device: null, routes: 0, peers: [] }),
      };
    },
  };
  return { factory, instances };
}
