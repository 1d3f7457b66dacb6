import { describe, expect, it } from 'vitest';
import { hostGwPeers, l2Verdict, planRoutes, type DesiredRoute } from '../../src/backend/host-gw/route-plan.js';
import type { KernelRoute } from '../../src/kernel/index.js';
import { parseCidr } from '../../src/lib/ipv4.js';
import type { Lease } from '../../src/subnet/types.js';

function lease(subnet: string, publicIP: string, backendType?: string): Lease {
  return {
    subnet: parseCidr(subnet)!,
    attrs: { publicIP, publicIPv6: null, ...(backendType === undefined ? {} : { backendType }) },
    etcdLeaseId: '1',
    modRevision: '1',
  };
}

const SELF = { subnet: '10.244.1.0/24', publicIP: '198.18.0.11' };
const want = (dst: string, gateway: string): DesiredRoute => ({ dst, gateway, dev: 'eth0' });
const have = (dst: string, gateway: string, dev = 'eth0'): KernelRoute => ({ dst, gateway, dev });

describe('hostGwPeers', () => {
  it('keeps host-gw peers only, never our own lease or PublicIP', () => {
    const leases = [
      lease('10.244.3.0/24', '198.18.0.13', 'host-gw'),
      lease('10.244.1.0/24', '198.18.0.11', 'host-gw'), // own lease
      lease('10.244.9.0/24', '198.18.0.11', 'host-gw'), // an old lease of ours
      lease('10.244.2.0/24', '198.18.0.12', 'host-gw'),
      lease('10.244.4.0/24', '198.18.0.14', 'vxlan'),
      lease('10.244.5.0/24', '198.18.0.15'), // udp writes no BackendType
    ];
    expect(hostGwPeers(leases, SELF)).toEqual([
      { subnet: '10.244.2.0/24', publicIP: '198.18.0.12' },
      { subnet: '10.244.3.0/24', publicIP: '198.18.0.13' },
    ]);
  });
});

describe('l2Verdict', () => {
  it('is on-link only for a direct route through the external interface', () => {
    expect(l2Verdict({ dev: 'eth0' }, 'eth0')).toEqual({ onLink: true });
    expect(l2Verdict({ dev: 'eth0', gateway: '198.18.0.1' }, 'eth0')).toMatchObject({ onLink: false });
    expect(l2Verdict({ dev: 'eth1' }, 'eth0')).toMatchObject({ onLink: false });
    expect(l2Verdict(null, 'eth0')).toMatchObject({ onLink: false });
    expect(l2Verdict(undefined, 'eth0')).toMatchObject({ onLink: false });
  });
});

describe('planRoutes', () => {
  it('adds missing routes', () => {
    expect(planRoutes([want('10.244.2.0/24', '198.18.0.12')], [], 116)).toEqual([
      { op: 'replace', dst: '10.244.2.0/24', gateway: '198.18.0.12', dev: 'eth0', proto: 116 },
    ]);
  });

  it('replaces a route whose gateway or device changed', () => {
    const desired = [want('10.244.2.0/24', '198.18.0.22'), want('10.244.3.0/24', '198.18.0.13')];
    const actual = [have('10.244.2.0/24', '198.18.0.12'), have('10.244.3.0/24', '198.18.0.13', 'eth1')];
    expect(planRoutes(desired, actual, 116).map((c) => [c.op, c.dst])).toEqual([
      ['replace', '10.244.2.0/24'],
      ['replace', '10.244.3.0/24'],
    ]);
  });

  it('deletes stale routes of ours, by proto', () => {
    const actual = [have('10.244.2.0/24', '198.18.0.12'), have('10.244.7.0/24', '198.18.0.17')];
    expect(planRoutes([want('10.244.2.0/24', '198.18.0.12')], actual, 116)).toEqual([{ op: 'delete', dst: '10.244.7.0/24', proto: 116 }]);
  });

  it('plans nothing when kernel and peers agree', () => {
    const desired = [want('10.244.2.0/24', '198.18.0.12'), want('10.244.3.0/24', '198.18.0.13')];
    const actual = [have('10.244.3.0/24', '198.18.0.13'), have('10.244.2.0/24', '198.18.0.12')];
    expect(planRoutes(desired, actual, 116)).toEqual([]);
    expect(planRoutes([], [], 116)).toEqual([]);
  });

  it('ignores other backends and our own lease end to end', () => {
    const peers = hostGwPeers([lease('10.244.1.0/24', '198.18.0.11', 'host-gw'), lease('10.244.4.0/24', '198.18.0.14', 'vxlan')], SELF);
    expect(planRoutes(peers.map((p) => want(p.subnet, p.publicIP)), [], 116)).toEqual([]);
  });
});
