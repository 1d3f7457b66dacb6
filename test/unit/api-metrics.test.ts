import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics/metrics.js';
import { BACKENDS } from '../../src/backend/index.js';

const backends = Object.values(BACKENDS);
import { runningStatus, startingStatus } from '../support/status.js';
import type { AgentStatus } from '../../src/status/types.js';

const REQUIRED = [
  'twill_peers',
  'twill_routes',
  'twill_lease_expiry_timestamp_seconds',
  'twill_lease_events_total',
  'twill_etcd_up',
  'twill_config_stale',
  'twill_etcd_watch_events_total',
  'twill_lease_rejected_total',
  'twill_reconcile_duration_seconds',
  'twill_route_changes_total',
  'twill_tunnel_packets_total',
  'twill_tunnel_bytes_total',
  'twill_tunnel_drops_total',
  'twill_tunnel_gro_super_packets_total',
  'twill_tunnel_gro_segments_total',
  'twill_tunnel_icmp_errors_total',
  'twill_tunnel_device_recreated_total',
  'twill_build_info',
];

const udpStatus = (): AgentStatus => ({
  ...runningStatus(),
  backend: {
    type: 'udp',
    mtu: 1472,
    device: 'twill0',
    routes: 1,
    details: {
      drops: { 'unknown-peer': 3, 'no-route': 0 },
      tunnel: { port: 8285, icmpSent: 0, groSuperPackets: 2, groSegments: 7, packetsIn: 10, bytesIn: 1000, packetsOut: 12, bytesOut: 1300 },
    },
  },
});

