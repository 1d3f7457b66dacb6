/** Pure: `twill bench scale`'s options, and about how long its steps take. */
import { TwillError } from '../../errors.js';
import { MAX_FAKE_PEERS } from '../scripts/scale-peers.js';
import { SETTLE_SECONDS, type ScaleSettings } from './scale-results.js';

export const DEFAULT_PEERS = '100,1000,5000,10000';
export const DEFAULT_BACKENDS = 'host-gw,udp';

const invalid = (option: string, text: string, why: string): TwillError =>
  new TwillError('TWILL_ERR_OPTION_INVALID', `${option}: ${why}`, { details: { option, value: text } });

/** `--peers 100,1000`: integers from 1 to MAX_FAKE_PEERS, each once, ascending. */
export function parsePeers(text: string): number[] {
  const parts = text.split(',').map((p) => p.trim()).filter((p) => p !== '');
  if (parts.length === 0) throw invalid('--peers', text, 'name at least one peer count');
  const bad = parts.filter((p) => !/^\d+$/.test(p) || Number(p) < 1 || Number(p) > MAX_FAKE_PEERS);
  if (bad.length > 0) throw invalid('--peers', text, `${bad.join(', ')} is not a peer count from 1 to ${MAX_FAKE_PEERS}`);
  return [...new Set(parts.map(Number))].sort((a, b) => a - b);
}

/** `--backends host-gw,udp`: names from the backend table, each once, in the order given. */
export function parseBackends(text: string, known: readonly string[]): string[] {
  const names = text.split(',').map((b) => b.trim()).filter((b) => b !== '');
  const bad = names.filter((n) => !known.includes(n));
  if (bad.length > 0 || names.length === 0) {
    throw invalid('--backends', text, `${bad.length > 0 ? `unknown backend(s) ${bad.join(', ')}` : 'name at least one backend'} (have: ${known.join(', ')})`);
  }
  return [...new Set(names)];
}

/** How long the driver waits for N peers before it gives up on a step. */
export const waitTimeoutMs = (peers: number): number => 60_000 + 30 * peers;

/** Rough seconds per step, for "time left"; honest to within a few seconds at small N. */
export const scaleEstimate = {
  labUp: () => 5,
  labDown: () => 2,
  floor: (peers: number, repeat: number) => repeat * (0.3 + peers / 4000),
  /** Writing N peers and the agent programming them. */
  peers: (peers: number) => 1 + peers / 2000,
  probes: (probes: number, peers: number) => 2 * probes * (0.005 + peers / 100_000),
};

/** The cells of one backend, then its churn (with a setup of its own when churnPeers is not among the peer counts). */
export function estimateScaleSeconds(s: ScaleSettings): number {
  const E = scaleEstimate;
  const floor = s.peers.reduce((sum, n) => sum + E.floor(n, s.floorRepeat), 0);
  const cell = (n: number) => 3 * E.peers(n) + SETTLE_SECONDS + s.idleSeconds + E.probes(s.apiProbes, n);
  const churnSetup = s.peers.includes(s.churnPeers) ? 0 : E.peers(s.churnPeers) * 2;
  const perBackend = E.labUp() + E.labDown() + s.peers.reduce((sum, n) => sum + cell(n), 0) + churnSetup + s.churnSeconds + 1;
  return floor + s.backends.length * perBackend;
}
