import { Gauge } from 'prom-client';
import { z } from 'zod';
import type { Backend, BackendContext, BackendFactory } from '../../src/backend/backend.js';
import { parseBackendOptions } from '../../src/backend/options.js';
import { formatCidr } from '../../src/lib/ipv4.js';
import type { BackendStatus } from '../../src/status/types.js';
import type { LeaseEvent } from '../../src/subnet/types.js';

/**
 * A backend written outside src/ and added only through a backend table: it carries nothing,
 * but has options, a flag, status details, a metric and `twill status` lines of its own.
 * If a shared file had to know it, it could not exist here.
 */
export interface NullOptions {
  readonly greeting: string;
}
export interface NullFlags {
  readonly label: string;
}
export interface NullDetails extends Record<string, unknown> {
  readonly greeting: string;
  readonly label: string;
  readonly batches: number;
}

const SCHEMA = z.object({ Greeting: z.string({ error: 'must be a string' }).default('hi') });

class NullBackend implements Backend {
  private readonly peers = new Map<string, string>();
  private batches = 0;

  constructor(private readonly ctx: BackendContext<NullOptions, NullFlags>) {}

  async start(): Promise<void> {}

  async applyPeerChanges(events: readonly LeaseEvent[]): Promise<void> {
    this.batches++;
    for (const e of events) {
      const subnet = formatCidr(e.lease.subnet);
      if (e.type === 'added') this.peers.set(subnet, e.lease.attrs.publicIP);
      else this.peers.delete(subnet);
    }
  }

  async stop(): Promise<void> {}

  status(): BackendStatus {
    const since = '2026-01-01T00:00:00.000Z';
    const peers = [...this.peers].map(([subnet, publicIP]) => ({ subnet, publicIP, backendType: 'null', state: 'programmed' as const, since }));
    const details: NullDetails = { greeting: this.ctx.options.greeting, label: this.ctx.flags.label, batches: this.batches };
    return { type: 'null', mtu: nullBackend.mtu(this.ctx.iface.mtu, this.ctx.options), device: null, routes: 0, peers, details };
  }
}

export const nullBackend: BackendFactory<NullOptions, NullFlags> = {
  type: 'null',
  traits: { crossesRouters: true, carriesPackets: false },
  parseOptions: (raw) => ({ greeting: parseBackendOptions(SCHEMA, raw).Greeting }),
  flags: [{ name: 'null-label', description: 'a label for the null backend', env: 'TWILL_NULL_LABEL', default: 'n0' }],
  parseFlags: (values) => ({ label: values['null-label'] ?? 'n0' }),
  mtu: (ifaceMtu) => ifaceMtu - 7,
  leaseAttrs: (publicIP) => ({ publicIP, publicIPv6: null, backendType: 'null' }),
  create: (ctx) => new NullBackend(ctx),
  registerMetrics: (registry, details) => {
    new Gauge({
      name: 'twill_null_batches',
      help: 'Peer batches the null backend received.',
      registers: [registry],
      collect() {
        this.set((details() as NullDetails | undefined)?.batches ?? 0);
      },
    });
  },
  describeStatus: (d) => [['null', `${String(d['greeting'])} from ${String(d['label'])}, ${String(d['batches'])} batch(es)`]],
};
