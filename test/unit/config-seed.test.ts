import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { seedNetworkConfig } from '../../src/agent/config-seed.js';
import { readNetConfigFile } from '../../src/cli/net-config-file.js';
import { agentHarness, NETWORK_CONFIG, type AgentHarness } from '../support/agent-harness.js';
import { memoryLogger } from '../support/logger.js';
import { MemoryRegistry } from '../support/memory-registry.js';
import { RECORDING_TYPE } from '../support/recording-backend.js';

const FILE_CONFIG = `{"Network":"10.244.0.0/16","SubnetLen":26,"Backend":{"Type":"${RECORDING_TYPE}"}}`;

let h: AgentHarness | undefined;
afterEach(async () => {
  await h?.dispose();
  h = undefined;
});

describe('network config from --net-config-file', () => {
  it('is created in etcd when absent, once however many agents start at once', async () => {
    const registry = new MemoryRegistry();
    const logs = Array.from({ length: 10 }, () => memoryLogger());
    const seed = { path: '/etc/twill/net-conf.json', text: FILE_CONFIG };
    await Promise.all(logs.map((l) => seedNetworkConfig(registry, seed, l.logger)));
    expect(await registry.getConfig()).toBe(FILE_CONFIG);
    const created = logs.flatMap((l) => l.lines()).filter((l) => l.msg === 'network config created in etcd from --net-config-file');
    expect(created).toHaveLength(1);
    expect(logs.flatMap((l) => l.lines()).filter((l) => l.level === 40)).toEqual([]); // the same text: nothing to warn about
  });

  it('lets an agent start on a cluster whose etcd has no config yet', async () => {
    h = await agentHarness({ config: null, netConfig: FILE_CONFIG });
    await h.agent.start();
    expect(await h.registry.getConfig()).toBe(FILE_CONFIG);
    expect(h.backends[0]!.ownLease.subnet.len).toBe(26); // the file's SubnetLen is in force
  });

  it("uses etcd's config when there is one, and says once which fields differ from the file", async () => {
    h = await agentHarness({ netConfig: FILE_CONFIG }); // etcd holds NETWORK_CONFIG (SubnetLen 24)
    await h.agent.start();
    expect(await h.registry.getConfig()).toBe(NETWORK_CONFIG);
    expect(h.backends[0]!.ownLease.subnet.len).toBe(24);
    const warned = h.logLines().filter((l) => l.msg === "network config in etcd differs from --net-config-file; using etcd's");
    expect(warned).toMatchObject([{ changed: ['SubnetLen'], file: '/etc/twill/net-conf.json' }]);
  });

  it('refuses a file that is not a valid config, naming the file and the field, before anything is written', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'twill-netconf-'));
    try {
      const bad = join(dir, 'net-conf.json');
      await writeFile(bad, '{"Network":"10.244.0.0/16","SubnetLen":40,"Backend":{"Type":"host-gw"}}');
      expect(() => readNetConfigFile(bad)).toThrow(expect.objectContaining({ code: 'TWILL_ERR_OPTION_INVALID', details: expect.objectContaining({ field: 'SubnetLen' }) }));
      expect(() => readNetConfigFile(bad)).toThrow(/--net-config-file .*net-conf\.json: .*SubnetLen/);
      expect(() => readNetConfigFile(join(dir, 'missing.json'))).toThrow(/--net-config-file: cannot read .*missing\.json/);
      await writeFile(bad, FILE_CONFIG.replace(RECORDING_TYPE, 'host-gw'));
      expect(readNetConfigFile(bad)).toEqual({ path: bad, text: FILE_CONFIG.replace(RECORDING_TYPE, 'host-gw') });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
