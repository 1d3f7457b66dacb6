/**
 * Issue 13: "a 3-member etcd with the leader killed, then quorum lost, then restored: pod traffic
 * never stops", as root, in a lab with `--etcd-members 3` (twl-tecu-* for udp, twl-tecg-* for
 * host-gw). Every pod pings the next host's pod every 100 ms through the whole scenario; a watcher
 * in the etcd namespace records each agent's /v1/status. Needs a build (dist/) first. afterAll
 * always stops the pings and the watcher and runs `lab down`, so nothing is left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdLeader, killEtcdMember, restartEtcdMembers, waitEtcdHealthy } from '../../src/tools/lab/etcd-cluster.js';
import { requireState, type LabState } from '../../src/tools/lab/state.js';
import { assertBuilt, inNetns, isRoot, labNamespaces, pollMs, run, twill } from '../support/lab.js';

const QUORUM_LOST_MS = 10_000;

// Asks every URL's /v1/status each 200 ms; prints "<epoch ms> <url> <connected> <ready>" on each change.
const WATCH = `const urls=process.argv.slice(1);const last=new Map();const tick=async()=>{await Promise.all(urls.map(async(u)=>{let l;try{const s=await (await fetch(u,{signal:AbortSignal.timeout(1000)})).json();l=s.etcd.connected+' '+s.ready}catch(e){l='error '+String(e.cause?.code??e)}if(last.get(u)!==l){last.set(u,l);console.log(Date.now()+' '+u+' '+l)}}));setTimeout(tick,200)};tick()`;

interface Spawned {
  readonly child: ChildProcess;
  out: string;
}

/** A long-running program inside a lab namespace; its stdout is collected. */
function spawnIn(ns: string, cmd: string, args: readonly string[]): Spawned {
  const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const s: Spawned = { child, out: '' };
  child.stdout!.on('data', (b: Buffer) => (s.out += b.toString()));
  return s;
}

/** SIGINT (ping prints its summary then), and wait for the exit. */
async function interrupt(s: Spawned): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  const exited = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGINT');
  await Promise.race([exited, sleep(5000)]);
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
}

/** Echo requests ping sent, and the icmp_seq of every reply. */
function parsePing(text: string): { transmitted: number; seqs: number[] } {
  const seqs = [...text.matchAll(/^\d+ bytes from [\d.]+: icmp_seq=(\d+) /gm)].map((m) => Number(m[1]));
  return { transmitted: Number(/^(\d+) packets transmitted/m.exec(text)?.[1] ?? -1), seqs };
}

interface Watched {
  /** The last word on each URL: "<connected> <ready>" or "error <why>". */
  readonly last: Map<string, string>;
  /** Per URL, when (epoch ms) `connected` turned false and, if it did, true again. */
  readonly outages: Map<string, { from: number; to: number | null }[]>;
}

function watched(text: string): Watched {
  const last = new Map<string, string>();
  const outages = new Map<string, { from: number; to: number | null }[]>();
  for (const line of text.split('\n').filter(Boolean)) {
    const [at, url, ...rest] = line.split(' ');
    last.set(url!, rest.join(' '));
    const spans = outages.get(url!) ?? [];
    const open = spans.at(-1)?.to === null ? spans.at(-1) : undefined;
    if (rest[0] === 'false' && !open) spans.push({ from: Number(at), to: null });
    if (rest[0] === 'true' && open) open.to = Number(at);
    outages.set(url!, spans);
  }
  return { last, outages };
}

/** The URLs whose `connected` turned false from `fromMs` on (before `toMs`), and the longest such outage. */
function disconnected(w: Watched, fromMs: number, toMs = Infinity): { urls: string[]; longestMs: number } {
  const spans = [...w.outages].flatMap(([url, list]) => list.filter((o) => o.from >= fromMs && o.from < toMs).map((o) => ({ url, ms: (o.to ?? Date.now()) - o.from })));
  return { urls: [...new Set(spans.map((o) => o.url))], longestMs: Math.max(0, ...spans.map((o) => o.ms)) };
}

