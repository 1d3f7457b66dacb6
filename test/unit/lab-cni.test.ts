import { describe, expect, it } from 'vitest';
import { renderConflist } from '../../src/agent/cni-conflist.js';
import { parseCidr } from '../../src/lib/ipv4.js';
import { cniEnv, conflistPluginConfs, loopbackConf, parseSubnetEnv, resultIpv4, type FlannelEnv } from '../../src/tools/lab/cni.js';

const SUBNET_ENV = 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n';

function parsed(text: string): FlannelEnv {
  const r = parseSubnetEnv(text);
  if (!r.ok) throw new Error(r.reason);
  return r.env;
}

describe('lab CNI derivation: subnet.env', () => {
  it('parses the contract format', () => {
    expect(parsed(SUBNET_ENV)).toEqual({ network: '10.244.0.0/16', subnet: '10.244.7.1/24', subnetNet: '10.244.7.0/24', mtu: 1500, ipMasq: false });
  });

  it('tolerates IPv6 lines, blank lines and surrounding spaces', () => {
    const text = `\n${SUBNET_ENV}FLANNEL_IPV6_NETWORK=fd00::/56\nFLANNEL_IPV6_SUBNET=fd00:0:0:7::1/64\n  FLANNEL_IPMASQ=true  \n`;
    expect(parsed(text)).toMatchObject({ subnetNet: '10.244.7.0/24', ipMasq: true });
  });

  it.each([
    ['no network', SUBNET_ENV.replace(/FLANNEL_NETWORK=.*\n/, ''), /FLANNEL_NETWORK/],
    ['host bits in network', SUBNET_ENV.replace('10.244.0.0/16', '10.244.0.1/16'), /FLANNEL_NETWORK/],
    ['no subnet', SUBNET_ENV.replace(/FLANNEL_SUBNET=.*\n/, ''), /FLANNEL_SUBNET/],
    ['bad mtu', SUBNET_ENV.replace('1500', 'big'), /FLANNEL_MTU/],
    ['bad ipmasq', SUBNET_ENV.replace('=false', '=no'), /FLANNEL_IPMASQ/],
    ['empty file', '', /FLANNEL_NETWORK/],
  ])('rejects %s', (_what, text, reason) => {
    const r = parseSubnetEnv(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });
});

describe("lab CNI: the agent's conflist, handed to its plugins as a runtime does", () => {
  it('gives each plugin the list name and cniVersion, and host-local a per-host dataDir', () => {
    const conflist = renderConflist({ name: 'cbr0', network: parseCidr('10.244.0.0/16')!, subnet: parseCidr('10.244.7.0/24')!, mtu: 1500, ipMasq: false });
    expect(conflistPluginConfs(conflist, '/tmp/twill-lab/x/h1/cni')).toEqual([
      {
        cniVersion: '0.3.1',
        name: 'cbr0',
        type: 'bridge',
        bridge: 'cni0',
        isGateway: true,
        isDefaultGateway: true,
        hairpinMode: true,
        ipMasq: true,
        mtu: 1500,
        ipam: { type: 'host-local', ranges: [[{ subnet: '10.244.7.0/24' }]], routes: [{ dst: '10.244.0.0/16' }], dataDir: '/tmp/twill-lab/x/h1/cni' },
      },
      { cniVersion: '0.3.1', name: 'cbr0', type: 'portmap', capabilities: { portMappings: true } },
    ]);
  });
});

describe('lab CNI: loopback and the environment', () => {
  it('has a loopback conf and the CNI environment', () => {
    expect(loopbackConf()).toEqual({ cniVersion: '0.3.1', name: 'lo', type: 'loopback' });
    const call = { command: 'ADD', containerId: 'twl-x-h1-p1', netnsPath: '/var/run/netns/twl-x-h1-p1', ifName: 'eth0', cniPath: '/usr/lib/cni' } as const;
    expect(cniEnv(call, '/usr/bin')).toEqual({
      PATH: '/usr/bin',
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'twl-x-h1-p1',
      CNI_NETNS: '/var/run/netns/twl-x-h1-p1',
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/usr/lib/cni',
    });
  });
});

describe('lab CNI derivation: the plugin result', () => {
  it('takes the first IPv4 address', () => {
    const result = {
      cniVersion: '0.3.1',
      interfaces: [{ name: 'cni0' }, { name: 'eth0', sandbox: '/var/run/netns/p' }],
      ips: [
        { version: '6', interface: 1, address: 'fd00::2/64' },
        { version: '4', interface: 1, address: '10.244.7.2/24', gateway: '10.244.7.1' },
      ],
    };
    expect(resultIpv4(JSON.stringify(result))).toBe('10.244.7.2');
  });

  it.each(['not json', '{}', '{"ips":"x"}', '{"ips":[{"address":"fd00::2/64"}]}'])('is null for %s', (text) => {
    expect(resultIpv4(text)).toBeNull();
  });
});
