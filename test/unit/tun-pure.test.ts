import { describe, expect, it } from 'vitest';
import { isTwillError } from '../../src/errors.js';
import { checkTunName, errnoName, splitSlab, tunNetnsPath, tunOpenError, type TunSysError } from '../../src/kernel/tun.js';

// The pure halves of src/kernel/tun.ts; importing it does not load the addon.

/** A slab as native/tun.c lays it out: count, errno, data offset, 64 lengths, packets. */
function slab(packets: readonly number[][], errno = 0): ArrayBuffer {
  const header = 4 * (3 + 64);
  const total = header + packets.reduce((n, p) => n + p.length, 0);
  const ab = new ArrayBuffer(total);
  const words = new Uint32Array(ab, 0, 3 + 64);
  words.set([packets.length, errno, header]);
  const bytes = new Uint8Array(ab);
  let at = header;
  packets.forEach((p, i) => {
    words[3 + i] = p.length;
    bytes.set(p, at);
    at += p.length;
  });
  return ab;
}

function sysError(syscall: string, errno: number): TunSysError {
  return Object.assign(new Error(`${syscall}: failed`), { errno, syscall });
}

describe('splitSlab', () => {
  it('cuts back-to-back packets into Buffer views of the same memory', () => {
    const ab = slab([[0x45, 1, 2], [0x45], [0x60, 9, 9, 9]]);
    const batch = splitSlab(ab);
    expect(batch.kind).toBe('packets');
    if (batch.kind !== 'packets') return;
    expect(batch.packets.map((p) => [...p])).toEqual([[0x45, 1, 2], [0x45], [0x60, 9, 9, 9]]);
    expect(batch.packets.every((p) => Buffer.isBuffer(p) && p.buffer === ab)).toBe(true);
  });

  it('reads count 0 as the reader stopping on an errno', () => {
    expect(splitSlab(slab([], 77))).toEqual({ kind: 'error', errno: 77 });
  });
});

describe('checkTunName', () => {
  it('accepts what the kernel accepts', () => {
    for (const ok of ['tun0', 'flannel0', 'twill.1', 'x'.repeat(15), 'tun%d']) expect(checkTunName(ok)).toBeNull();
  });
  it('refuses what the kernel would refuse', () => {
    for (const bad of ['', '.', '..', 'x'.repeat(16), 'a/b', 'a:b', 'a b', 'ä'.repeat(8)]) expect(checkTunName(bad)).not.toBeNull();
  });
});

describe('tunNetnsPath', () => {
  it('maps names to /var/run/netns and keeps absolute paths', () => {
    expect(tunNetnsPath('node-a')).toBe('/var/run/netns/node-a');
    expect(tunNetnsPath('/proc/1/ns/net')).toBe('/proc/1/ns/net');
  });
  it('refuses names that would escape the directory', () => {
    for (const bad of ['', '..', 'a/../b']) expect(() => tunNetnsPath(bad)).toThrow(expect.objectContaining({ code: 'TWILL_ERR_KERNEL_TUN' }));
  });
});

describe('errnoName', () => {
  it('names errnos, including Linux ones libuv does not know', () => {
    expect([errnoName(1), errnoName(16), errnoName(77), errnoName(999)]).toEqual(['EPERM', 'EBUSY', 'EBADFD', 'errno 999']);
  });
});

describe('tunOpenError', () => {
  const ctx = { name: 'tun0' };
  const cases: [syscall: string, errno: number, code: string][] = [
    ['open /dev/net/tun', 2 /* ENOENT */, 'TWILL_ERR_KERNEL_TUN_MISSING'],
    ['open /dev/net/tun', 19 /* ENODEV */, 'TWILL_ERR_KERNEL_TUN_MISSING'],
    ['open /dev/net/tun', 6 /* ENXIO */, 'TWILL_ERR_KERNEL_TUN_MISSING'],
    ['open /dev/net/tun', 1 /* EPERM */, 'TWILL_ERR_KERNEL_TUN_PERMISSION'],
    ['open /dev/net/tun', 13 /* EACCES */, 'TWILL_ERR_KERNEL_TUN_PERMISSION'],
    ['ioctl TUNSETIFF', 1 /* EPERM */, 'TWILL_ERR_KERNEL_TUN_PERMISSION'],
    ['setns', 1 /* EPERM */, 'TWILL_ERR_KERNEL_TUN_PERMISSION'],
    ['ioctl TUNSETIFF', 16 /* EBUSY */, 'TWILL_ERR_KERNEL_TUN'],
    ['ioctl TUNSETIFF', 22 /* EINVAL */, 'TWILL_ERR_KERNEL_TUN'],
    ['open netns', 2 /* ENOENT: the namespace, not the tun module */, 'TWILL_ERR_KERNEL_TUN'],
    ['name', 22, 'TWILL_ERR_KERNEL_TUN'],
    ['open /dev/net/tun', 24 /* EMFILE */, 'TWILL_ERR_KERNEL_TUN'],
  ];
  it.each(cases)('%s errno %d -> %s', (syscall, errno, code) => {
    const cause = sysError(syscall, errno);
    const err = tunOpenError(cause, { ...ctx, netns: 'n1' });
    expect(isTwillError(err)).toBe(true);
    expect(err.code).toBe(code);
    expect(err.transient).toBe(false);
    expect(err.cause).toBe(cause);
    expect(err.details).toMatchObject({ name: 'tun0', netns: 'n1', syscall });
    expect(typeof err.details['errno']).toBe('string');
  });

  it('names the fix', () => {
    expect(tunOpenError(sysError('open /dev/net/tun', 2), ctx).message).toMatch(/modprobe tun/);
    expect(tunOpenError(sysError('open /dev/net/tun', 1), ctx).message).toMatch(/NET_ADMIN/);
    expect(tunOpenError(sysError('open /dev/net/tun', 1), ctx).details).toMatchObject({ errno: 'EPERM' });
  });
});
