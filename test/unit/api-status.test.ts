import { describe, expect, it } from 'vitest';
import { parseHostPort } from '../../src/api/addr.js';
import { Telemetry } from '../../src/agent/telemetry.js';
import { renderAgentStatus } from '../../src/cli/status-render.js';
import { parseCidr } from '../../src/lib/ipv4.js';
import type { Lease } from '../../src/subnet/types.js';
import { runningStatus, startingStatus } from '../support/status.js';

const LEASE: Lease = { subnet: parseCidr('10.244.7.0/24')!, attrs: { publicIP: '198.18.0.11', publicIPv6: null, backendType: 'host-gw' }, etcdLeaseId: '7587', modRevision: '3' };
const parts = { state: 'running', iface: { name: 'eth0', address: '198.18.0.11', mtu: 1500 }, config: null, backend: null, watchRevision: '9' };

describe('telemetry (readiness, lease, etcd)', () => {
  it('is ready only with lease, programmed backend and subnet file; a lost lease takes readiness away', () => {
    const events: string[] = [];
    const observer = { leaseEvent: (e: string) => events.push(e), watchEvent: (t: string) => events.push(t), leaseRejected: () => undefined, reconcileDuration: () => undefined, routeChange: () => undefined };
    let t = new Date('2030-01-01T00:00:00Z');
    const tel = new Telemetry({ nodeName: 'n1', etcdEndpoints: ['http://e:2379'], version: 'v', observer, now: () => t });
    expect(tel.status(parts)).toMatchObject({ ready: false, waitingFor: ['lease', 'backend', 'subnet-file'], lease: null });
    tel.leaseAcquired(LEASE, 3600);
    tel.backendStarting();
    tel.subnetFileWritten();
    expect(tel.status(parts)).toMatchObject({ ready: false, waitingFor: ['backend'] });
    tel.backendProgrammed();
    expect(tel.status(parts)).toMatchObject({ ready: true, waitingFor: [], lease: { subnet: '10.244.7.0/24', etcdLeaseId: '7587', expiresAt: '2030-01-01T01:00:00.000Z' } });
    expect(tel.status({ ...parts, state: 'stopping' }).ready).toBe(false);
    t = new Date('2030-01-01T00:20:00Z');
    tel.leaseRenewed(LEASE, 3600);
    expect(tel.status(parts).lease?.expiresAt).toBe('2030-01-01T01:20:00.000Z');
    tel.leaseLost();
    expect(tel.status(parts)).toMatchObject({ ready: false, waitingFor: ['lease'], lease: null });
    tel.leaseAcquired({ ...LEASE, etcdLeaseId: '0' }, 3600);
    expect(tel.status(parts)).toMatchObject({ ready: true, lease: { expiresAt: null, etcdLeaseId: '0' } });
    tel.watchEvent('delete');
    expect(events).toEqual(['acquired', 'renewed', 'lost', 'acquired', 'delete']);
  });

  it('tracks etcd contact from RPCs and the watch connection', () => {
    let t = new Date('2030-01-01T00:00:00Z');
    const tel = new Telemetry({ nodeName: 'n1', etcdEndpoints: ['http://e:2379'], version: 'v', now: () => t });
    expect(tel.status(parts).etcd).toEqual({ endpoints: ['http://e:2379'], connected: false, lastContact: null, watchRevision: '9' });
    tel.etcdRpc(true);
    expect(tel.status(parts).etcd).toMatchObject({ connected: true, lastContact: '2030-01-01T00:00:00.000Z' });
    t = new Date('2030-01-01T00:01:00Z');
    tel.etcdWatch(false);
    expect(tel.status(parts).etcd).toMatchObject({ connected: false, lastContact: '2030-01-01T00:00:00.000Z' });
    tel.etcdWatch(true);
    // A watch back on a member that may not know yet it lost its quorum: an RPC must answer first.
    expect(tel.status(parts).etcd).toMatchObject({ connected: false, lastContact: '2030-01-01T00:01:00.000Z' });
    tel.etcdRpc(true);
    expect(tel.status(parts).etcd).toMatchObject({ connected: true });
    tel.etcdRpc(false);
    expect(tel.status(parts).etcd.connected).toBe(false);
  });
});

