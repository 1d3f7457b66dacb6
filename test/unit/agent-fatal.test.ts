import { afterEach, describe, expect, it } from 'vitest';
import { TwillError } from '../../src/errors.js';
import { agentHarness, type AgentHarness } from '../support/agent-harness.js';
import { eventually } from '../support/logger.js';

let h: AgentHarness | null = null;
afterEach(async () => {
  await h?.dispose();
  h = null;
});

describe('a permanent etcd error after start', () => {
  it('fails /healthz (live() false) so a supervisor restarts the agent, and keeps the data path running', async () => {
    const a = (h = await agentHarness({ peers: [['10.244.2.0/24', '198.18.0.2']] }));
    await a.agent.start();
    await eventually(() => a.watchHandlers() !== null && a.agent.status().ready, 2000, 'running and watching');
    expect(a.agent.live()).toBe(true);
    // etcd drops the watch for a reason retrying cannot fix: the user's password was changed.
    a.watchHandlers()!.onConnection(false, new TwillError('TWILL_ERR_ETCD_AUTH', 'etcd: authentication failed'));
    await eventually(() => !a.agent.live(), 2000, 'live() false');
    const fatal = () => a.logLines().filter((l) => l['level'] === 50 && l['code'] === 'TWILL_ERR_ETCD_AUTH' && l['component'] === 'agent');
    await eventually(() => fatal().length > 0, 2000, 'the error logged');
    expect(fatal()).toHaveLength(1);
    // Nothing was torn down: the backend still runs, and was told of no removal.
    expect(a.backends[0]!.state).toBe('started');
    expect(a.backends[0]!.batches).toEqual([['added 10.244.2.0/24 198.18.0.2']]);
  });
});
