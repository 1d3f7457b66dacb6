import { afterEach, describe, expect, it, vi } from 'vitest';
import { TwillError } from '../../src/errors.js';
import type { FeedHandlers, FeedStarter, IptablesOps, Kernel, NftOps } from '../../src/kernel/index.js';
import { forwardRuleSpecs } from '../../src/rules/forward-rules.js';
import { renderTwillTable } from '../../src/rules/nft-ruleset.js';
import { touchesTrafficRules } from '../../src/rules/rule-events.js';
import { TrafficRules, type RepairKind } from '../../src/rules/traffic-rules.js';
import { memoryLogger } from '../support/logger.js';

const N = '10.244.0.0/16';
const notFound = (cmd: string) => new TwillError('TWILL_ERR_KERNEL_NOT_FOUND', `cannot run ${cmd}`);

/** nft and iptables over in-memory state: the table's text, and the FORWARD chain's rules. */
function fakeKernel(opts: { noNft?: boolean; noIptables?: boolean; legacy?: boolean; events?: FeedStarter<string> } = {}) {
  const state = { table: null as string | null, chain: ['-P FORWARD DROP', '-A FORWARD -j DOCKER-USER'], applied: 0 };
  const nft: NftOps = {
    async tables() {
      if (opts.noNft) throw notFound('nft');
      return state.table === null ? [] : ['twill'];
    },
    async listTable() {
      if (opts.noNft) throw notFound('nft');
      return state.table;
    },
    async apply(script) {
      if (opts.noNft) throw notFound('nft');
      state.applied += 1;
      const body = script.split('delete table ip twill\n')[1] ?? '';
      state.table = body.trim() === '' ? null : body;
    },
    ...(opts.events ? { events: opts.events } : {}),
  };
  const iptables: IptablesOps = {
    async listChain() {
      if (opts.noIptables) throw notFound('iptables');
      return `${state.chain.join('\n')}\n`;
    },
    async insert(_t, chain, position, spec) {
      state.chain.splice(position, 0, `-A ${chain} ${spec.join(' ')}`);
    },
    async delete(_t, chain, spec) {
      const i = state.chain.indexOf(`-A ${chain} ${spec.join(' ')}`);
      if (i < 0) throw new TwillError('TWILL_ERR_KERNEL_COMMAND', 'Bad rule');
      state.chain.splice(i, 1);
    },
    async usesNftables() {
      if (opts.noIptables) throw notFound('iptables');
      return !opts.legacy;
    },
  };
  return { state, kernel: { nft, iptables } as Pick<Kernel, 'nft' | 'iptables'> };
}

function setup(opts: { ipMasq?: boolean; forwardRules?: boolean; noNft?: boolean; noIptables?: boolean; legacy?: boolean; events?: FeedStarter<string>; resyncMs?: number } = {}) {
  const { state, kernel } = fakeKernel(opts);
  const { logger, lines } = memoryLogger();
  const repairs: RepairKind[] = [];
  const resync = { resyncMs: opts.resyncMs ?? 3_600_000, watchedResyncMs: 3_600_000 };
  const rules = new TrafficRules({ kernel, logger, network: N, ipMasq: opts.ipMasq ?? true, forwardRules: opts.forwardRules ?? true, ...resync, onRepair: (k) => repairs.push(k) });
  const msgs = () => lines().filter((l) => l.component === 'traffic-rules').map((l) => l.msg);
  return { state, kernel, rules, repairs, msgs, lines };
}

const ours = (network = N) => forwardRuleSpecs(network).map((s) => `-A FORWARD ${s.join(' ')}`);

