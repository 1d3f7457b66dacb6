import { spawn } from 'node:child_process';
import { TwillError } from '../../errors.js';

export interface CaptureSpec {
  readonly ns: string;
  readonly dev: string;
  /** A BPF filter (tcpdump's syntax). */
  readonly filter: string;
  /** Bytes kept of the packet (headers are all we decode). */
  readonly snaplen?: number;
}

/** One `tcpdump -c 1` waiting in a namespace: `ready` once its filter is attached, `packet` the pcap it wrote. */
export interface Capture {
  readonly ready: Promise<void>;
  /** The pcap file (global header and one record), or null when it was stopped before a packet came. */
  readonly packet: Promise<Buffer | null>;
  stop(): void;
}

const READY_TIMEOUT_MS = 5_000;
const PCAP_FILE_HEADER = 24;

/**
 * `ip netns exec NS tcpdump -i DEV -c 1 -w -`: the first packet matching the filter, as pcap on
 * stdout. tcpdump writes "listening on DEV" to stderr once the filter is attached, so a packet
 * sent after `ready` is seen.
 */
export function startCapture(spec: CaptureSpec): Capture {
  const args = ['netns', 'exec', spec.ns, 'tcpdump', '-i', spec.dev, '-c', '1', '-nn', '-U', '--immediate-mode', '-s', String(spec.snaplen ?? 256), '-w', '-', spec.filter];
  const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => out.push(b));
  const failed = (why: string) => new TwillError('TWILL_ERR_KERNEL_COMMAND', `tcpdump -i ${spec.dev} in ${spec.ns} ${why}: ${stderr.trim() || 'no output'}`, { details: { ns: spec.ns, dev: spec.dev } });
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(failed('did not start listening')), READY_TIMEOUT_MS);
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      if (stderr.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('error', (e) => reject(new TwillError('TWILL_ERR_KERNEL_NOT_FOUND', `cannot run tcpdump: ${e.message}`, { cause: e })));
    child.once('close', () => {
      clearTimeout(timer);
      reject(failed('exited before listening'));
    });
  });
  const packet = new Promise<Buffer | null>((resolve) => {
    // More than pcap's 24-byte file header: a record was written (even if stopped right after).
    child.once('close', () => {
      const file = Buffer.concat(out);
      resolve(file.length > PCAP_FILE_HEADER ? file : null);
    });
    child.once('error', () => resolve(null));
  });
  ready.catch(() => undefined); // the caller awaits it; a capture that never listens must not be unhandled
  return {
    ready,
    packet,
    stop: () => {
      child.kill('SIGTERM');
    },
  };
}
