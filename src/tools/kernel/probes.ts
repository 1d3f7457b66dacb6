import { TwillError } from '../../errors.js';
import { exec } from '../../kernel/exec.js';

export interface IperfRun {
  readonly serverNs: string;
  readonly clientNs: string;
  readonly serverIp: string;
  readonly seconds: number;
  readonly streams: number;
  readonly port?: number;
  /** A UDP test at unlimited rate (`-u -l BYTES -b 0`) instead of TCP. */
  readonly udpPayloadBytes?: number;
  /** Aborting kills both ends. */
  readonly signal?: AbortSignal;
}

/** One iperf3 test between two namespaces; returns the client's JSON report text. */
export async function iperf3(run: IperfRun): Promise<string> {
  const port = String(run.port ?? 5201);
  const limit = (run.seconds + 30) * 1000;
  const opts = { timeoutMs: limit, signal: run.signal };
  // Settled here so an aborted client never leaves the server's rejection unhandled.
  const server = exec('iperf3', ['-s', '-1', '-B', run.serverIp, '-p', port], { ...opts, netns: run.serverNs, allowFailure: true }).catch(() => null);
  await waitListening(run.serverNs, run.port ?? 5201, run.signal);
  const udp = run.udpPayloadBytes === undefined ? [] : ['-u', '-l', String(run.udpPayloadBytes), '-b', '0'];
  const args = ['-c', run.serverIp, '-p', port, '-t', String(run.seconds), '-P', String(run.streams), ...udp, '-J'];
  // iperf3 -J reports its own errors in the JSON ("error"), which the caller's parser surfaces.
  const client = await exec('iperf3', args, { ...opts, netns: run.clientNs, allowFailure: true });
  await server;
  if (client.code !== 0 && !client.stdout.trimStart().startsWith('{')) {
    throw new TwillError('TWILL_ERR_KERNEL_COMMAND', `iperf3 -c ${run.serverIp} in ${run.clientNs} failed (exit ${client.code}): ${client.stderr.trim()}`, { details: { ...client } });
  }
  return client.stdout;
}

async function waitListening(ns: string, port: number, signal?: AbortSignal): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const { stdout } = await exec('ss', ['-Hltn', `sport = :${port}`], { netns: ns, allowFailure: true, signal });
    if (stdout.trim() !== '') return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `ping -c COUNT -i INTERVAL` from a namespace; returns ping's output (one line per reply). */
export async function ping(ns: string, ip: string, count: number, intervalSeconds: number, signal?: AbortSignal): Promise<string> {
  const args = ['-c', String(count), '-i', String(intervalSeconds), '-W', '1', ip];
  return (await exec('ping', args, { netns: ns, timeoutMs: (count * intervalSeconds + 10) * 1000, allowFailure: true, signal })).stdout;
}
