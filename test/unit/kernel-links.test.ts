import { describe, expect, it } from 'vitest';
import type { ExecOptions, ExecResult } from '../../src/kernel/exec.js';
import { createLinkOps, defaultRouteDev, parseAddrShow, primaryIpv4 } from '../../src/kernel/links.js';
import type { ExecFn } from '../../src/kernel/routes.js';

// Captured from iproute2 6.1 (`ip -json addr show`), trimmed of fields twill ignores.
const ETH0 =
  '{"ifindex":2,"ifname":"eth0","flags":["UP"],"mtu":1450,"addr_info":[' +
  '{"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"},' +
  '{"family":"inet","local":"198.18.0.11","prefixlen":24,"scope":"global","label":"eth0"},' +
  '{"family":"inet","local":"198.18.0.99","prefixlen":24,"scope":"global","label":"eth0"}]}';
const LO = '{"ifindex":1,"ifname":"lo","mtu":65536,"addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]}';
const BARE = '{"ifindex":3,"ifname":"eth1","mtu":9000,"addr_info":[{"family":"inet6","local":"fe80::2","scope":"link"}]}';
const DEFAULT_ROUTE = '[{"dst":"default","gateway":"198.18.0.1","dev":"eth0","flags":[]}]';

function fakeIp(answers: Record<string, Partial<ExecResult>>): { run: ExecFn; calls: { args: readonly string[]; opts: ExecOptions }[] } {
  const calls: { args: readonly string[]; opts: ExecOptions }[] = [];
  const run: ExecFn = (_cmd, args, opts = {}) => {
    calls.push({ args, opts });
    const answer = answers[args.join(' ')] ?? { code: 1, stderr: 'Device does not exist.' };
    return Promise.resolve({ stdout: '', stderr: '', code: 0, ...answer });
  };
  return { run, calls };
}

const IP = {
  'show eth0': { '-json addr show dev eth0': { stdout: `[${ETH0}]` } },
  'show eth1': { '-json addr show dev eth1': { stdout: `[${BARE}]` } },
  all: { '-json addr show': { stdout: `[${LO},${ETH0},${BARE}]` } },
  default: { '-json -4 route show default': { stdout: DEFAULT_ROUTE } },
  'no default': { '-json -4 route show default': { stdout: '[]' } },
};

describe('ip addr JSON parsing', () => {
  it('keeps IPv4 addresses only', () => {
    const [link] = parseAddrShow(`[${ETH0}]`);
    expect(link).toEqual({
      name: 'eth0',
      mtu: 1450,
      ipv4: [
        { local: '198.18.0.11', scope: 'global' },
        { local: '198.18.0.99', scope: 'global' },
      ],
    });
    expect(primaryIpv4(link!)).toBe('198.18.0.11');
  });

  it('has no primary address for host-scoped or IPv6-only links', () => {
    expect(primaryIpv4(parseAddrShow(`[${LO}]`)[0]!)).toBeNull();
    expect(primaryIpv4(parseAddrShow(`[${BARE}]`)[0]!)).toBeNull();
  });

  it('finds the default route device', () => {
    expect(defaultRouteDev(DEFAULT_ROUTE)).toBe('eth0');
    expect(defaultRouteDev('[]')).toBeNull();
  });
});

describe('resolveExternal', () => {
  it('by name', async () => {
    const { run, calls } = fakeIp(IP['show eth0']);
    expect(await createLinkOps(run, 'ns1').resolveExternal('eth0')).toEqual({ name: 'eth0', address: '198.18.0.11', mtu: 1450 });
    expect(calls[0]?.opts.netns).toBe('ns1');
  });

  it('by address: the link carrying it, with that address', async () => {
    const { run } = fakeIp(IP.all);
    expect(await createLinkOps(run).resolveExternal('198.18.0.99')).toEqual({ name: 'eth0', address: '198.18.0.99', mtu: 1450 });
  });

  it('by default: the interface of the default route', async () => {
    const { run } = fakeIp({ ...IP.default, ...IP['show eth0'] });
    expect(await createLinkOps(run).resolveExternal()).toEqual({ name: 'eth0', address: '198.18.0.11', mtu: 1450 });
  });

  it('fails with TWILL_ERR_KERNEL_IFACE naming the interface', async () => {
    const cases: [Record<string, Partial<ExecResult>>, string | undefined, RegExp][] = [
      [{}, 'eth7', /eth7 does not exist/],
      [IP['show eth1'], 'eth1', /eth1 has no IPv4/],
      [IP.all, '192.0.2.1', /192\.0\.2\.1/],
      [IP['no default'], undefined, /default route/],
    ];
    for (const [answers, iface, message] of cases) {
      const err = await createLinkOps(fakeIp(answers).run)
        .resolveExternal(iface)
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'TWILL_ERR_KERNEL_IFACE', message: expect.stringMatching(message) as unknown });
    }
  });
});
