import { afterEach, describe, expect, it, vi } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import type { AgentOptions } from '../../src/agent/options.js';
import { TwillError, type ErrorCode } from '../../src/errors.js';
import type { Kernel } from '../../src/kernel/index.js';
import type { LeaseRegistry } from '../../src/subnet/registry.js';
import { memoryLogger } from '../support/logger.js';

const failure = (code: ErrorCode, message = `${code} from the fake registry`) => new TwillError(code, message);

const options: AgentOptions = Object.freeze({
  etcdEndpoints: ['http://127.0.0.1:2379'],
  etcdPrefix: '/coreos.com/network',
  iface: null,
  publicIp: null,
  subnetFile: '/nonexistent/subnet.env',
  subnetLeaseTtlSeconds: 60,
  statusAddr: { host: '127.0.0.1', port: 0 },
  nodeName: 'node-a',
  ipMasq: false,
  forwardRules: false,
});

/** Only what start() touches before the config is known: the interface, ip_forward, getConfig. */
function agentWith(answers: (string | null | TwillError)[]) {
  let reads = 0;
  const unused = () => Promise.reject(new Error('not reached before the config is known'));
  const registry = {
    getConfig: async () => {
      reads++;
      const v = answers.length > 1 ? answers.shift()! : answers[0]!;
      if (v instanceof TwillError) throw v;
      return v;
    },
    listLeases: unused,
    close: () => undefined,
  } as unknown as LeaseRegistry;
  const kernel = {
    links: { resolveExternal: async () => ({ name: 'eth0', address: '198.18.0.1', mtu: 1500 }) },
    sysctl: { enableIpForward: async () => undefined },
  } as unknown as Kernel;
  const log = memoryLogger();
  const agent = new Agent(options, { logger: log.logger, registry, kernel });
  const problems = () => log.lines().filter((l) => l.component === 'agent' && l.level === 50).map((l) => l.code);
  return { agent, problems, reads: () => reads };
}

afterEach(() => void vi.useRealTimers());

describe('agent waiting for the network config', () => {
  it('retries what is transient, one line per code however the message changes, and ends start() on a permanent error', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const a = agentWith([
      null,
      null,
      failure('TWILL_ERR_ETCD_UNAVAILABLE', 'etcd is unreachable (attempt 1)'),
      failure('TWILL_ERR_ETCD_UNAVAILABLE', 'etcd is unreachable (attempt 2)'),
      '{"Network":"10.244.0.0/16","SubnetLen":40,"Backend":{"Type":"host-gw"}}',
      '{"Network":"10.244.0.0/16","SubnetLen":7,"Backend":{"Type":"host-gw"}}',
      failure('TWILL_ERR_ETCD_AUTH'),
    ]);
    const started = a.agent.start().then(() => null, (err: unknown) => err);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(await started).toMatchObject({ code: 'TWILL_ERR_ETCD_AUTH' });
    expect(a.reads()).toBe(7); // not retried after the refusal
    expect(a.problems()).toEqual(['TWILL_ERR_CONFIG_MISSING', 'TWILL_ERR_ETCD_UNAVAILABLE', 'TWILL_ERR_CONFIG_INVALID', 'TWILL_ERR_ETCD_AUTH']);
    await a.agent.stop();
  });
});
