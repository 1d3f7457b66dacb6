import { Counter, type Registry } from 'prom-client';
import type { BackendDetails } from '../../status/types.js';
import type { UdpDetails } from './status.js';

/**
 * The udp tunnel's counters, copied from its status at scrape time (prom-client counters have
 * no set), so the packet path is never touched by a scrape.
 */
export function registerUdpMetrics(registry: Registry, details: () => BackendDetails | undefined): void {
  const registers = [registry];
  const tunnel = (): UdpDetails['tunnel'] | undefined => (details() as UdpDetails | undefined)?.tunnel;
  const copy = (counter: Counter, values: Readonly<Record<string, number>> | undefined, label: string): void => {
    counter.reset();
    for (const [key, n] of Object.entries(values ?? {})) counter.inc({ [label]: key }, n);
  };
  const copyTotal = (counter: Counter, value: number | undefined): void => {
    counter.reset();
    if (value !== undefined) counter.inc(value);
  };
  new Counter({
    name: 'twill_tunnel_packets_total',
    help: 'Packets through the udp tunnel, by direction (in = from peers, out = to peers).',
    labelNames: ['direction'],
    registers,
    collect() {
      const t = tunnel();
      copy(this, t && { in: t.packetsIn, out: t.packetsOut }, 'direction');
    },
  });
  new Counter({
    name: 'twill_tunnel_bytes_total',
    help: 'Bytes (inner IPv4 packets) through the udp tunnel, by direction.',
    labelNames: ['direction'],
    registers,
    collect() {
      const t = tunnel();
      copy(this, t && { in: t.bytesIn, out: t.bytesOut }, 'direction');
    },
  });
  new Counter({
    name: 'twill_tunnel_gro_super_packets_total',
    help: 'TCP super-packets (segments of one flow merged, TUN offload gro) the udp tunnel wrote into the device.',
    registers,
    collect() {
      copyTotal(this, tunnel()?.groSuperPackets);
    },
  });
  new Counter({
    name: 'twill_tunnel_gro_segments_total',
    help: 'TCP segments from peers the udp tunnel wrote into the device inside super-packets (TUN offload gro).',
    registers,
    collect() {
      copyTotal(this, tunnel()?.groSegments);
    },
  });
  new Counter({
    name: 'twill_tunnel_icmp_errors_total',
    help: 'ICMP errors (net unreachable, time exceeded) the udp tunnel generated, by result: sent, or suppressed by its rate limit.',
    labelNames: ['result'],
    registers,
    collect() {
      const t = tunnel();
      copy(this, t && { sent: t.icmpSent, suppressed: t.icmpSuppressed }, 'result');
    },
  });
  new Counter({
    name: 'twill_tunnel_device_recreated_total',
    help: 'Times the udp tunnel recreated its TUN device after it failed (deleted, read error).',
    registers,
    collect() {
      copyTotal(this, tunnel()?.deviceRecreated);
    },
  });
  new Counter({
    name: 'twill_tunnel_drops_total',
    help: 'Packets the udp tunnel dropped, by reason.',
    labelNames: ['reason'],
    registers,
    collect() {
      copy(this, (details() as UdpDetails | undefined)?.drops, 'reason');
    },
  });
}