describe('traffic rules', () => {
  it('installs the table and the forward rules at the top of the chain, and says so once', async () => {
    const t = setup();
    await t.rules.start('10.244.1.0/24');
    expect(t.state.table).toBe(renderTwillTable({ network: N, subnet: '10.244.1.0/24' }));
    expect(t.state.chain).toEqual(['-P FORWARD DROP', ...ours(), '-A FORWARD -j DOCKER-USER']);
    await t.rules.reconcileNow();
    await t.rules.reconcileNow();
    expect(t.state.applied).toBe(1);
    expect(t.msgs()).toEqual(['nft table installed', 'forward rules installed']);
    expect(t.rules.status()).toMatchObject({ repairs: 0, lastError: null });
    await t.rules.stop();
  });

  it('restores a deleted table, a deleted rule and a deleted forward rule, logged and counted', async () => {
    const t = setup();
    await t.rules.start('10.244.1.0/24');
    t.state.table = null;
    await t.rules.reconcileNow();
    expect(t.state.table).toBe(renderTwillTable({ network: N, subnet: '10.244.1.0/24' }));
    t.state.table = t.state.table!.split('\n').filter((l) => !l.includes('224.0.0.0/4')).join('\n');
    t.state.chain.splice(1, 1);
    await t.rules.reconcileNow();
    expect(t.state.table).toBe(renderTwillTable({ network: N, subnet: '10.244.1.0/24' }));
    expect(t.state.chain).toEqual(['-P FORWARD DROP', ...ours(), '-A FORWARD -j DOCKER-USER']);
    expect(t.msgs().slice(2)).toEqual(['nft table restored', 'nft table rules restored', 'forward rules restored']);
    expect(t.repairs).toEqual(['nft-table', 'nft-table', 'forward-rules']);
    expect(t.rules.status().repairs).toBe(3);
    expect(t.lines().find((l) => l.msg === 'nft table restored')?.level).toBe(40);
  });

  it('replaces the rules of the old subnet when the lease changes, without counting a repair', async () => {
    const t = setup();
    await t.rules.start('10.244.1.0/24');
    await t.rules.setSubnet('10.244.7.0/24');
    expect(t.state.table).toBe(renderTwillTable({ network: N, subnet: '10.244.7.0/24' }));
    expect(t.state.table).not.toContain('10.244.1.0/24');
    expect(t.msgs()).toContain('nft table updated');
    expect(t.repairs).toEqual([]);
  });

  it('without --ip-masq removes a table left by an earlier run, and keeps it away', async () => {
    const t = setup({ ipMasq: false });
    t.state.table = renderTwillTable({ network: N, subnet: '10.244.1.0/24' });
    await t.rules.start('10.244.1.0/24');
    expect(t.state.table).toBeNull();
    expect(t.msgs()).toContain('nft table removed');
  });

  it('with --forward-rules=false removes ours and leaves the rest of the chain alone', async () => {
    const t = setup({ forwardRules: false });
    t.state.chain.push(...ours(), ...ours('10.200.0.0/16'));
    await t.rules.start('10.244.1.0/24');
    expect(t.state.chain).toEqual(['-P FORWARD DROP', '-A FORWARD -j DOCKER-USER']);
    expect(t.msgs()).toContain('forward rules removed');
  });

  it('fails to start with --ip-masq when nft is missing', async () => {
    const t = setup({ noNft: true });
    await expect(t.rules.start('10.244.1.0/24')).rejects.toMatchObject({ code: 'TWILL_ERR_KERNEL_NOT_FOUND' });
    // ... but the forward rules were still put in place.
    expect(t.state.chain).toEqual(['-P FORWARD DROP', ...ours(), '-A FORWARD -j DOCKER-USER']);
  });

  it('runs without nft when it is not asked to masquerade, and warns once without iptables', async () => {
    const t = setup({ ipMasq: false, noNft: true, noIptables: true });
    await t.rules.start('10.244.1.0/24');
    await t.rules.reconcileNow();
    expect(t.msgs()).toEqual(['iptables is not installed; forward rules skipped']);
    expect(t.rules.status().lastError).toBeNull();
  });

  it('logs a transient failure once, keeps retrying, and says when it recovered', async () => {
    const t = setup();
    await t.rules.start('10.244.1.0/24');
    const { state } = t;
    let fail = true;
    const { iptables } = t.kernel;
    const list = iptables.listChain.bind(iptables);
    iptables.listChain = async (table, chain) => {
      if (fail) throw new TwillError('TWILL_ERR_KERNEL_COMMAND', 'iptables: resource busy');
      return list(table, chain);
    };
    state.table = null;
    await t.rules.reconcileNow();
    await t.rules.reconcileNow();
    expect(state.table).not.toBeNull(); // nft was repaired although iptables failed
    expect(t.msgs().filter((m) => m === 'traffic rules not reconciled; retrying')).toHaveLength(1);
    expect(t.rules.status().lastError).toMatch(/resource busy/);
    fail = false;
    await t.rules.reconcileNow();
    expect(t.msgs().at(-1)).toBe('traffic rules reconciled again');
    expect(t.rules.status().lastError).toBeNull();
  });

  it('logs a failure once per code, however its message changes, and again when the code changes', async () => {
    const t = setup();
    await t.rules.start('10.244.1.0/24');
    let attempt = 0;
    t.kernel.iptables.listChain = async () => {
      throw new TwillError('TWILL_ERR_KERNEL_COMMAND', `iptables: resource busy (attempt ${++attempt})`);
    };
    for (let i = 0; i < 3; i++) await t.rules.reconcileNow();
    t.kernel.iptables.listChain = async () => {
      throw new Error(`not a TwillError (attempt ${++attempt})`);
    };
    await t.rules.reconcileNow();
    await t.rules.reconcileNow();
    const warned = t.lines().filter((l) => l.msg === 'traffic rules not reconciled; retrying');
    expect(warned.map((l) => l.code)).toEqual(['TWILL_ERR_KERNEL_COMMAND', 'TWILL_ERR_UNEXPECTED']);
    expect(t.rules.status().lastError).toBe('not a TwillError (attempt 5)'); // the status keeps the latest text
  });
});

