import { describe, expect, it } from 'vitest';
import { runBatchLines } from '../../src/kernel/batch.js';
import type { ExecOptions, ExecResult } from '../../src/kernel/exec.js';
import { createFdbOps, fdbBatchLine, parseFdbList } from '../../src/kernel/fdb.js';
import { createNeighOps, neighBatchLine, parseNeighList } from '../../src/kernel/neigh.js';
import { routeBatchLine, type ExecFn } from '../../src/kernel/routes.js';
import { parseVxlanLinks, vxlanAddArgs, vxlanConfigureLines, vxlanIncompat, type VxlanSpec } from '../../src/kernel/vxlan.js';

// Captured from iproute2 6.1 in a namespace.
const NEIGH = '[{"dst":"10.244.2.0","lladdr":"0A:00:00:00:00:02","state":["PERMANENT"]},{"dst":"10.244.5.0","state":["FAILED"]},{"dst":"10.244.6.0","lladdr":"0a:00:00:00:00:06","state":["REACHABLE"]}]';
const FDB =
  '[{"mac":"0a:00:00:00:00:03","dst":"198.18.0.13","flags":["self"],"state":"permanent"},{"mac":"0a:00:00:00:00:02","dst":"198.18.0.12","flags":["self"],"state":"permanent"},' +
  '{"mac":"0a:00:00:00:00:07","dst":"198.18.0.17","flags":["self"],"state":""},{"mac":"00:00:00:00:00:00","dst":"fe80::1","flags":["self"],"state":"permanent"}]';
const LINK =
  '[{"ifindex":4,"ifname":"flannel.1","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1450,"address":"02:11:22:33:44:55",' +
  '"linkinfo":{"info_kind":"vxlan","info_data":{"id":1,"local":"198.18.0.11","link":"eth0","port_range":{"low":0,"high":0},"port":8472,"learning":false,"ttl":0,"df":"unset","ageing":300,"udp_csum":true}},' +
  '"addr_info":[{"family":"inet","local":"10.244.1.0","prefixlen":32,"scope":"global","label":"flannel.1"},{"family":"inet6","local":"fe80::11:22ff:fe33:4455","prefixlen":64,"scope":"link"}]}]';

const SPEC: VxlanSpec = { name: 'flannel.1', vni: 1, local: '198.18.0.11', dev: 'eth0', port: 0, learning: false, gbp: false, mac: '02:11:22:33:44:55', mtu: 1450, address: '10.244.1.0/32' };

function fakeExec(answer: (input: string, cmd: string) => Partial<ExecResult>): { run: ExecFn; calls: { cmd: string; args: readonly string[]; opts: ExecOptions }[] } {
  const calls: { cmd: string; args: readonly string[]; opts: ExecOptions }[] = [];
  const run: ExecFn = (cmd, args, opts = {}) => {
    calls.push({ cmd, args, opts });
    return Promise.resolve({ stdout: '', stderr: '', code: 0, ...answer(opts.input ?? '', cmd) });
  };
  return { run, calls };
}

describe('batch runs (ip and bridge -force -batch -)', () => {
  it('runs every line in one process and reports failed lines by index', async () => {
    const { run, calls } = fakeExec(() => ({ code: 1, stderr: 'RTNETLINK answers: No such file or directory\nCommand failed -:2\n' }));
    expect(await runBatchLines(run, 'bridge', [], ['fdb a', 'fdb b', 'fdb c'], { netns: 'ns1' })).toEqual([{ index: 1, reason: 'RTNETLINK answers: No such file or directory' }]);
    expect(calls).toEqual([{ cmd: 'bridge', args: ['-force', '-batch', '-'], opts: { netns: 'ns1', input: 'fdb a\nfdb b\nfdb c\n', allowFailure: true } }]);
  });

  it('reports every line as not applied from where `ip neigh` exited (it names no line)', async () => {
    const { run } = fakeExec(() => ({ code: 2, stderr: 'RTNETLINK answers: No such file or directory\n' }));
    const failed = await runBatchLines(run, 'ip', [], ['neigh replace a', 'neigh del b']);
    expect(failed.map((f) => f.index)).toEqual([0, 1]);
    expect(failed[0]!.reason).toContain('batch aborted');
    expect(await runBatchLines(run, 'ip', [], [])).toEqual([]);
  });
});

describe('neighbours (ip neigh)', () => {
  it('builds one batch line per change and parses permanent entries only', () => {
    expect(neighBatchLine({ op: 'replace', ip: '10.244.2.0', mac: '0a:00:00:00:00:02', dev: 'flannel.1' })).toBe('neigh replace 10.244.2.0 lladdr 0a:00:00:00:00:02 dev flannel.1 nud permanent');
    expect(neighBatchLine({ op: 'delete', ip: '10.244.2.0', dev: 'flannel.1' })).toBe('neigh del 10.244.2.0 dev flannel.1');
    expect(parseNeighList(NEIGH)).toEqual([{ ip: '10.244.2.0', mac: '0a:00:00:00:00:02' }]);
    expect(parseNeighList('')).toEqual([]);
  });

  it('applies all changes in one process and refuses malformed ones before ip sees them', async () => {
    const { run, calls } = fakeExec(() => ({}));
    const failed = await createNeighOps(run, 'ns1').apply([
      { op: 'replace', ip: '10.244.2.0', mac: '0a:00:00:00:00:02', dev: 'flannel.1' },
      { op: 'replace', ip: '10.244.3.0', mac: 'nope', dev: 'flannel.1' },
      { op: 'delete', ip: '10.244.4.0', dev: 'flannel.1' },
    ]);
    expect(failed).toMatchObject([{ change: { ip: '10.244.3.0' }, reason: 'invalid MAC address "nope"' }]);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.opts.input).toBe('neigh replace 10.244.2.0 lladdr 0a:00:00:00:00:02 dev flannel.1 nud permanent\nneigh del 10.244.4.0 dev flannel.1\n');
  });
});

