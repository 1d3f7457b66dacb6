import { describe, expect, it } from 'vitest';
import { formatCidr, parseCidr } from '../../src/lib/ipv4.js';
import { configKey, formatLeaseValue, leaseKey, parseLeaseKey, parseLeaseValue } from '../../src/subnet/lease-format.js';

const P = '/coreos.com/network';

describe('lease keys', () => {
  it('formats flannel keys', () => {
    expect(leaseKey(P, parseCidr('10.244.1.0/24')!)).toBe('/coreos.com/network/subnets/10.244.1.0-24');
    expect(configKey(P)).toBe('/coreos.com/network/config');
    expect(configKey('/x/')).toBe('/x/config');
  });

  it('parses flannel keys, including dual-stack ones, and ignores others', () => {
    expect(formatCidr(parseLeaseKey(P, '/coreos.com/network/subnets/10.244.1.0-24')!)).toBe('10.244.1.0/24');
    expect(formatCidr(parseLeaseKey(P, '/coreos.com/network/subnets/10.244.1.0-24&fc00::-64')!)).toBe('10.244.1.0/24');
    expect(parseLeaseKey(P, '/coreos.com/network/subnets/junk')).toBeNull();
    expect(parseLeaseKey(P, '/coreos.com/network/config')).toBeNull();
    expect(parseLeaseKey(P, '/other/subnets/10.244.1.0-24')).toBeNull();
    expect(parseLeaseKey(P, '/coreos.com/network/subnets/10.244.1.5-24')).toBeNull(); // host bits set
  });
});

describe('lease values', () => {
  it('writes host-gw leases byte-exact as flannel does', () => {
    expect(formatLeaseValue({ publicIP: '10.0.0.5', publicIPv6: null, backendType: 'host-gw' })).toBe(
      '{"PublicIP":"10.0.0.5","PublicIPv6":null,"BackendType":"host-gw"}',
    );
  });

  it('writes udp leases with no BackendType', () => {
    expect(formatLeaseValue({ publicIP: '10.0.0.5', publicIPv6: null })).toBe('{"PublicIP":"10.0.0.5","PublicIPv6":null}');
  });

  it('writes vxlan leases with BackendData last', () => {
    const attrs = { publicIP: '10.0.0.5', publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:44' } };
    expect(formatLeaseValue(attrs)).toBe(
      '{"PublicIP":"10.0.0.5","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}',
    );
  });

  it('round-trips the contract examples and tolerates extra fields', () => {
    for (const text of [
      '{"PublicIP":"10.0.0.5","PublicIPv6":null,"BackendType":"host-gw"}',
      '{"PublicIP":"10.0.0.5","PublicIPv6":null}',
      '{"PublicIP":"10.0.0.5","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}',
    ]) {
      expect(formatLeaseValue(parseLeaseValue(text)!)).toBe(text);
    }
    expect(parseLeaseValue('{"PublicIP":"10.0.0.5","Extra":1,"BackendType":"host-gw"}')).toEqual({
      publicIP: '10.0.0.5',
      publicIPv6: null,
      backendType: 'host-gw',
    });
  });

  it('rejects values without a usable PublicIP', () => {
    for (const text of ['', 'null', '{}', '{"PublicIP":"nope"}', '{"PublicIP":5}', '[']) expect(parseLeaseValue(text)).toBeNull();
  });
});
