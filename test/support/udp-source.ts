/**
 * Measures, at the receiver, which source address a datagram arrives with: a tiny UDP server
 * in one namespace prints the sender address of what it gets; a client in another namespace
 * sends to it until one arrives. UDP needs no reply, so an un-NATed packet is seen too.
 */
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { exec } from '../../src/kernel/exec.js';

const SERVER = `const s = require('node:dgram').createSocket('udp4');
s.on('message', (_m, r) => process.stdout.write(r.address + '\\n'));
s.bind(Number(process.argv[2]), process.argv[1], () => process.stdout.write('ready\\n'));
setTimeout(() => process.exit(0), Number(process.argv[3]));`;

const CLIENT = `const s = require('node:dgram').createSocket('udp4');
s.send('twill', Number(process.argv[2]), process.argv[1], () => s.close());`;

export interface Endpoint {
  readonly ns: string;
  readonly ip: string;
}

/** The source address `to` sees for datagrams sent from namespace `fromNs`; null if none arrived in time. */
export async function sourceSeenBy(to: Endpoint, fromNs: string, port = 9999, timeoutMs = 5_000): Promise<string | null> {
  const server = spawn('ip', ['netns', 'exec', to.ns, process.execPath, '-e', SERVER, to.ip, String(port), String(timeoutMs + 2_000)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  server.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise((r) => server.once('exit', r));
  try {
    const deadline = Date.now() + timeoutMs;
    while (!out.includes('ready\n') && Date.now() < deadline) await sleep(50);
    while (Date.now() < deadline) {
      await exec(process.execPath, ['-e', CLIENT, to.ip, String(port)], { netns: fromNs, allowFailure: true });
      await sleep(200);
      const seen = out.split('\n').find((l) => l !== '' && l !== 'ready');
      if (seen) return seen;
    }
    return null;
  } finally {
    server.kill('SIGTERM');
    await exited;
  }
}
