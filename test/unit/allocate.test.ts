import { describe, expect, it } from 'vitest';
import { chooseSubnet, fitsConfig } from '../../src/subnet/allocate.js';
import { parseNetworkConfig } from '../../src/subnet/config.js';
import { formatCidr, parseCidr } from '../../src/lib/ipv4.js';
import type { Lease } from '../../src/subnet/types.js';

const config = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}');
const first = () => 0;

function lease(cidr: string, ip: string): Lease {
  return { subnet: parseCidr(cidr)!, attrs: { publicIP: ip, publicIPv6: null, backendType: 'host-gw' }, etcdLeaseId: '1', modRevision: '1' };
}

describe('subnet allocation', () => {
  it('takes over the lease that carries our PublicIP first', () => {
    const leases = [lease('10.244.1.0/24', '198.18.0.11'), lease('10.244.7.0/24', '198.18.0.12')];
    const pick = chooseSubnet({ config, leases, publicIP: '198.18.0.12', preferred: parseCidr('10.244.9.0/24'), random: first });
    expect(pick).toMatchObject({ kind: 'existing', lease: { subnet: { len: 24 } } });
    expect(pick.kind === 'existing' && formatCidr(pick.lease.subnet)).toBe('10.244.7.0/24');
  });

  it('then the preferred subnet when it is free', () => {
    const pick = chooseSubnet({ config, leases: [], publicIP: '198.18.0.12', preferred: parseCidr('10.244.9.0/24'), random: first });
    expect(pick.kind === 'new' && formatCidr(pick.subnet)).toBe('10.244.9.0/24');
  });

  it('skips a preferred subnet that is taken or outside the config', () => {
    const leases = [lease('10.244.9.0/24', '198.18.0.99')];
    for (const preferred of ['10.244.9.0/24', '10.245.9.0/24', '10.244.0.0/24']) {
      const pick = chooseSubnet({ config, leases, publicIP: '198.18.0.12', preferred: parseCidr(preferred), random: first });
      expect(pick.kind === 'new' && formatCidr(pick.subnet)).toBe('10.244.1.0/24');
    }
  });

  it('picks randomly among the first 100 free subnets from SubnetMin, never the first subnet', () => {
    const leases = [lease('10.244.1.0/24', '1.1.1.1'), lease('10.244.3.0/24', '1.1.1.2')];
    const seen: number[] = [];
    const pick = chooseSubnet({ config, leases, publicIP: '198.18.0.12', preferred: null, random: (n) => (seen.push(n), n - 1) });
    expect(seen).toEqual([100]);
    // free subnets: 2, then 4..101 (99 of them): the 100th free one is 10.244.102.0
    expect(pick.kind === 'new' && formatCidr(pick.subnet)).toBe('10.244.102.0/24');
  });

  it('reports a full network', () => {
    const small = parseNetworkConfig('{"Network":"10.9.0.0/28"}'); // four /30s, three leasable
    const leases = ['10.9.0.4/30', '10.9.0.8/30', '10.9.0.12/30'].map((c, i) => ({ ...lease(c, `1.1.1.${i}`), subnet: parseCidr(c)! }));
    expect(chooseSubnet({ config: small, leases, publicIP: '2.2.2.2', preferred: null, random: first })).toEqual({ kind: 'full' });
  });

  it('ignores an own lease that no longer fits the config', () => {
    expect(fitsConfig(config, parseCidr('10.244.0.0/25')!)).toBe(false);
    const pick = chooseSubnet({ config, leases: [lease('10.9.1.0/24', '198.18.0.12')], publicIP: '198.18.0.12', preferred: null, random: first });
    expect(pick.kind).toBe('new');
  });
});
