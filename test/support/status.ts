import type { AgentStatus, StatusSource } from '../../src/status/types.js';

/** A status as an agent reports it before any config was read. */
export function startingStatus(): AgentStatus {
  return {
    version: '0.0.0-test',
    state: 'starting',
    ready: false,
    waitingFor: ['lease', 'backend', 'subnet-file'],
    node: { name: 'node-a', publicIP: '198.18.0.11', iface: 'eth0' },
    network: null,
    lease: null,
    backend: null,
    etcd: { endpoints: ['http://198.18.0.2:2379'], connected: false, lastContact: null, watchRevision: null },
    peers: [],
    rejectedLeases: { total: 0, leases: [] },
  };
}

/** The same agent once running with host-gw and one programmed peer. */
export function runningStatus(): AgentStatus {
  return {
    ...startingStatus(),
    state: 'running',
    ready: true,
    waitingFor: [],
    network: { network: '10.244.0.0/16', subnetLen: 24, subnetMin: '10.244.1.0', subnetMax: '10.244.255.0', backendType: 'host-gw', changedInEtcd: [] },
    lease: { subnet: '10.244.7.0/24', expiresAt: '2030-01-01T00:00:00.000Z', etcdLeaseId: '7587', acquiredAt: '2029-12-31T00:00:00.000Z' },
    backend: { type: 'host-gw', mtu: 1500, device: null, routes: 1 },
    etcd: { endpoints: ['http://198.18.0.2:2379'], connected: true, lastContact: '2029-12-31T00:00:01.000Z', watchRevision: '42' },
    peers: [{ subnet: '10.244.9.0/24', publicIP: '198.18.0.12', backendType: 'host-gw', state: 'programmed', since: '2029-12-31T00:00:01.000Z' }],
  };
}

/** A StatusSource whose answer a test sets. */
export function fakeSource(initial: AgentStatus): StatusSource & { set(s: AgentStatus): void; live(): boolean; setLive(v: boolean): void } {
  let current = initial;
  let live = true;
  return {
    status: () => current,
    live: () => live,
    set: (s) => (current = s),
    setLive: (v) => (live = v),
  };
}
