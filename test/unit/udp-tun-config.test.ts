import { describe, expect, it } from 'vitest';
import { isTwillError } from '../../src/errors.js';
import type { ExecFn } from '../../src/kernel/index.js';
import { configureTun, tunBatchLines } from '../../src/kernel/tun-config.js';

const GOOD = { dev: 'twill0', address: '10.244.1.0', mtu: 1472, txqueuelen: 1000, network: '10.244.0.0/16' };

describe('TUN device configuration', () => {
  it('is three ip batch lines: /32 address, MTU, txqueuelen and up, the overlay route marked proto 116', () => {
    expect(tunBatchLines(GOOD)).toEqual(['address replace 10.244.1.0/32 dev twill0', 'link set dev twill0 mtu 1472 txqueuelen 1000 up', 'route replace 10.244.0.0/16 dev twill0 proto 116']);
  });

  it('refuses bad input before running anything (ip would abort the whole batch)', async () => {
    let ran = 0;
    const exec = (async () => {
      ran++;
      return { stdout: '', stderr: '', code: 0 };
    }) as ExecFn;
    const bad = [{ dev: 'twill 0' }, { dev: 'a-name-that-is-too-long' }, { address: '10.244.1' }, { mtu: 20 }, { mtu: 1.5 }, { txqueuelen: 0 }, { txqueuelen: 100_001 }, { txqueuelen: 2.5 }, { network: '10.244.0.1/16' }];
    for (const over of bad) {
      const err = await configureTun({ ...GOOD, ...over }, { exec, writeProc: async () => undefined }).catch((e: unknown) => e);
      expect(isTwillError(err, 'TWILL_ERR_KERNEL_COMMAND'), JSON.stringify(over)).toBe(true);
    }
    expect(ran).toBe(0);
  });

  it('takes a txqueuelen from 1 to 100000', async () => {
    const inputs: string[] = [];
    const exec = (async (_cmd, _args, o = {}) => {
      inputs.push(o.input ?? '');
      return { stdout: '', stderr: '', code: 0 };
    }) as ExecFn;
    for (const txqueuelen of [1, 100_000]) await configureTun({ ...GOOD, txqueuelen }, { exec, writeProc: async () => undefined });
    expect(inputs.map((i) => i.split('\n')[1])).toEqual(['link set dev twill0 mtu 1472 txqueuelen 1 up', 'link set dev twill0 mtu 1472 txqueuelen 100000 up']);
  });

  it('tolerates a kernel without IPv6 (no disable_ipv6 file)', async () => {
    const exec = (async () => ({ stdout: '', stderr: '', code: 0 })) as ExecFn;
    const writes: string[] = [];
    const writeProc = async (path: string) => {
      if (path.includes('ipv6')) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      writes.push(path);
    };
    await expect(configureTun(GOOD, { exec, writeProc })).resolves.toBeUndefined();
    expect(writes).toEqual(['/proc/sys/net/ipv4/conf/twill0/accept_local']);
  });

  it('turns a failed /proc write into a coded error', async () => {
    const exec = (async () => ({ stdout: '', stderr: '', code: 0 })) as ExecFn;
    const err = await configureTun(GOOD, { exec, writeProc: () => Promise.reject(new Error('EROFS')), readProc: async () => '0\n' }).catch((e: unknown) => e);
    expect(isTwillError(err, 'TWILL_ERR_KERNEL_COMMAND')).toBe(true);
    expect(err).toMatchObject({ details: { path: '/proc/sys/net/ipv4/conf/twill0/accept_local' } });
  });

  it('a read-only /proc/sys (a container) is fine when the keys are already 1 (inherited from conf/default)', async () => {
    const exec = (async () => ({ stdout: '', stderr: '', code: 0 })) as ExecFn;
    const rofs = () => Promise.reject(Object.assign(new Error('EROFS'), { code: 'EROFS' }));
    await expect(configureTun(GOOD, { exec, writeProc: rofs, readProc: async () => '1\n' })).resolves.toBeUndefined();
  });
});
