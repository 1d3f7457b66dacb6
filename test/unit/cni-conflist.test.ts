import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkCniNetworkName, renderConflist, writeConflist } from '../../src/agent/cni-conflist.js';
import { formatCidr, parseCidr } from '../../src/lib/ipv4.js';
import { cleanupNode } from '../../src/rules/cleanup.js';
import { agentHarness, type AgentHarness } from '../support/agent-harness.js';
import { fakeKernel } from '../support/fake-kernel.js';

const EXPECTED = new URL('../fixtures/cni/10-twill.conflist', import.meta.url);

let h: AgentHarness | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await h?.dispose();
  h = undefined;
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
const tempDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'twill-cni-'));
  dirs.push(d);
  return d;
};

describe('the CNI conflist the agent writes', () => {
  it('renders flannel’s values (bridge, host-local over the node subnet with a route to the Network, portmap) byte for byte', async () => {
    const text = renderConflist({ name: 'cbr0', network: parseCidr('10.244.0.0/16')!, subnet: parseCidr('10.244.3.0/24')!, mtu: 1450, ipMasq: true });
    expect(text).toBe(await readFile(EXPECTED, 'utf8'));
    const bridge = (ipMasq: boolean) => (JSON.parse(renderConflist({ name: 'x', network: parseCidr('10.0.0.0/8')!, subnet: parseCidr('10.1.2.0/24')!, mtu: 1500, ipMasq })) as { plugins: { ipMasq?: boolean }[] }).plugins[0]!.ipMasq;
    expect([bridge(true), bridge(false)]).toEqual([false, true]); // the bridge plugin masquerades only when twill does not
  });

  it('is written atomically, under a name the runtime ignores meanwhile, and only when it changes', async () => {
    const dir = await tempDir();
    const path = join(dir, 'net.d', '10-twill.conflist');
    expect(await writeConflist(path, 'one\n')).toBe(true);
    const first = await stat(path);
    expect(await writeConflist(path, 'one\n')).toBe(false);
    expect((await stat(path)).mtimeMs).toBe(first.mtimeMs);
    expect((await stat(path)).ino).toBe(first.ino);
    expect(await writeConflist(path, 'two\n')).toBe(true);
    expect(await readFile(path, 'utf8')).toBe('two\n');
    expect((await stat(path)).ino).not.toBe(first.ino); // a new file renamed over the old one, never rewritten in place
    expect(await readdir(join(dir, 'net.d'))).toEqual(['10-twill.conflist']); // no temporary left behind
  });

  it('is written by the agent once it holds its lease, with the backend’s MTU, and not again on a restart', async () => {
    h = await agentHarness({ cniConf: true });
    await h.agent.start();
    const path = join(h.dir, 'net.d', '10-twill.conflist');
    const conf = JSON.parse(await readFile(path, 'utf8')) as { name: string; plugins: { type: string; mtu?: number; ipam?: { ranges: { subnet: string }[][] } }[] };
    const own = formatCidr(h.backends[0]!.ownLease.subnet);
    expect(conf.name).toBe('cbr0');
    expect(conf.plugins.map((p) => p.type)).toEqual(['bridge', 'portmap']);
    expect(conf.plugins[0]!.ipam!.ranges[0]![0]!.subnet).toBe(own);
    expect(conf.plugins[0]!.mtu).toBe(1490); // the recording backend's MTU: the interface's − 10
    expect(h.logLines().filter((l) => l.msg === 'CNI config written')).toHaveLength(1);
  });

  it('checks --cni-network-name as libcni would', () => {
    expect(checkCniNetworkName('cbr0')).toBe('cbr0');
    for (const bad of ['', '-x', 'a b', 'a/b']) expect(() => checkCniNetworkName(bad)).toThrow(/--cni-network-name/);
  });

  it('is removed by --cleanup, with subnet.env', async () => {
    const dir = await tempDir();
    const [subnetFile, cniConfFile] = [join(dir, 'subnet.env'), join(dir, '10-twill.conflist')];
    await writeFile(subnetFile, 'FLANNEL_NETWORK=10.244.0.0/16\n');
    await writeFile(cniConfFile, '{}\n');
    const removed = await cleanupNode(fakeKernel().kernel, { subnetFile, cniConfFile, backends: async () => ({}) });
    expect(removed).toMatchObject({ subnetFile: true, cniConfFile: true });
    expect(await readdir(dir)).toEqual([]);
  });
});
