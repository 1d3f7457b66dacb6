import { describe, expect, it } from 'vitest';
import { isTwillError } from '../../src/errors.js';
import type { ExecOptions, ExecResult } from '../../src/kernel/exec.js';
import {
  createRouteOps,
  normalizeDst,
  parseBatchStderr,
  parseRouteGet,
  parseRouteList,
  routeBatchLine,
  TWILL_ROUTE_PROTO,
  type ExecFn,
  type RouteChange,
} from '../../src/kernel/routes.js';

// Captured from iproute2 6.1 (`ip -json route show proto 116`, `ip -json route get`).
const LIST_SAMPLE =
  '[{"dst":"10.244.2.0/24","gateway":"198.18.0.12","dev":"eth0","flags":[]},' +
  '{"dst":"10.244.4.0/24","gateway":"198.18.0.14","dev":"eth0","flags":[]},' +
  '{"dst":"10.244.9.7","dev":"eth0","flags":[]},{"dst":"default","gateway":"198.18.0.1","dev":"eth0","flags":[]}]\n';
const GET_DIRECT = '[{"dst":"198.18.0.12","dev":"eth0","prefsrc":"198.18.0.11","flags":[],"uid":0,"cache":[]}]';
const GET_VIA = '[{"dst":"203.0.113.1","gateway":"198.18.0.1","dev":"eth0","prefsrc":"198.18.0.11","flags":[],"uid":0,"cache":[]}]';

interface Call {
  cmd: string;
  args: readonly string[];
  opts: ExecOptions;
}

function fakeExec(answer: (call: Call) => Partial<ExecResult>): { run: ExecFn; calls: Call[] } {
  const calls: Call[] = [];
  const run: ExecFn = (cmd, args, opts = {}) => {
    const call = { cmd, args, opts };
    calls.push(call);
    return Promise.resolve({ stdout: '', stderr: '', code: 0, ...answer(call) });
  };
  return { run, calls };
}

const replace = (dst: string, gateway: string): RouteChange => ({ op: 'replace', dst, gateway, dev: 'eth0', proto: TWILL_ROUTE_PROTO });

describe('ip route JSON parsing', () => {
  it('normalizes destinations to CIDR', () => {
    expect(normalizeDst('default')).toBe('0.0.0.0/0');
    expect(normalizeDst('10.1.2.3')).toBe('10.1.2.3/32');
    expect(normalizeDst('10.244.2.0/24')).toBe('10.244.2.0/24');
  });

  it('parses a route list', () => {
    expect(parseRouteList(LIST_SAMPLE)).toEqual([
      { dst: '10.244.2.0/24', gateway: '198.18.0.12', dev: 'eth0' },
      { dst: '10.244.4.0/24', gateway: '198.18.0.14', dev: 'eth0' },
      { dst: '10.244.9.7/32', dev: 'eth0' },
      { dst: '0.0.0.0/0', gateway: '198.18.0.1', dev: 'eth0' },
    ]);
    expect(parseRouteList('[]')).toEqual([]);
    expect(parseRouteList('')).toEqual([]);
  });

  it('rejects output that is not what ip prints, with a code', () => {
    for (const bad of ['not json', '{"dst":1}', '[{"gateway":"1.2.3.4"}]']) {
      let caught: unknown;
      try {
        parseRouteList(bad);
      } catch (err) {
        caught = err;
      }
      expect(isTwillError(caught, 'TWILL_ERR_KERNEL_COMMAND')).toBe(true);
    }
  });

  it('parses route get answers', () => {
    expect(parseRouteGet(GET_DIRECT)).toEqual({ dst: '198.18.0.12/32', dev: 'eth0' });
    expect(parseRouteGet(GET_VIA)).toEqual({ dst: '203.0.113.1/32', dev: 'eth0', gateway: '198.18.0.1' });
    expect(parseRouteGet('[]')).toBeNull();
  });
});

describe('ip batch lines', () => {
  it('writes replace and delete lines with our proto and without onlink', () => {
    expect(routeBatchLine(replace('10.244.2.0/24', '198.18.0.12'))).toBe('route replace 10.244.2.0/24 via 198.18.0.12 dev eth0 proto 116');
    expect(routeBatchLine({ op: 'delete', dst: '10.244.9.0/24', proto: 116 })).toBe('route del 10.244.9.0/24 proto 116');
  });
});

describe('parseBatchStderr', () => {
  it('maps "Command failed -:N" to the line and the error text before it', () => {
    const stderr = 'Error: Nexthop has invalid gateway.\nCommand failed -:2\nRTNETLINK answers: No such process\nCommand failed -:3\n';
    expect([...parseBatchStderr(stderr, 4, 1)]).toEqual([
      [2, 'Error: Nexthop has invalid gateway.'],
      [3, 'RTNETLINK answers: No such process'],
    ]);
  });

  it('reports nothing on success', () => {
    expect(parseBatchStderr('some warning\n', 3, 0).size).toBe(0);
  });

  it('marks the rest of the batch failed when ip aborts on a malformed line', () => {
    const stderr = 'RTNETLINK answers: File exists\nCommand failed -:1\nError: any valid prefix is expected rather than "x".\n';
    const failed = parseBatchStderr(stderr, 3, 255);
    expect([...failed.keys()]).toEqual([1, 2, 3]);
    expect(failed.get(2)).toMatch(/^batch aborted: Error: any valid prefix/);
  });

  it('marks every line failed when ip fails without saying which', () => {
    expect([...parseBatchStderr('', 2, 1).keys()]).toEqual([1, 2]);
  });
});

