/**
 * The route event feed against the real kernel, in twl-t-mon-a only: a burst of 5,000 route
 * changes arrives whole (ip's default socket buffer overflowed at about 2,800 and reported a
 * loss), and a device going down is seen.
 */
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKernel, type Feed, type KernelEvent } from '../../src/kernel/index.js';
import { createNetns, deleteNetnsByPrefix, nsIp } from '../support/netns.js';

const PREFIX = 'twl-t-mon-';
const NS = `${PREFIX}a`;
const N = 5_000;

describe.skipIf(process.getuid?.() !== 0)('route event feed (ip monitor) on a real kernel', () => {
  const events: KernelEvent[] = [];
  const lost: string[] = [];
  let feed: Feed | undefined;

  beforeAll(async () => {
    try {
      await createNetns(PREFIX, [NS]);
      await nsIp(NS, ['link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1']);
      await nsIp(NS, ['-batch', '-'], 'link set d0 up\nlink set d1 up\naddr add 198.18.0.1/24 dev d0\n');
      const start = createKernel({ netns: NS }).routes.events!;
      feed = start({ event: (e) => events.push(e), lost: (r) => lost.push(r), end: () => undefined });
      await sleep(500); // the subscription is in place
    } catch (err) {
      await deleteNetnsByPrefix(PREFIX);
      throw err;
    }
  });

  afterAll(async () => {
    feed?.stop();
    await deleteNetnsByPrefix(PREFIX);
  });

  const settle = async (count: () => number, want: number) => {
    for (let i = 0; i < 50 && count() < want; i++) await sleep(100);
  };

  it(`delivers a burst of ${N} adds and ${N} deletes whole, with nothing lost`, async () => {
    const dsts = Array.from({ length: N }, (_, i) => `10.${(i >> 8) + 1}.${i & 255}.0/24`);
    // Synchronously: the event loop is blocked meanwhile, as a busy agent's may be, so ip monitor's
    // socket buffer must hold the whole burst (the default one overflowed at about 2,800).
    const batch = (lines: string[]) => execFileSync('ip', ['netns', 'exec', NS, 'ip', '-batch', '-'], { input: lines.join('') });
    batch(dsts.map((d) => `route replace ${d} via 198.18.0.2 dev d0 proto 116\n`));
    batch(dsts.map((d) => `route del ${d} proto 116\n`));
    const ours = () => events.filter((e) => e.kind === 'route' && e.route.proto === 116);
    await settle(() => ours().length, 2 * N);
    expect(lost).toEqual([]);
    expect(ours().filter((e) => e.kind === 'route' && !e.deleted)).toHaveLength(N);
    expect(ours().filter((e) => e.kind === 'route' && e.deleted)).toHaveLength(N);
    expect(ours()[0]).toEqual({ kind: 'route', deleted: false, table: 254, route: { dst: '10.1.0.0/24', gateway: '198.18.0.2', dev: 'd0', proto: 116 } });
  });

  it('sees its device go down', async () => {
    events.length = 0;
    await nsIp(NS, ['link', 'set', 'd0', 'down']);
    await settle(() => events.filter((e) => e.kind === 'device').length, 1);
    expect(events).toContainEqual({ kind: 'device', deleted: false, dev: 'd0' });
  });
});