/** `nft monitor` as the test drives it. */
function nftMonitor() {
  const feeds: FeedHandlers<string>[] = [];
  let broken = false;
  const start: FeedStarter<string> = (h) => {
    feeds.push(h);
    if (broken) h.end(new Error('cannot run nft'));
    return { stop: () => undefined };
  };
  /** Ends the feed, and every later one at once (nft monitor cannot run any more). */
  const breakFeed = () => ((broken = true), feeds.at(-1)!.end(new Error('nft exited')));
  return { start, line: (l: string) => feeds.at(-1)!.event(l), breakFeed };
}

describe('traffic rules, watching nft monitor', () => {
  afterEach(() => vi.useRealTimers());

  it('repairs at once when a line touches its rules, ignores other chains, and polls slowly only while the watch works', async () => {
    vi.useFakeTimers();
    const mon = nftMonitor();
    const t = setup({ events: mon.start, resyncMs: 5_000 });
    await t.rules.start('10.244.1.0/24');
    await vi.advanceTimersByTimeAsync(1_000); // the watch is trusted after 1 s
    t.state.table = null;
    mon.line('add rule ip filter DOCKER-USER counter return'); // another chain: not ours
    await vi.advanceTimersByTimeAsync(20_000); // no timed pass while watched (the watched period is an hour here)
    expect(t.state.table).toBeNull();
    mon.line('delete table ip twill');
    await vi.advanceTimersByTimeAsync(0);
    expect(t.state.table).not.toBeNull();
    t.state.chain.splice(1, 1);
    mon.line('delete rule ip filter FORWARD handle 7');
    await vi.advanceTimersByTimeAsync(0);
    expect(t.state.chain).toEqual(['-P FORWARD DROP', ...ours(), '-A FORWARD -j DOCKER-USER']);
    expect(t.repairs).toEqual(['nft-table', 'forward-rules']);
    mon.breakFeed(); // the watch is lost for good: back to the 5 s poll
    await vi.advanceTimersByTimeAsync(0);
    t.state.table = null; // deleted after the pass the loss triggered
    await vi.advanceTimersByTimeAsync(5_000);
    expect(t.state.table).not.toBeNull();
    await t.rules.stop();
  });

  it('keeps polling every resync when iptables is legacy (its changes never show in nft monitor)', async () => {
    vi.useFakeTimers();
    const mon = nftMonitor();
    const t = setup({ events: mon.start, resyncMs: 5_000, legacy: true });
    await t.rules.start('10.244.1.0/24');
    await vi.advanceTimersByTimeAsync(1_000);
    t.state.chain.splice(1, 1);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(t.state.chain).toEqual(['-P FORWARD DROP', ...ours(), '-A FORWARD -j DOCKER-USER']);
    await t.rules.stop();
  });
});

describe('touchesTrafficRules', () => {
  it('picks the lines of nft monitor that can touch twill’s table or the forward rules', () => {
    const yes = [
      'add table ip twill',
      'delete rule ip twill postrouting handle 2',
      'delete chain ip twill postrouting',
      'insert rule ip filter FORWARD ip saddr 10.5.0.0/16 counter packets 0 bytes 0 accept',
      'delete rule ip filter FORWARD handle 2',
      'delete chain ip filter FORWARD',
      'delete table ip filter',
      'flush ruleset',
    ];
    const no = ['add rule ip filter DOCKER-USER counter return', 'add table ip nat', 'add rule ip nat POSTROUTING masquerade', 'add table ip6 twill2', 'add chain ip filter FORWARDX'];
    expect(yes.filter((l) => !touchesTrafficRules(l))).toEqual([]);
    expect(no.filter((l) => touchesTrafficRules(l))).toEqual([]);
  });
});