describe('createRouteOps', () => {
  it('lists routes of one proto in table main, inside the netns', async () => {
    const { run, calls } = fakeExec(() => ({ stdout: LIST_SAMPLE }));
    const routes = await createRouteOps(run, 'ns1').list(116);
    expect(routes).toHaveLength(4);
    expect(calls[0]?.args).toEqual(['-json', '-4', 'route', 'show', 'table', 'main', 'proto', '116']);
    expect(calls[0]?.opts.netns).toBe('ns1');
  });

  it('applies a change set with one ip -force -batch process and maps failures back', async () => {
    const { run, calls } = fakeExec(() => ({ code: 1, stderr: 'Error: Nexthop has invalid gateway.\nCommand failed -:2\n' }));
    const changes = [replace('10.244.2.0/24', '198.18.0.12'), replace('10.244.3.0/24', '198.19.0.1'), { op: 'delete', dst: '10.244.9.0/24', proto: 116 } as const];
    const res = await createRouteOps(run).apply(changes);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args).toEqual(['-force', '-batch', '-']);
    expect(calls[0]?.opts.netns).toBeUndefined();
    expect(calls[0]?.opts.input).toBe(
      'route replace 10.244.2.0/24 via 198.18.0.12 dev eth0 proto 116\nroute replace 10.244.3.0/24 via 198.19.0.1 dev eth0 proto 116\nroute del 10.244.9.0/24 proto 116\n',
    );
    expect(res.failed).toEqual([{ change: changes[1], line: 'route replace 10.244.3.0/24 via 198.19.0.1 dev eth0 proto 116', reason: 'Error: Nexthop has invalid gateway.' }]);
  });

  it('never sends a malformed change (ip would abort the whole batch)', async () => {
    const { run, calls } = fakeExec(() => ({}));
    const bad = [replace('10.244.2.0/24', 'not-an-ip'), { ...replace('10.244.3.0/24', '198.18.0.13'), dev: 'eth0 proto 3' }, replace('10.244.5.1/24', '198.18.0.15')];
    const res = await createRouteOps(run).apply([...bad, replace('10.244.4.0/24', '198.18.0.14')]);
    expect(res.failed.map((f) => f.change)).toEqual(bad);
    expect(calls[0]?.opts.input).toBe('route replace 10.244.4.0/24 via 198.18.0.14 dev eth0 proto 116\n');
  });

  it('runs nothing for an empty change set', async () => {
    const { run, calls } = fakeExec(() => ({}));
    expect(await createRouteOps(run).apply([])).toEqual({ failed: [] });
    expect(calls).toHaveLength(0);
  });

  it('looks up many addresses in one process; unreachable ones are null', async () => {
    const { run, calls } = fakeExec(() => ({ code: 1, stdout: `${GET_DIRECT}\n${GET_VIA}\n`, stderr: 'RTNETLINK answers: Network is unreachable\nCommand failed -:2\n' }));
    const res = await createRouteOps(run, 'ns1').getMany(['198.18.0.12', '192.0.2.9', '203.0.113.1', 'bogus']);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.opts.input).toBe('route get 198.18.0.12\nroute get 192.0.2.9\nroute get 203.0.113.1\n');
    expect(Object.fromEntries(res)).toEqual({
      '198.18.0.12': { dev: 'eth0' },
      '192.0.2.9': null,
      '203.0.113.1': { dev: 'eth0', gateway: '198.18.0.1' },
      bogus: null,
    });
  });

  it('refuses a route get batch whose answers do not add up', async () => {
    const { run } = fakeExec(() => ({ stdout: `${GET_DIRECT}\n` }));
    await expect(createRouteOps(run).getMany(['198.18.0.12', '198.18.0.13'])).rejects.toMatchObject({ code: 'TWILL_ERR_KERNEL_COMMAND' });
  });

  it('get returns null when ip finds no route', async () => {
    const { run } = fakeExec(() => ({ code: 2, stderr: 'RTNETLINK answers: Network is unreachable' }));
    expect(await createRouteOps(run).get('192.0.2.9')).toBeNull();
    const ok = fakeExec(() => ({ stdout: GET_VIA }));
    expect(await createRouteOps(ok.run).get('203.0.113.1')).toEqual({ dev: 'eth0', gateway: '198.18.0.1' });
    expect(ok.calls[0]?.args).toEqual(['-json', 'route', 'get', '203.0.113.1']);
  });
});