describe('metrics', () => {
  it('declares every required metric, with HELP and TYPE, and process metrics', async () => {
    const m = createMetrics({ status: startingStatus, version: '1.2.3', backends });
    const text = await m.registry.metrics();
    for (const name of REQUIRED) {
      expect(text).toMatch(new RegExp(`^# HELP ${name} \\S`, 'm'));
      expect(text).toMatch(new RegExp(`^# TYPE ${name} (gauge|counter|histogram)$`, 'm'));
    }
    expect(text).toMatch(/^process_cpu_seconds_total /m);
    expect(text).toMatch(/^twill_build_info\{version="1\.2\.3",nodejs="v\d+/m);
  });

  it('reads gauges from the status: nothing held before the lease, all of it once running', async () => {
    let status = startingStatus();
    const m = createMetrics({ status: () => status, version: 't', backends, defaultMetrics: false });
    let text = await m.registry.metrics();
    expect(text).toMatch(/^twill_peers 0$/m);
    expect(text).toMatch(/^twill_etcd_up 0$/m);
    expect(text).toMatch(/^twill_ready 0$/m);
    expect(text).not.toMatch(/^twill_lease_expiry_timestamp_seconds[ {]/m);
    expect(text).not.toMatch(/^twill_routes\{/m);
    status = runningStatus();
    text = await m.registry.metrics();
    expect(text).toMatch(/^twill_peers 1$/m);
    expect(text).toMatch(/^twill_routes\{backend="host-gw"\} 1$/m);
    expect(text).toMatch(new RegExp(`^twill_lease_expiry_timestamp_seconds\\{subnet="10\\.244\\.7\\.0/24"\\} ${Date.parse('2030-01-01T00:00:00Z') / 1000}$`, 'm'));
    expect(text).toMatch(/^twill_etcd_up 1$/m);
    expect(text).toMatch(/^twill_ready 1$/m);
    expect(text).toMatch(/^twill_config_stale 0$/m);
    status = { ...runningStatus(), network: { ...runningStatus().network!, changedInEtcd: ['SubnetLen'] } };
    expect(await m.registry.metrics()).toMatch(/^twill_config_stale 1$/m);
    status = { ...runningStatus(), lease: { ...runningStatus().lease!, expiresAt: null, etcdLeaseId: '0' } };
    expect(await m.registry.metrics()).toMatch(/^twill_lease_expiry_timestamp_seconds\{subnet="10\.244\.7\.0\/24"\} \+Inf$/m);
  });

  it('copies the udp tunnel counters at scrape time', async () => {
    const m = createMetrics({ status: udpStatus, version: 't', backends, defaultMetrics: false });
    const text = await m.registry.metrics();
    expect(text).toMatch(/^twill_tunnel_packets_total\{direction="in"\} 10$/m);
    expect(text).toMatch(/^twill_tunnel_packets_total\{direction="out"\} 12$/m);
    expect(text).toMatch(/^twill_tunnel_bytes_total\{direction="out"\} 1300$/m);
    expect(text).toMatch(/^twill_tunnel_drops_total\{reason="unknown-peer"\} 3$/m);
    expect(text).toMatch(/^twill_tunnel_drops_total\{reason="no-route"\} 0$/m);
    expect(text).toMatch(/^twill_tunnel_gro_super_packets_total 2$/m);
    expect(text).toMatch(/^twill_tunnel_gro_segments_total 7$/m);
  });

  it('counts what the observer reports', async () => {
    const m = createMetrics({ status: runningStatus, version: 't', backends, defaultMetrics: false });
    expect(await m.registry.metrics()).toMatch(/^twill_route_changes_total\{op="add",result="ok"\} 0$/m);
    m.observer.leaseEvent('acquired');
    m.observer.leaseEvent('renewed');
    m.observer.leaseEvent('renewed');
    m.observer.watchEvent('put');
    m.observer.routeChange('add', 'ok');
    m.observer.routeChange('delete', 'error');
    m.observer.reconcileDuration(0.003);
    const text = await m.registry.metrics();
    expect(text).toMatch(/^twill_lease_events_total\{event="acquired"\} 1$/m);
    expect(text).toMatch(/^twill_lease_events_total\{event="renewed"\} 2$/m);
    expect(text).toMatch(/^twill_lease_events_total\{event="lost"\} 0$/m);
    expect(text).toMatch(/^twill_etcd_watch_events_total\{type="put"\} 1$/m);
    expect(text).toMatch(/^twill_route_changes_total\{op="add",result="ok"\} 1$/m);
    expect(text).toMatch(/^twill_route_changes_total\{op="delete",result="error"\} 1$/m);
    expect(text).toMatch(/^twill_reconcile_duration_seconds_count 1$/m);
    expect(text).toMatch(/^twill_reconcile_duration_seconds_bucket\{le="0\.005"\} 1$/m);
  });

  it('counts rejected leases by reason, every reason shown from the start', async () => {
    const m = createMetrics({ status: runningStatus, version: 't', backends, defaultMetrics: false });
    const before = await m.registry.metrics();
    for (const reason of ['bad-key', 'bad-value', 'outside-network', 'overlaps-own', 'overlaps-peer']) expect(before).toMatch(new RegExp(`^twill_lease_rejected_total\\{reason="${reason}"\\} 0$`, 'm'));
    m.observer.leaseRejected('overlaps-own');
    m.observer.leaseRejected('overlaps-own');
    expect(await m.registry.metrics()).toMatch(/^twill_lease_rejected_total\{reason="overlaps-own"\} 2$/m);
  });

  it('reads the status once per scrape', async () => {
    let calls = 0;
    const m = createMetrics({ status: () => (calls++, udpStatus()), version: 't', backends, defaultMetrics: false });
    await m.registry.metrics();
    expect(calls).toBe(1);
    await m.registry.metrics();
    expect(calls).toBe(2);
  });

  it('keeps its metrics out of the global registry, so two agents in one process do not clash', async () => {
    const a = createMetrics({ status: startingStatus, version: 't', backends });
    const b = createMetrics({ status: runningStatus, version: 't', backends });
    expect(await a.registry.metrics()).toMatch(/^twill_peers 0$/m);
    expect(await b.registry.metrics()).toMatch(/^twill_peers 1$/m);
  });
});