describe.skipIf(!isRoot()).each([
  { backend: 'udp', name: 'tecu' },
  { backend: 'host-gw', name: 'tecg' },
])('a 3-member etcd losing its leader, then its quorum, under pod traffic ($backend)', ({ backend, name }) => {
  const LAB = ['--name', name];
  const dir = `/tmp/twill-lab/${name}`;
  const spawned: Spawned[] = [];
  let state: LabState;

  beforeAll(async () => {
    assertBuilt();
    await twill(['lab', 'down', ...LAB]); // leftovers of an interrupted run
    const up = await twill(['lab', 'up', ...LAB, '--hosts', '3', '--backend', backend, '--etcd-members', '3']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    process.stderr.write(`lab up (${backend}, 3 hosts, 3 etcd members) took ${up.ms} ms\n`);
    state = await requireState(dir, name);
  });

  afterAll(async () => {
    await Promise.all(spawned.map(interrupt));
    const down = await twill(['lab', 'down', ...LAB]);
    expect(down.code, down.stderr).toBe(0);
    expect(await labNamespaces(name)).toEqual([]);
  });

  it('no ping lost while the leader dies, the quorum goes and comes back; agents and routes stay', async () => {
    const t0 = Date.now();
    const routes = async (ns: string) => (await run('ip', ['-n', ns, '-4', 'route', 'show'])).stdout;
    const routesBefore = await Promise.all(state.hosts.map((h) => routes(h.ns)));
    const urls = state.hosts.map((h) => `http://${h.ip}:8475/v1/status`);
    const watcher = spawnIn(state.etcd.ns, process.execPath, ['-e', WATCH, ...urls]);
    spawned.push(watcher);
    const allConnected = async () => urls.every((u) => watched(watcher.out).last.get(u) === 'true true');
    expect(await pollMs(allConnected, 10_000), watcher.out).not.toBeNull();

    // Each pod pings the pod of the next host (h1 → h2 → h3 → h1): every host sends and receives.
    const pings = state.pods.map((p, i) => {
      const to = state.pods[(i + 1) % state.pods.length]!;
      return { from: p.id, to: to.id, ping: spawnIn(p.ns, 'ping', ['-n', '-i', '0.1', '-W', '1', to.ip!]) };
    });
    spawned.push(...pings.map((p) => p.ping));
    expect(await pollMs(async () => pings.every((p) => / icmp_seq=\d+ /.test(p.ping.out)), 5000), 'pings flowing').not.toBeNull();

    // The leader dies (SIGKILL); the two left elect a new one.
    const leader = await etcdLeader(state);
    expect(leader).not.toBeNull();
    const killedAt = Date.now();
    state = await killEtcdMember(state, leader!);
    const elected = { name: null as string | null };
    const electedMs = await pollMs(async () => (elected.name = await etcdLeader(state)) !== null, 15_000, 200);
    expect(electedMs, 'a new leader within 15 s').not.toBeNull();
    const next = elected.name!;

    // A second member dies: the last one has no quorum. Every agent must say so within 15 s (its
    // liveness probe), and keep saying so: the outage is real.
    state = await killEtcdMember(state, next);
    const lostAt = Date.now();
    // Only what the watcher saw from now on counts: the leader's death may have blipped `connected` too.
    const seenMs = await pollMs(async () => disconnected(watched(watcher.out), lostAt).urls.length > 0, 15_000);
    expect(seenMs, `an agent showing connected: false\n${watcher.out}`).not.toBeNull();
    const allFalse = async () => urls.every((u) => watched(watcher.out).last.get(u)?.startsWith('false ') === true);
    const allSeenMs = await pollMs(allFalse, 15_000 - seenMs!);
    expect(allSeenMs, `every agent showing connected: false within 15 s\n${watcher.out}`).not.toBeNull();
    await sleep(Math.max(0, lostAt + QUORUM_LOST_MS - Date.now()));
    expect(await allFalse(), `still connected: false before the restart\n${watcher.out}`).toBe(true);

    // Both come back on their data; the cluster heals and every agent is connected again.
    const backAt = Date.now();
    state = await restartEtcdMembers(state, [leader!, next]);
    await waitEtcdHealthy(state, 30_000);
    const healthyMs = Date.now() - backAt;
    const reconnectedMs = await pollMs(allConnected, 30_000);
    expect(reconnectedMs, `every agent connected again\n${watcher.out}`).not.toBeNull();
    await sleep(1000);
    await Promise.all(pings.map((p) => interrupt(p.ping)));

    const summary: string[] = [];
    for (const p of pings) {
      const { transmitted, seqs } = parsePing(p.ping.out);
      const got = new Set(seqs);
      // The request sent just before SIGINT may still be on its way: only that one may lack a reply.
      const missing = Array.from({ length: transmitted }, (_, i) => i + 1).filter((s) => !got.has(s) && s !== transmitted);
      summary.push(`${p.from}→${p.to} ${transmitted} sent, ${transmitted - got.size} lost`);
      expect(transmitted, p.ping.out.slice(-500)).toBeGreaterThan(100);
      expect(missing, `${p.from} → ${p.to}: icmp_seq without a reply`).toEqual([]);
      expect(seqs.length, `${p.from} → ${p.to}: duplicate replies`).toBe(got.size);
    }

    // The agents never exited, and kept their routes and peers.
    const after = await requireState(dir, name);
    for (const [i, h] of state.hosts.entries()) {
      expect(after.hosts[i]!.pid, h.id).toBe(h.pid);
      expect((await run('ip', ['netns', 'pids', h.ns])).stdout.split('\n'), `${h.id}'s agent still runs`).toContain(String(h.pid));
      expect(await routes(h.ns), `${h.id}'s routes`).toBe(routesBefore[i]);
    }
    const status = await twill(['lab', 'status', ...LAB]);
    expect(status.code, status.stderr).toBe(0);
    for (const h of state.hosts) {
      const row = new RegExp(`^${h.id}\\s+${h.ip.replace(/\./g, '\\.')}:8475\\s+ready\\s+(.+)$`, 'm').exec(status.stdout);
      expect(row?.[1]?.split(', ').sort(), status.stdout).toEqual(state.hosts.filter((o) => o !== h).map((o) => `${o.id} programmed`));
    }
    expect(status.stdout.match(/^ {2}etcd\d .* pid \d+ alive/gm), status.stdout).toHaveLength(3);
    const leases = await inNetns(state.etcd.ns, 'etcdctl', ['--endpoints', state.etcd.members.map((m) => m.endpoint).join(','), 'get', '--prefix', '--keys-only', '/coreos.com/network/subnets/']);
    expect(leases.stdout.split('\n').filter(Boolean), leases.stderr).toHaveLength(3);

    const blip = disconnected(watched(watcher.out), killedAt, lostAt);
    const outage = disconnected(watched(watcher.out), lostAt, backAt);
    // Reported, not asserted: the agent may say connected again for a moment while no quorum exists.
    const flapped = [...watched(watcher.out).outages].filter(([, list]) => list.some((o) => o.from >= lostAt && o.to !== null && o.to < backAt)).length;
    process.stderr.write(
      `${backend}: killed ${leader} (new leader ${next} after ${electedMs} ms; ${blip.urls.length} agent(s) showed connected false meanwhile, at most ${blip.longestMs} ms), ` +
        `then ${next}: connected false seen after ${seenMs} ms, on all ${outage.urls.length} agents after ${seenMs! + allSeenMs!} ms (${flapped} said connected again meanwhile); ` +
        `restarted: healthy after ${healthyMs} ms, agents connected after ${reconnectedMs} ms more; ${summary.join('; ')}; scenario ${Date.now() - t0} ms\n`,
    );
  }, 150_000);
});
