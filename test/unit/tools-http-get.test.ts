// The lab's HTTP client program (src/tools/scripts/http-get*.ts). In the lab it runs inside a
// namespace; here it only talks to a server on 127.0.0.1, so it runs in the root namespace.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exec } from '../../src/kernel/exec.js';
import { TwillError } from '../../src/errors.js';
import { failureName, getAll, parseHttpGetArgs } from '../../src/tools/scripts/http-get.js';
import { HTTP_GET_PROGRAM } from '../../src/tools/kernel/http.js';
import { nodeScriptInNetns } from '../../src/tools/kernel/node-script.js';

let server: Server;
let base: string;
/** A loopback port nothing listens on. */
let refused: string;

const listen = (s: Server): Promise<number> => new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/ok') return void res.end('hello');
    if (req.url === '/missing') return void res.writeHead(404).end('nope');
    // '/hang': never answers
  });
  base = `http://127.0.0.1:${await listen(server)}`;
  const closed = createServer();
  refused = `http://127.0.0.1:${await listen(closed)}/`;
  await new Promise((resolve) => closed.close(resolve));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('getAll', () => {
  it('answers every URL in order, failures as status 0 with the reason', async () => {
    const urls = [`${base}/ok`, `${base}/missing`, refused, `${base}/hang`];
    expect(await getAll(urls, 300)).toEqual([
      { url: urls[0], status: 200, body: 'hello' },
      { url: urls[1], status: 404, body: 'nope' },
      { url: urls[2], status: 0, body: 'ECONNREFUSED' },
      { url: urls[3], status: 0, body: 'TimeoutError' },
    ]);
  });

  it('names a failure by its socket code, else its name, else the value itself', () => {
    expect(failureName(Object.assign(new TypeError('fetch failed'), { cause: { code: 'EHOSTUNREACH' } }))).toBe('EHOSTUNREACH');
    expect(failureName(new DOMException('timed out', 'TimeoutError'))).toBe('TimeoutError');
    expect(failureName('odd')).toBe('odd');
    expect(failureName(null)).toBe('null');
  });

  it('takes URL... TIMEOUT_MS and nothing else', () => {
    expect(parseHttpGetArgs(['http://a/', 'http://b/', '1000'])).toEqual({ urls: ['http://a/', 'http://b/'], timeoutMs: 1000 });
    expect(parseHttpGetArgs(['1000'])).toBeNull();
    expect(parseHttpGetArgs(['http://a/'])).toBeNull();
    expect(parseHttpGetArgs(['http://a/', '-5'])).toBeNull();
  });
});

describe('the compiled program (npm run build first)', () => {
  it('is where httpGetInNetns looks for it and prints exactly one JSON array', async () => {
    expect(existsSync(HTTP_GET_PROGRAM), `${HTTP_GET_PROGRAM} is missing: run "npm run build"`).toBe(true);
    const res = await exec(process.execPath, [HTTP_GET_PROGRAM, `${base}/ok`, refused, '1000']);
    expect(JSON.parse(res.stdout)).toEqual([
      { url: `${base}/ok`, status: 200, body: 'hello' },
      { url: refused, status: 0, body: 'ECONNREFUSED' },
    ]);
    expect(res.stdout.trim()).toBe(res.stdout);
  });

  it('exits 2 with a usage line on bad arguments', async () => {
    const res = await exec(process.execPath, [HTTP_GET_PROGRAM, 'http://127.0.0.1:1/'], { allowFailure: true });
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(/^usage: http-get/);
  });

  it('is refused before any namespace is entered when not built', async () => {
    const run = nodeScriptInNetns({ ns: 'twl-t-never', file: '/nonexistent/dist/tools/scripts/x.main.js', args: [], timeoutMs: 1000 });
    await expect(run).rejects.toBeInstanceOf(TwillError);
    await expect(run).rejects.toMatchObject({ code: 'TWILL_ERR_LAB_STATE' });
  });
});
