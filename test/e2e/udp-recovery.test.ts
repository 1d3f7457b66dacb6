/**
 * The udp data path when its TUN device goes away, and the ICMP rate limit, between real
 * agents in a 2-host udp lab (twl-tur-* namespaces; `lab down` in afterAll, also on failure).
 * Everything is asked from inside the lab's namespaces.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentStatus } from '../../src/status/types.js';
import { nsGet } from '../support/http.js';
import { assertBuilt, inNetns, isRoot, labNamespaces, pollMs, readLabState, run, twill, type LabStateFile } from '../support/lab.js';
import { eventually } from '../support/logger.js';

const NAME = 'tur';
const DIR = `/tmp/twill-lab/${NAME}`;
const LAB = ['--name', NAME];

// Polls /readyz every 20 ms from inside the namespace and prints each change: "<ms> <status> <body>".
const WATCH = `const u=process.argv[1];let last='';const t0=Date.now();const tick=async()=>{let l;try{const r=await fetch(u,{signal:AbortSignal.timeout(1000)});l=r.status+' '+(await r.text())}catch(e){l='0 '+String(e.cause?.code??e)}if(l!==last){last=l;console.log((Date.now()-t0)+' '+l)}setTimeout(tick,20)};tick()`;
// Sends argv[2] UDP datagrams to argv[1]:9 as fast as the socket takes them; prints the ms it took.
const FLOOD = `const s=require('dgram').createSocket('udp4');const n=+process.argv[2];const b=Buffer.alloc(32);let i=0;const t0=Date.now();const next=()=>{if(i++<n)s.send(b,9,process.argv[1],next);else{console.log(Date.now()-t0);s.close()}};next()`;

describe.skipIf(!isRoot())('udp backend: TUN device recovery and ICMP rate limit (2-host lab)', () => {
  let state: LabStateFile;
  const h1 = () => state.hosts[0]!;
  const pod = (id: string) => state.pods.find((p) => p.id === id)!;
  const api = (path: string) => `http://${h1().ip}:8475${path}`;
  const status = async (): Promise<AgentStatus> => JSON.parse((await nsGet(h1().ns, api('/v1/status'))).body) as AgentStatus;
  const ping = async (): Promise<boolean> => (await inNetns(pod('h1-p1').ns, 'ping', ['-c', '1', '-W', '1', pod('h2-p1').ip!])).code === 0;
  /** The device is a TUN again, up, with the overlay route through it, and a pod on h1 reaches a pod on h2. */
  const recovered = async (): Promise<boolean> => {
    const link = await run('ip', ['-d', '-n', h1().ns, 'link', 'show', 'twill0']);
    const route = await run('ip', ['-n', h1().ns, 'route', 'show', '10.244.0.0/16']);
    return / tun /.test(link.stdout) && link.stdout.includes(',UP') && route.stdout.includes('dev twill0') && (await ping());
  };

  beforeAll(async () => {
    assertBuilt();
    await twill(['lab', 'down', ...LAB]);
    const up = await twill(['lab', 'up', ...LAB, '--hosts', '2', '--backend', 'udp']);
    expect(up.code, up.stderr).toBe(0);
    state = await readLabState(DIR);
    expect(await eventually(ping, 10_000, 'h1-p1 reaching h2-p1')).toBe(true);
  });

  afterAll(async () => {
    const down = await twill(['lab', 'down', ...LAB]);
    expect(down.code, down.stderr).toBe(0);
    expect(await labNamespaces(NAME)).toEqual([]);
  });

  it('the TUN deleted by hand: /readyz 503 with the reason, then the device back and pings flowing within 10 s', async () => {
    let seen = '';
    const watcher: ChildProcess = spawn('ip', ['netns', 'exec', h1().ns, process.execPath, '-e', WATCH, api('/readyz')], { stdio: ['ignore', 'pipe', 'inherit'] });
    watcher.stdout!.on('data', (b: Buffer) => (seen += b.toString()));
    try {
      await eventually(() => / 200 /.test(seen), 10_000, 'the watcher seeing the agent ready');
      const del = await run('ip', ['-n', h1().ns, 'link', 'del', 'twill0']);
      expect(del.code, del.stderr).toBe(0);
      const ms = await pollMs(recovered, 10_000);
      process.stderr.write(`udp TUN deleted by hand: device back and pings flowing after ${ms} ms\n`);
      expect(ms, 'not recovered within 10 s').not.toBeNull();
      await eventually(() => /\n\d+ 200 [^\n]*\n?$/.test(seen), 5000, 'ready again');
    } finally {
      watcher.kill();
    }
    const notReady = seen.split('\n').find((l) => / 503 /.test(l));
    expect(notReady, seen).toBeDefined();
    const body = JSON.parse(notReady!.replace(/^\d+ 503 /, '')) as Record<string, unknown>;
    expect(body).toEqual({ ready: false, waitingFor: ['backend'], reason: 'backend: TUN device twill0 failed (EBADFD)' });
    const s = await status();
    expect(s).toMatchObject({ ready: true, waitingFor: [], backend: { device: 'twill0', details: { tunnel: { deviceRecreated: 1 } } } });
    expect(s.backend?.problem).toBeUndefined();
    expect(s.peers.map((p) => p.state)).toEqual(['programmed']);
    const log = await readFile(`${DIR}/h1/agent.log`, 'utf8');
    expect(log.match(/the udp data path is down/g)).toHaveLength(1);
    expect(log.match(/the udp data path is back/g)).toHaveLength(1);
  });

  it('while the name is held by another link (a bridge): 503 saying why; back within 10 s of that link going away', async () => {
    const take = await inNetns(h1().ns, 'sh', ['-c', 'ip link del twill0 && ip link add twill0 type bridge']);
    expect(take.code, take.stderr).toBe(0);
    const why = await eventually(async () => {
      const r = await nsGet(h1().ns, api('/readyz'));
      const b = JSON.parse(r.body) as { reason?: string };
      return r.status === 503 && /recreating it failed \d+ time\(s\)/.test(b.reason ?? '') ? b.reason : undefined;
    }, 10_000, '/readyz saying the device cannot be recreated');
    expect(why).toMatch(/^backend: TUN device twill0 failed \(EBADFD\); recreating it failed \d+ time\(s\), last: cannot create TUN device "twill0"/);
    expect(await ping()).toBe(false);
    const free = await run('ip', ['-n', h1().ns, 'link', 'del', 'twill0']);
    expect(free.code, free.stderr).toBe(0);
    const ms = await pollMs(recovered, 10_000);
    process.stderr.write(`udp TUN name freed after a blocked outage: device back and pings flowing after ${ms} ms\n`);
    expect(ms, 'not recovered within 10 s of the name being free').not.toBeNull();
    await eventually(async () => (await nsGet(h1().ns, api('/readyz'))).status === 200, 5000, 'ready again');
    expect((await status()).backend?.details).toMatchObject({ tunnel: { deviceRecreated: 2 } });
  });

  it('a flood to an unknown destination gets ICMP net unreachable at no more than the bucket allows; the rest are counted', async () => {
    const used = new Set(state.hosts.map((h) => h.subnet));
    const third = [...Array(50).keys()].map((i) => 200 + i).find((x) => !used.has(`10.244.${x}.0/24`))!;
    const snmp = async (): Promise<number> => {
      const text = (await inNetns(pod('h1-p1').ns, 'cat', ['/proc/net/snmp'])).stdout;
      const [head, values] = text.split('\n').filter((l) => l.startsWith('Icmp:'));
      return Number(values!.split(/\s+/)[head!.split(/\s+/).indexOf('InDestUnreachs')]);
    };
    const before = await status();
    const podBefore = await snmp();
    const t0 = Date.now();
    const flood = await inNetns(pod('h1-p1').ns, process.execPath, ['-e', FLOOD, `10.244.${third}.1`, '3000']);
    expect(flood.code, flood.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 500));
    const after = await status();
    const elapsedS = (Date.now() - t0) / 1000;
    const tunnel = (s: AgentStatus) => s.backend!.details!['tunnel'] as { icmpSent: number; icmpSuppressed: number };
    const drops = (s: AgentStatus) => (s.backend!.details!['drops'] as Record<string, number>)['no-route']!;
    const sent = tunnel(after).icmpSent - tunnel(before).icmpSent;
    const suppressed = tunnel(after).icmpSuppressed - tunnel(before).icmpSuppressed;
    const noRoute = drops(after) - drops(before);
    const podGot = (await snmp()) - podBefore;
    process.stderr.write(`ICMP flood: ${noRoute} no-route packets in ${flood.stdout.trim()} ms; ${sent} ICMP sent, ${suppressed} suppressed, ${podGot} received by the pod (window ${elapsedS.toFixed(1)} s)\n`);
    expect(noRoute).toBeGreaterThan(1000); // most of the 3000 reached the agent
    expect(sent + suppressed).toBe(noRoute); // every one answered or counted
    expect(sent).toBeGreaterThanOrEqual(20); // the burst
    expect(sent).toBeLessThanOrEqual(20 + Math.ceil(10 * elapsedS));
    expect(podGot).toBe(sent);
  });
});
