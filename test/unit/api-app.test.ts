import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../src/api/app.js';
import { TwillError } from '../../src/errors.js';
import type { PathTrace } from '../../src/trace/path.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { memoryLogger } from '../support/logger.js';
import { fakeSource, runningStatus, startingStatus } from '../support/status.js';

function setup() {
  const source = fakeSource(startingStatus());
  const metrics = createMetrics({ status: source.status, version: '0.0.0-test', backends: [], defaultMetrics: false });
  const log = memoryLogger();
  const app = buildApi({ status: source, metrics: metrics.registry, logger: log.logger });
  return { source, metrics, app, log };
}

let app: FastifyInstance | null = null;
afterEach(async () => {
  await app?.close();
  app = null;
});

describe('status API', () => {
  it('is live but not ready before the lease, ready once running, not ready again when the lease is lost', async () => {
    const s = setup();
    app = s.app;
    expect((await app.inject('/healthz')).statusCode).toBe(200);
    let ready = await app.inject('/readyz');
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ ready: false, waitingFor: ['lease', 'backend', 'subnet-file'] });

    s.source.set(runningStatus());
    ready = await app.inject('/readyz');
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ ready: true, waitingFor: [] });

    s.source.set({ ...runningStatus(), ready: false, waitingFor: ['lease'], lease: null });
    ready = await app.inject('/readyz');
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ waitingFor: ['lease'] });
  });

  it('healthz turns 503 once the agent stops', async () => {
    const s = setup();
    app = s.app;
    s.source.setLive(false);
    const res = await app.inject('/healthz');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ live: false });
  });

  it('serves the whole status as JSON, peers appearing and disappearing', async () => {
    const s = setup();
    app = s.app;
    s.source.set(runningStatus());
    let res = await app.inject('/v1/status');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json()).toEqual(runningStatus());
    s.source.set({ ...runningStatus(), peers: [] });
    res = await app.inject('/v1/status');
    expect(res.json()).toMatchObject({ peers: [] });
  });

  it('answers an unknown path with a 404 JSON error', async () => {
    app = setup().app;
    const res = await app.inject('/v2/nothing?x=1');
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json()).toMatchObject({ statusCode: 404, code: 'TWILL_ERR_API_NOT_FOUND' });
  });

  it('answers another method on a known path with a 405 JSON error and Allow', async () => {
    app = setup().app;
    for (const method of ['POST', 'DELETE', 'PUT'] as const) {
      const res = await app.inject({ method, url: '/v1/status', payload: method === 'DELETE' ? undefined : { a: 1 } });
      expect(res.statusCode).toBe(405);
      expect(res.headers.allow).toBe('GET, HEAD');
      expect(res.json()).toMatchObject({ statusCode: 405, code: 'TWILL_ERR_API_METHOD' });
    }
  });

  it('answers a malformed request with a 400 JSON error', async () => {
    app = setup().app;
    const res = await app.inject('/v1/%zz');
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ statusCode: 400, code: 'TWILL_ERR_API_BAD_REQUEST' });
  });

  it('answers a failing status source with a 500 JSON error, logged', async () => {
    const s = setup();
    app = s.app;
    s.source.status = () => {
      throw new Error('boom');
    };
    const res = await app.inject('/v1/status');
    expect(res.statusCode).toBe(500);
    expect(res.json()).toMatchObject({ statusCode: 500 });
    expect(s.log.lines().some((l) => l.msg === 'status API request failed' && l.component === 'api')).toBe(true);
  });

  it('serves Prometheus text on /metrics', async () => {
    const s = setup();
    app = s.app;
    s.source.set(runningStatus());
    const res = await app.inject('/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.body).toMatch(/^twill_peers 1$/m);
  });
});

describe('status API: GET /v1/trace', () => {
  it('hands ?dst= to the trace and answers its JSON; no dst, or one the trace refuses, is a 400 with a coded error', async () => {
    const source = fakeSource(runningStatus());
    const metrics = createMetrics({ status: source.status, version: '0.0.0-test', backends: [], defaultMetrics: false });
    const asked: string[] = [];
    const trace = async (dst: string, from?: string): Promise<PathTrace> => {
      asked.push(from === undefined ? dst : `${dst} from ${from}`);
      if (dst === 'nope') throw new TwillError('TWILL_ERR_API_BAD_REQUEST', 'trace: "nope" is not an IPv4 address');
      return { dst, complete: true, steps: [{ step: 'destination', text: 'x' }], problems: [] };
    };
    app = buildApi({ status: source, trace, metrics: metrics.registry, logger: memoryLogger().logger });
    const ok = await app.inject('/v1/trace?dst=10.244.2.5');
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ dst: '10.244.2.5', complete: true });
    expect((await app.inject('/v1/trace')).json()).toMatchObject({ statusCode: 400, code: 'TWILL_ERR_API_BAD_REQUEST' });
    const bad = await app.inject('/v1/trace?dst=nope');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toContain('"nope" is not an IPv4 address');
    expect((await app.inject('/v1/trace?dst=10.244.2.5&from=10.244.1.2')).statusCode).toBe(200);
    expect(asked).toEqual(['10.244.2.5', 'nope', '10.244.2.5 from 10.244.1.2']);
  });
});
