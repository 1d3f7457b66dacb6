/**
 * The bench's yardstick for the udp backend: flannel's udp proxy loop in C
 * (native/reference/flannel_udp.c, built by node-gyp at `npm ci`), run in a udp lab in place of
 * the two agents, on a TUN device configured exactly as twill configures its own.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { TUN_TXQUEUELEN, tunAddress, UDP_OVERHEAD } from '../backend/udp/peers.js';
import { TwillError } from '../errors.js';
import { startDaemon, stopProcess } from '../kernel/process.js';
import { configureTun } from '../kernel/tun-config.js';
import { DEFAULT_UDP_PORT } from '../subnet/config.js';
import { formatIp, parseCidr } from '../subnet/ipv4.js';
import type { LabState } from '../lab/state.js';
import { LAB_NETWORK } from '../lab/topology.js';

const BINARY = fileURLToPath(new URL('../../build/Release/flannel_udp', import.meta.url)); // from src/bench and dist/bench alike
const DEVICE = 'twill0';
const UNDERLAY_MTU = 1500; // the lab's veths keep the kernel's default
const DEVICE_WAIT_MS = 5_000;

type Host = LabState['hosts'][number];

/** Preflight: the forwarder is built by `npm ci` with the addon; say so if it is not there. */
export function assertFlannelUdpBuilt(): void {
  if (!existsSync(BINARY)) {
    throw new TwillError('TWILL_ERR_LAB_STATE', `the reference forwarder ${BINARY} is missing: run "npm ci" (node-gyp builds it with the TUN addon)`);
  }
}

/**
 * Stops h1's and h2's agents (their TUN devices go with them) and starts the C forwarder on
 * each, pointed at the other. Returns the state with the forwarders' pids in place of the
 * agents', so that the bench's CPU figures read the forwarders.
 */
export async function replaceAgentsWithFlannelUdp(state: LabState, signal?: AbortSignal): Promise<LabState> {
  assertFlannelUdpBuilt();
  const [h1, h2] = state.hosts;
  if (!h1?.subnet || !h2?.subnet) throw new TwillError('TWILL_ERR_LAB_STATE', `lab "${state.options.name}" has no leased subnet on h1 and h2`);
  for (const h of [h1, h2]) if (h.pid !== null) await stopProcess(h.pid);
  const pids = new Map<string, number>();
  for (const [self, peer] of [[h1, h2], [h2, h1]] as const) {
    pids.set(self.id, await startForwarder(state, self, peer, signal));
  }
  return { ...state, hosts: state.hosts.map((h) => ({ ...h, pid: pids.get(h.id) ?? h.pid })) };
}

async function startForwarder(state: LabState, self: Host, peer: Host, signal?: AbortSignal): Promise<number> {
  const own = parseCidr(self.subnet ?? '');
  if (own === null || peer.subnet === null) throw new TwillError('TWILL_ERR_LAB_STATE', `host ${self.id} has no valid subnet`);
  const dir = `${state.options.dir}/${self.id}`;
  const pid = await startDaemon({ cmd: BINARY, args: [DEVICE, String(DEFAULT_UDP_PORT) /* the lab's config sets no Port */, peer.ip, peer.subnet], netns: self.ns, logFile: `${dir}/flannel-udp.log`, pidFile: `${dir}/flannel-udp.pid` });
  const config = { dev: DEVICE, address: formatIp(tunAddress(own)), mtu: UNDERLAY_MTU - UDP_OVERHEAD, txqueuelen: TUN_TXQUEUELEN, network: LAB_NETWORK };
  // The forwarder creates the device as it starts: configure it once it is there.
  for (const started = Date.now(); ; await sleep(50, undefined, { signal })) {
    try {
      await configureTun(config, { netns: self.ns });
      return pid;
    } catch (err) {
      if (Date.now() - started > DEVICE_WAIT_MS) throw new TwillError('TWILL_ERR_LAB_STATE', `the reference forwarder on ${self.id} made no ${DEVICE} (see ${dir}/flannel-udp.log)`, { cause: err });
    }
  }
}
