import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { validateNetworkConfig } from '../../src/agent/network-config.js';
import { buildServedAgent, type ServedAgent } from '../../src/agent/serve.js';
import type { AgentOptions } from '../../src/agent/options.js';
import { BACKENDS, parseBackendFlags, type BackendTable } from '../../src/backend/index.js';
import { addBackendOptions, backendFlagValues } from '../../src/cli/agent-cmd.js';
import { renderAgentStatus } from '../../src/cli/status-render.js';
import { parseCidr } from '../../src/lib/ipv4.js';
import type { AgentStatus } from '../../src/status/types.js';
import { fakeKernel } from '../support/fake-kernel.js';
import { eventually, memoryLogger } from '../support/logger.js';
import { MemoryRegistry } from '../support/memory-registry.js';
import { nullBackend } from '../support/null-backend.js';

const TABLE: BackendTable = { ...BACKENDS, [nullBackend.type]: nullBackend };
const PEER = '10.244.7.0/24';

const kernel = fakeKernel({ iface: { name: 'eth0', address: '198.18.0.11', mtu: 1500 } }).kernel;

let served: ServedAgent | null = null;
let dir = '';
afterEach(async () => {
  await served?.agent.stop();
  await served?.api.close();
  served = null;
  if (dir) await rm(dir, { recursive: true, force: true });
});

function options(subnetFile: string, flags: Readonly<Record<string, unknown>>): AgentOptions {
  return Object.freeze({
    etcdEndpoints: ['memory'], etcdPrefix: '/coreos.com/network', iface: null, publicIp: null, subnetFile,
    subnetLeaseTtlSeconds: 3600, statusAddr: { host: '127.0.0.1', port: 0 }, nodeName: 'n1', ipMasq: false, forwardRules: false,
    backendFlags: flags,
  });
}

async function startNullAgent(): Promise<{ served: ServedAgent; subnetFile: string }> {
  dir = await mkdtemp(join(tmpdir(), 'twill-null-'));
  const registry = new MemoryRegistry();
  await registry.putConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"null","greeting":"hello"}}');
  await registry.createLease(parseCidr(PEER)!, nullBackend.leaseAttrs('198.18.0.12', { greeting: 'hi' }), 3600);
  const subnetFile = join(dir, 'subnet.env');
  const flags = parseBackendFlags({ 'null-label': 'lab1' }, TABLE);
  served = buildServedAgent(options(subnetFile, flags), { logger: memoryLogger().logger, registry, kernel, backends: TABLE, defaultMetrics: false });
  await served.agent.start();
  return { served, subnetFile };
}

describe('a backend that is a folder and a line in the table (the null backend, defined in the tests)', () => {
  it('runs through the agent: its options, flag, MTU and lease, its status under backend.details, the peers', async () => {
    const { served: s, subnetFile } = await startNullAgent();
    const status = (await s.api.inject({ url: '/v1/status' })).json<AgentStatus>();
    expect(status.backend).toEqual({ type: 'null', mtu: 1493, device: null, routes: 0, details: { greeting: 'hello', label: 'lab1', batches: 1 } });
    expect(status.peers.map((p) => [p.subnet, p.publicIP, p.backendType])).toEqual([[PEER, '198.18.0.12', 'null']]);
    expect(status.network?.backendType).toBe('null');
    expect(await readFile(subnetFile, 'utf8')).toContain('FLANNEL_MTU=1493');
    expect((await s.api.inject({ url: '/readyz' })).statusCode).toBe(200);
  });

  it('registers its own metric, read from its details at scrape time', async () => {
    const { served: s } = await startNullAgent();
    const text = (await s.api.inject({ url: '/metrics' })).body;
    expect(text).toMatch(/^twill_null_batches 1$/m);
    // The udp backend's metrics exist but stay empty: the running backend is not udp.
    expect(text).toMatch(/^# TYPE twill_tunnel_packets_total counter$/m);
    expect(text).not.toMatch(/^twill_tunnel_packets_total\{/m);
  });

  it('renders its own lines in `twill status`', async () => {
    const { served: s } = await startNullAgent();
    await eventually(() => s.agent.status().ready, 5000, 'ready');
    const text = renderAgentStatus(s.agent.status(), new Date(), TABLE);
    expect(text).toMatch(/^backend\s+null, mtu 1493, device -, 0 route\(s\)$/m);
    expect(text).toMatch(/^null\s+hello from lab1, 1 batch\(es\)$/m);
  });

  it('adds its flag to `twill agent`, from the command line or its TWILL_* variable', () => {
    const parse = (argv: string[]) => {
      const cmd = addBackendOptions(new Command('agent').exitOverride(), TABLE);
      cmd.parse(argv, { from: 'user' });
      return parseBackendFlags(backendFlagValues(cmd.opts(), TABLE), TABLE)['null'];
    };
    expect(parse(['--null-label', 'x'])).toEqual({ label: 'x' });
    expect(parse([])).toEqual({ label: 'n0' });
    process.env['TWILL_NULL_LABEL'] = 'from-env';
    try {
      expect(parse([])).toEqual({ label: 'from-env' });
    } finally {
      delete process.env['TWILL_NULL_LABEL'];
    }
  });

  it('has its Backend.* options checked by `twill config set` and the agent, naming the field', () => {
    expect(() => validateNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"null","Greeting":7}}', TABLE)).toThrow(/Backend\.Greeting 7 must be a string/);
  });
});
