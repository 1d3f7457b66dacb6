/**
 * The one place the udp backend reaches the kernel's TUN opener (src/kernel/tun.ts loads the
 * addon lazily, on open). The backend takes an OpenTunFn so that tests can hand it a fake.
 */
import { openTun } from '../../kernel/tun.js';
import type { TunDevice, TunOffload } from '../../kernel/tun-types.js';

export interface OpenTunRequest {
  readonly name: string;
  readonly netns?: string;
  readonly offload: TunOffload;
  /** Also TSO reads (the native pump segments them). */
  readonly tso?: boolean;
  /** Reading failed for good (the device was deleted under us); the data path has stopped. */
  readonly onError: (err: Error) => void;
}

export type OpenTunFn = (req: OpenTunRequest) => TunDevice;

export const openKernelTun: OpenTunFn = (req) => openTun(req);