describe('FDB entries (bridge fdb)', () => {
  it('builds one batch line per change and parses permanent self entries towards IPv4 VTEPs only', () => {
    expect(fdbBatchLine({ op: 'replace', mac: '0a:00:00:00:00:02', dst: '198.18.0.12', dev: 'flannel.1' })).toBe('fdb replace 0a:00:00:00:00:02 dev flannel.1 dst 198.18.0.12 self permanent');
    expect(fdbBatchLine({ op: 'delete', mac: '0a:00:00:00:00:02', dst: '198.18.0.12', dev: 'flannel.1' })).toBe('fdb del 0a:00:00:00:00:02 dev flannel.1 dst 198.18.0.12 self');
    expect(parseFdbList(FDB)).toEqual([{ mac: '0a:00:00:00:00:03', dst: '198.18.0.13' }, { mac: '0a:00:00:00:00:02', dst: '198.18.0.12' }]);
  });

  it('runs bridge once for the whole batch and reports the failed line', async () => {
    const { run, calls } = fakeExec(() => ({ code: 1, stderr: 'RTNETLINK answers: No such file or directory\nCommand failed -:1\n' }));
    const failed = await createFdbOps(run).apply([
      { op: 'delete', mac: '0a:00:00:00:00:09', dst: '198.18.0.19', dev: 'flannel.1' },
      { op: 'replace', mac: '0a:00:00:00:00:02', dst: '198.18.0.12', dev: 'flannel.1' },
    ]);
    expect(calls.map((c) => [c.cmd, ...c.args])).toEqual([['bridge', '-force', '-batch', '-']]);
    expect(failed).toEqual([{ change: { op: 'delete', mac: '0a:00:00:00:00:09', dst: '198.18.0.19', dev: 'flannel.1' }, reason: 'RTNETLINK answers: No such file or directory' }]);
  });
});

describe('the VXLAN device (ip link)', () => {
  it('parses a VXLAN link with its attributes and IPv4 addresses', () => {
    expect(parseVxlanLinks(LINK)).toEqual([
      { name: 'flannel.1', kind: 'vxlan', vni: 1, local: '198.18.0.11', dev: 'eth0', port: 8472, learning: false, gbp: false, mac: '02:11:22:33:44:55', mtu: 1450, up: true, ipv4: ['10.244.1.0/32'] },
    ]);
  });

  it('tells a compatible device from one that must be recreated', () => {
    const link = parseVxlanLinks(LINK)[0]!;
    expect(vxlanIncompat(link, SPEC)).toBeNull();
    expect(vxlanIncompat(link, { ...SPEC, port: 8472 })).toBeNull(); // 0 is the kernel's 8472
    expect(vxlanIncompat(link, { ...SPEC, vni: 2 })).toContain('VNI');
    expect(vxlanIncompat(link, { ...SPEC, local: '198.18.0.99' })).toContain('local');
    expect(vxlanIncompat(link, { ...SPEC, dev: 'eth1' })).toContain('dev');
    expect(vxlanIncompat(link, { ...SPEC, port: 4789 })).toContain('port');
    expect(vxlanIncompat(link, { ...SPEC, gbp: true })).toContain('gbp');
    expect(vxlanIncompat({ ...link, kind: 'veth' }, SPEC)).toContain('kind');
  });

  it('creates the device as flannel does, with our MAC and MTU, and configures only what differs', () => {
    expect(vxlanAddArgs(SPEC).join(' ')).toBe('link add flannel.1 address 02:11:22:33:44:55 mtu 1450 type vxlan id 1 local 198.18.0.11 dev eth0 dstport 8472 nolearning');
    expect(vxlanAddArgs({ ...SPEC, port: 4789, learning: true, gbp: true }).join(' ')).toContain('dstport 4789 gbp');
    const link = parseVxlanLinks(LINK)[0]!;
    expect(vxlanConfigureLines(link, SPEC)).toEqual([]);
    expect(vxlanConfigureLines({ ...link, mac: '0a:0a:0a:0a:0a:0a', up: false, ipv4: ['10.244.7.0/32'] }, SPEC)).toEqual([
      'link set dev flannel.1 address 02:11:22:33:44:55',
      'addr del 10.244.7.0/32 dev flannel.1',
      'addr replace 10.244.1.0/32 dev flannel.1',
      'link set dev flannel.1 up',
    ]);
  });

  it('writes onlink routes only when asked', () => {
    expect(routeBatchLine({ op: 'replace', dst: '10.244.2.0/24', gateway: '10.244.2.0', dev: 'flannel.1', proto: 116, onlink: true })).toBe('route replace 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink proto 116');
    expect(routeBatchLine({ op: 'replace', dst: '10.244.2.0/24', gateway: '198.18.0.12', dev: 'eth0', proto: 116 })).toBe('route replace 10.244.2.0/24 via 198.18.0.12 dev eth0 proto 116');
  });
});
