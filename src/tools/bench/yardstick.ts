/**
 * The bench's yardsticks for the udp backend, run in a udp lab in place of the two agents, on a
 * TUN device configured exactly as twill configures its own:
 * - flannel-udp: flannel's udp proxy loop in C (native/reference/flannel_udp.c, built by
 *   node-gyp at `npm ci`), what the udp backend is measured against;
 * - node-udp: the same loop in Node.js (reference/node-udp.ts), node:dgram and twill's TUN addon
 *   and nothing else, the floor for any forwarder written in Node.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { TUN_TXQUEUELEN, tunAddress, UDP_OVERHEAD } from '../../backend/udp/peers.js';
import { TwillError } from '../../errors.js';
import { startDaemon, stopProcess } from '../kernel/process.js';
import { configureTun } from '../../kernel/tun-config.js';
import { DEFAULT_UDP_PORT } from '../../backend/udp/options.js';
import { formatIp, parseCidr } from '../../lib/ipv4.js';
import type { LabState } from '../lab/state.js';
import { LAB_NETWORK } from '../lab/topology.js';
import type { Yardstick } from './results.js';


interface Program {
  /** What the bench's progress lines call it. */
  readonly what: string;
  /** The file that must exist, and how to get it when it does not. */
  readonly file: string;
  readonly howToBuild: string;
  /** The command line before the forwarder's own arguments. */
  readonly command: readonly string[];
}

// Paths from src/tools/bench and dist/tools/bench alike: the built files, never the TypeScript.
const FLANNEL_UDP = fileURLToPath(new URL('../../../build/Release/flannel_udp', import.meta.url));
const NODE_UDP = fileURLToPath(new URL('../../../dist/tools/bench/reference/node-udp.js', import.meta.url));

const PROGRAMS: Readonly<Record<Yardstick, Program>> = {
  'flannel-udp': { what: "flannel's udp proxy loop (C)", file: FLANNEL_UDP, howToBuild: 'run "npm ci" (node-gyp builds it with the TUN addon)', command: [FLANNEL_UDP] },
  'node-udp': { what: 'the same loop in Node.js', file: NODE_UDP, howToBuild: 'run "npm run build"', command: [process.execPath, NODE_UDP] },
};

const DEVICE = 'twill0';
const UNDERLAY_MTU = 1500; // the lab's veths keep the kernel's default
const DEVICE_WAIT_MS = 5_000;

type Host = LabState['hosts'][number];

export const yardstickName = (y: Yardstick): string => PROGRAMS[y].what;

/** Preflight: say so if the forwarder is not built. */
export function assertYardstickBuilt(y: Yardstick): void {
  const p = PROGRAMS[y];
  if (!existsSync(p.file)) throw new TwillError('TWILL_ERR_LAB_STATE', `the reference forwarder ${p.file} is missing: ${p.howToBuild}`);
}

/**
 * Stops h1's and h2's agents (their TUN devices go with them) and starts the forwarder on
 * each, pointed at the other. Returns the state with the forwarders' pids in place of the
 * agents', so that the bench's CPU figures read the forwarders.
 */
export async function replaceAgents(state: LabState, y: Yardstick, signal?: AbortSignal): Promise<LabState> {
  assertYardstickBuilt(y);
  const [h1, h2] = state.hosts;
  if (!h1?.subnet || !h2?.subnet) throw new TwillError('TWILL_ERR_LAB_STATE', `lab "${state.options.name}" has no leased subnet on h1 and h2`);
  for (const h of [h1, h2]) if (h.pid !== null) await stopProcess(h.pid);
  const pids = new Map<string, number>();
  for (const [self, peer] of [[h1, h2], [h2, h1]] as const) {
    pids.set(self.id, await startForwarder(state, y, self, peer, signal));
  }
  return { ...state, hosts: state.hosts.map((h) => ({ ...h, pid: pids.get(h.id) ?? h.pid })) };
}

/**
 * Stops one host's agent and starts the forwarder there, pointed at `peer` (whose agent keeps
 * running): a flannel node beside a twill node, for the interop test. Returns the forwarder's pid.
 */
export async function replaceAgent(state: LabState, y: Yardstick, self: Host, peer: Host, signal?: AbortSignal): Promise<number> {
  assertYardstickBuilt(y);
  if (self.pid !== null) await stopProcess(self.pid);
  return startForwarder(state, y, self, peer, signal);
}

async function startForwarder(state: LabState, y: Yardstick, self: Host, peer: Host, signal?: AbortSignal): Promise<number> {
  const own = parseCidr(self.subnet ?? '');
  if (own === null || peer.subnet === null) throw new TwillError('TWILL_ERR_LAB_STATE', `host ${self.id} has no valid subnet`);
  const dir = `${state.options.dir}/${self.id}`;
  const [cmd = '', ...head] = PROGRAMS[y].command;
  const args = [...head, DEVICE, String(DEFAULT_UDP_PORT) /* the lab's config sets no Port */, peer.ip, peer.subnet];
  const pid = await startDaemon({ cmd, args, netns: self.ns, logFile: `${dir}/${y}.log`, pidFile: `${dir}/${y}.pid` });
  const config = { dev: DEVICE, address: formatIp(tunAddress(own)), mtu: UNDERLAY_MTU - UDP_OVERHEAD, txqueuelen: TUN_TXQUEUELEN, network: LAB_NETWORK };
  // The forwarder creates the device as it starts: configure it once it is there.
  for (const started = Date.now(); ; await sleep(50, undefined, { signal })) {
    try {
      await configureTun(config, { netns: self.ns });
      return pid;
    } catch (err) {
      if (Date.now() - started > DEVICE_WAIT_MS) throw new TwillError('TWILL_ERR_LAB_STATE', `the reference forwarder on ${self.id} made no ${DEVICE} (see ${dir}/${y}.log)`, { cause: err });
    }
  }
}