describe('--status-addr / --addr', () => {
  it('takes HOST:PORT, a bare host (port 8475), and refuses the rest with a coded error', () => {
    expect(parseHostPort('--status-addr', '198.18.0.11:9000')).toEqual({ host: '198.18.0.11', port: 9000 });
    expect(parseHostPort('--status-addr', 'localhost')).toEqual({ host: 'localhost', port: 8475 });
    for (const bad of ['1.2.3.4:0', '1.2.3.4:70000', '999.1.1.1:80', ':80', 'a b:1', 'http://x:1']) {
      expect(() => parseHostPort('--status-addr', bad), bad).toThrow(expect.objectContaining({ code: 'TWILL_ERR_OPTION_INVALID' }) as Error);
    }
  });
});

describe('twill status rendering', () => {
  it('shows sections and a peer table', () => {
    const text = renderAgentStatus(runningStatus(), new Date('2029-12-31T23:00:00Z'));
    expect(text).toContain('node     node-a (198.18.0.11 on eth0)');
    expect(text).toContain('state    running, ready');
    expect(text).toContain('lease    10.244.7.0/24, etcd lease 7587, expires 2030-01-01T00:00:00.000Z (in 1h0m)');
    expect(text).toContain('etcd     http://198.18.0.2:2379: connected');
    expect(text).toContain('rejected no lease keys');
    expect(text).toMatch(/^SUBNET\s+PUBLIC IP\s+BACKEND\s+STATE\s+SINCE\s+REASON$/m);
    expect(text).toMatch(/^10\.244\.9\.0\/24\s+198\.18\.0\.12\s+host-gw\s+programmed\s+2029/m);
  });

  it('counts rejected lease keys and names the first few', () => {
    const lease = (subnet: string | null, reason: 'bad-key' | 'outside-network' | 'overlaps-own') => ({ key: `/k/${subnet ?? 'junk'}`, subnet, publicIP: null, reason, detail: 'd', since: 'x' });
    const leases = [lease('10.99.0.0/24', 'outside-network'), lease('10.244.7.128/25', 'overlaps-own'), lease(null, 'bad-key'), lease('10.244.6.0/23', 'overlaps-own')];
    const text = renderAgentStatus({ ...runningStatus(), rejectedLeases: { total: 5, leases } });
    expect(text).toContain('rejected 5 lease key(s), not programmed: 10.99.0.0/24 outside-network, 10.244.7.128/25 overlaps-own, /k/junk bad-key (+2 more, see --json)');
  });

  it('says what a starting agent waits for, and shows udp traffic per peer', () => {
    expect(renderAgentStatus(startingStatus())).toContain('NOT READY (waiting for lease, backend, subnet-file)');
    const udp = {
      ...runningStatus(),
      backend: { type: 'udp', mtu: 1472, device: 'twill0', routes: 1, details: { drops: { 'unknown-peer': 2, oversize: 0 }, tunnel: { port: 8285, icmpSent: 0, groSuperPackets: 2, groSegments: 7, packetsIn: 1, bytesIn: 84, packetsOut: 2, bytesOut: 168 } } },
      peers: [{ subnet: '10.244.9.0/24', publicIP: '198.18.0.12', backendType: null, state: 'programmed' as const, since: 'x', traffic: { packetsIn: 1, bytesIn: 84, packetsOut: 2, bytesOut: 168 } }],
    };
    const text = renderAgentStatus(udp);
    expect(text).toContain('tunnel   udp port 8285: in 1 pkt / 84 B, out 2 pkt / 168 B, icmp sent 0, gro 7 segments in 2 super-packets');
    expect(text).toContain('drops    unknown-peer 2');
    expect(text).toMatch(/^10\.244\.9\.0\/24\s+198\.18\.0\.12\s+-\s+programmed\s+x\s+1\/84\s+2\/168$/m);
  });
});
