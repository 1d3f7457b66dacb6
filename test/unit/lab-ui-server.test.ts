import { readdir, readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { TwillError } from '../../src/errors.js';
import type { AgentApiView } from '../../src/tools/lab/agent-api.js';
import type { LabTrace } from '../../src/tools/lab/trace/types.js';
import { ASSET_DIR, buildLabUi, type LabUiDeps } from '../../src/tools/lab/ui/server.js';
import { labView } from '../../src/tools/lab/ui/view.js';
import { labStateFixture, routedVxlanTrace } from '../support/lab-view.js';
import { memoryLogger } from '../support/logger.js';
import { runningStatus } from '../support/status.js';

const view = labView(labStateFixture({ hosts: 2, topology: 'routed' }));
const agents: AgentApiView[] = [
  { host: 'h1', addr: '198.18.0.11:8475', status: runningStatus() },
  { host: 'h2', addr: '198.19.0.12:8475', status: null, error: 'HTTP 0' },
];

let app: FastifyInstance | null = null;
afterEach(async () => {
  await app?.close();
  app = null;
});

function setup(trace: LabUiDeps['trace'] = async () => routedVxlanTrace()) {
  const log = memoryLogger();
  const calls: [string, string][] = [];
  app = buildLabUi({
    lab: async () => view,
    agents: async () => agents,
    trace: async (from, to) => {
      calls.push([from, to]);
      return trace(from, to);
    },
    logger: log.logger,
  });
  return { app, calls, log };
}

describe('lab page server', () => {
  it('serves the page, its script and its style, none of them reaching outside the machine', async () => {
    const { app } = setup();
    const page = await app.inject('/');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('<script type="module" src="/app.js">');
    expect((await app.inject('/app.js')).headers['content-type']).toMatch(/^text\/javascript/);
    expect((await app.inject('/style.css')).headers['content-type']).toMatch(/^text\/css/);
    for (const file of await readdir(ASSET_DIR)) {
      const text = await readFile(new URL(file, ASSET_DIR), 'utf8');
      const urls = text.match(/(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s"')]*/gi) ?? [];
      expect(urls.filter((u) => u !== 'http://www.w3.org/2000/svg'), file).toEqual([]);
    }
  });

  it('gives the lab with its picture laid out', async () => {
    const { app } = setup();
    const res = await app.inject('/api/lab');
    expect(res.statusCode).toBe(200);
    const body = res.json<{ lab: typeof view; picture: { boxes: { id: string }[]; bars: { id: string }[] } }>();
    expect(body.lab).toEqual(view);
    expect(body.picture.bars.map((b) => b.id)).toEqual(['A', 'B']);
    expect(body.picture.boxes.map((b) => b.id).sort()).toEqual(['etcd', 'h1', 'h1-p1', 'h2', 'h2-p1', 'out', 'rt']);
  });

  it("gives every agent's state as the agents report it", async () => {
    const { app } = setup();
    const res = await app.inject('/api/agents');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ agents: JSON.parse(JSON.stringify(agents)) as unknown });
  });

  it('traces between two pods and places every hop on the picture', async () => {
    const { app, calls } = setup();
    const res = await app.inject('/api/trace?from=h1-p1&to=h2-p1');
    expect(res.statusCode).toBe(200);
    const body = res.json<{ trace: LabTrace; marks: { id: string; step: number; seen: boolean }[] }>();
    expect(calls).toEqual([['h1-p1', 'h2-p1']]);
    expect(body.trace.complete).toBe(true);
    expect(body.marks.map((m) => m.id)).toEqual(body.trace.hops.map((h) => h.id));
    expect(body.marks.every((m) => m.seen)).toBe(true);
  });

  it('answers a bad source or destination with 400 naming what is wrong, without tracing', async () => {
    const { app, calls } = setup();
    const cases: [string, RegExp][] = [
      ['/api/trace', /give the source pod as \?from=<pod id>/],
      ['/api/trace?from=h7-p1&to=h2-p1', /from: "h7-p1" is not a pod of lab t \(pods: h1-p1, h2-p1\)/],
      ['/api/trace?from=h1-p1', /give the destination as \?to=/],
      ['/api/trace?from=h1-p1&to=moon', /to: "moon" is not a pod, a host, "out" or an IPv4 address/],
      ['/api/trace?from=h1-p1&to=h1-p1', /the source pod itself/],
    ];
    for (const [url, message] of cases) {
      const res = await app.inject(url);
      expect(res.statusCode, url).toBe(400);
      expect(res.json(), url).toMatchObject({ statusCode: 400, code: 'TWILL_ERR_OPTION_INVALID', message: expect.stringMatching(message) as unknown });
    }
    expect(calls).toEqual([]);
    expect((await app.inject('/api/trace?from=h1-p1&to=198.51.100.7')).statusCode).toBe(200);
  });

  it("answers the trace's own errors by their code: a bad end 400, a lab that is not up 503, anything else a logged 500", async () => {
    const errors: Error[] = [
      new TwillError('TWILL_ERR_OPTION_INVALID', 'lab trace: "10.9.9.9" is not ours'),
      new TwillError('TWILL_ERR_LAB_STATE', 'lab "t" is not up'),
      new TwillError('TWILL_ERR_KERNEL_NOT_FOUND', 'tcpdump is not installed'),
      new Error('capture exploded'),
    ];
    const { app, log } = setup(async () => {
      throw errors.shift();
    });
    const answers = [];
    for (let i = 0; i < 4; i++) {
      const res = await app.inject('/api/trace?from=h1-p1&to=h2-p1');
      answers.push([res.statusCode, res.json<{ code: string }>().code]);
    }
    expect(answers).toEqual([
      [400, 'TWILL_ERR_OPTION_INVALID'],
      [503, 'TWILL_ERR_LAB_STATE'],
      [503, 'TWILL_ERR_KERNEL_NOT_FOUND'],
      [500, 'TWILL_ERR_API_BAD_REQUEST'],
    ]);
    expect(log.lines().filter((l) => l.msg === 'lab page request failed')).toHaveLength(1);
  });

  it('runs one trace at a time', async () => {
    let running = 0;
    let most = 0;
    const { app } = setup(async () => {
      most = Math.max(most, ++running);
      await new Promise((resolve) => setTimeout(resolve, 20));
      running--;
      return routedVxlanTrace();
    });
    const answers = await Promise.all([1, 2, 3].map(() => app.inject('/api/trace?from=h1-p1&to=h2-p1')));
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 200]);
    expect(most).toBe(1);
  });

  it('answers an unknown path 404, another method 405 with Allow, both as coded JSON', async () => {
    const { app } = setup();
    const missing = await app.inject('/api/nothing');
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ code: 'TWILL_ERR_API_NOT_FOUND', message: expect.stringContaining('/api/trace') as unknown });
    const post = await app.inject({ method: 'POST', url: '/api/trace' });
    expect(post.statusCode).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    expect(post.json()).toMatchObject({ code: 'TWILL_ERR_API_METHOD' });
  });

  it('refuses a request whose Host is not a loopback name', async () => {
    const { app } = setup();
    const res = await app.inject({ url: '/api/lab', headers: { host: 'evil.example:8480' } });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: 'TWILL_ERR_API_BAD_REQUEST' });
    expect((await app.inject({ url: '/api/lab', headers: { host: '127.0.0.1:8480' } })).statusCode).toBe(200);
  });
});
