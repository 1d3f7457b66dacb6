import { describe, expect, it } from 'vitest';
import type { ExecOptions } from '../../src/kernel/exec.js';
import { createKernel } from '../../src/kernel/index.js';
import type { ExecFn } from '../../src/kernel/routes.js';
import type { ProcFs } from '../../src/kernel/sysctl.js';

function recorder(stdout = ''): { run: ExecFn; calls: { cmd: string; args: readonly string[]; opts: ExecOptions }[] } {
  const calls: { cmd: string; args: readonly string[]; opts: ExecOptions }[] = [];
  const run: ExecFn = (cmd, args, opts = {}) => {
    calls.push({ cmd, args, opts });
    return Promise.resolve({ stdout, stderr: '', code: 0 });
  };
  return { run, calls };
}

/** A /proc stand-in that fails the test if it is touched when it must not be. */
function memFs(initial = '0\n'): ProcFs & { files: Map<string, string> } {
  const files = new Map([['/proc/sys/net/ipv4/ip_forward', initial]]);
  return {
    files,
    readFile: (path) => Promise.resolve(files.get(path) ?? ''),
    writeFile: (path, data) => {
      files.set(path, data);
      return Promise.resolve();
    },
  };
}

describe('sysctl', () => {
  it('with a netns, runs sysctl inside it and never writes /proc here', async () => {
    const { run, calls } = recorder('1\n');
    const fs = memFs();
    const kernel = createKernel({ netns: 'twl-x', exec: run, procFs: fs });
    await kernel.sysctl.enableIpForward();
    expect(await kernel.sysctl.ipForwardEnabled()).toBe(true);
    expect(calls.map((c) => [c.cmd, ...c.args])).toEqual([
      ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'],
      ['sysctl', '-n', 'net.ipv4.ip_forward'],
    ]);
    expect(calls.every((c) => c.opts.netns === 'twl-x')).toBe(true);
    expect(fs.files.get('/proc/sys/net/ipv4/ip_forward')).toBe('0\n');
  });

  it('forwarding already on: writes nothing (a container has /proc/sys read-only)', async () => {
    const { run } = recorder();
    const fs = memFs('1\n');
    fs.writeFile = () => Promise.reject(Object.assign(new Error('EROFS'), { code: 'EROFS' }));
    await createKernel({ exec: run, procFs: fs }).sysctl.enableIpForward();
  });

  it('without a netns, writes /proc/sys directly and runs nothing', async () => {
    const { run, calls } = recorder();
    const fs = memFs();
    const kernel = createKernel({ exec: run, procFs: fs });
    expect(await kernel.sysctl.ipForwardEnabled()).toBe(false);
    await kernel.sysctl.enableIpForward();
    expect(fs.files.get('/proc/sys/net/ipv4/ip_forward')).toBe('1\n');
    expect(await kernel.sysctl.ipForwardEnabled()).toBe(true);
    expect(calls).toHaveLength(0);
  });

  it('reports a failed write with a code', async () => {
    const fs: ProcFs = { readFile: () => Promise.resolve('0'), writeFile: () => Promise.reject(new Error('EROFS')) };
    const kernel = createKernel({ exec: recorder().run, procFs: fs });
    await expect(kernel.sysctl.enableIpForward()).rejects.toMatchObject({ code: 'TWILL_ERR_KERNEL_COMMAND' });
  });
});
