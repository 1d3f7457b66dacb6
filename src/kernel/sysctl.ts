import { readFile, writeFile } from 'node:fs/promises';
import { TwillError } from '../errors.js';
import type { ExecFn } from './routes.js';

const IP_FORWARD_KEY = 'net.ipv4.ip_forward';
const IP_FORWARD_PATH = '/proc/sys/net/ipv4/ip_forward';

export interface SysctlOps {
  /** Sets net.ipv4.ip_forward=1 in the kernel's namespace (the one given to createKernel). */
  enableIpForward(): Promise<void>;
  ipForwardEnabled(): Promise<boolean>;
}

/** The file access used without a netns; injectable so that unit tests never write /proc. */
export interface ProcFs {
  readFile(path: string): Promise<string>;
  writeFile(path: string, data: string): Promise<void>;
}

const realFs: ProcFs = {
  readFile: (path) => readFile(path, 'utf8'),
  writeFile: (path, data) => writeFile(path, data),
};

/**
 * With a netns, every read and write runs inside it through exec (`ip netns exec NS sysctl`):
 * writing /proc/sys from this process would change the namespace twill itself runs in.
 * Without one, /proc/sys is the agent's own namespace and is written directly.
 */
export function createSysctl(run: ExecFn, netns?: string, fs: ProcFs = realFs): SysctlOps {
  if (netns !== undefined) {
    return {
      async enableIpForward() {
        await run('sysctl', ['-q', '-w', `${IP_FORWARD_KEY}=1`], { netns });
      },
      async ipForwardEnabled() {
        const res = await run('sysctl', ['-n', IP_FORWARD_KEY], { netns });
        return res.stdout.trim() === '1';
      },
    };
  }
  return {
    async enableIpForward() {
      // Already on: no write. A container without privileges has /proc/sys read-only, and a
      // Kubernetes node or a compose service (sysctls:) has forwarding on already.
      if ((await fs.readFile(IP_FORWARD_PATH).catch(() => '')).trim() === '1') return;
      try {
        await fs.writeFile(IP_FORWARD_PATH, '1\n');
      } catch (err) {
        throw new TwillError('TWILL_ERR_KERNEL_COMMAND', `cannot enable IPv4 forwarding (${IP_FORWARD_PATH}; in a container, set net.ipv4.ip_forward=1 for it)`, { cause: err });
      }
    },
    async ipForwardEnabled() {
      return (await fs.readFile(IP_FORWARD_PATH)).trim() === '1';
    },
  };
}
