/**
 * Pure: twill's ACCEPT rules in iptables' filter FORWARD chain. They live there, not in twill's
 * nft table, because every base chain on a hook gives its own verdict: an accept in our table
 * cannot undo the DROP policy Docker (or ufw, firewalld) sets in iptables' FORWARD chain, only a
 * rule in that chain can, and the `iptables` binary reaches it whichever backend (nft or legacy)
 * the host uses. Our rules carry a comment, so they are found, repaired and removed by it alone.
 */
export const FORWARD_TABLE = 'filter';
export const FORWARD_CHAIN = 'FORWARD';
export const FORWARD_COMMENT = 'twill-forward';

/** A rule spec as iptables arguments after the chain name ("-s N -m comment ... -j ACCEPT"). */
export type RuleSpec = readonly string[];

/** Accept traffic from the pod network and to it (flannel's forward rules). */
export function forwardRuleSpecs(network: string): RuleSpec[] {
  const tail = ['-m', 'comment', '--comment', FORWARD_COMMENT, '-j', 'ACCEPT'];
  return [
    ['-s', network, ...tail],
    ['-d', network, ...tail],
  ];
}

export interface ForwardChain {
  /** ACCEPT, DROP, ... as `-P FORWARD X` says; null if the listing had no policy line. */
  readonly policy: string | null;
  /** Our rules, in chain order, as specs. */
  readonly owned: RuleSpec[];
  /** How many rules are someone else's. */
  readonly foreign: number;
}

/** Reads `iptables -S FORWARD`. Our comment has no spaces, so a rule splits on white space. */
export function parseForwardChain(text: string): ForwardChain {
  let policy: string | null = null;
  const owned: RuleSpec[] = [];
  let foreign = 0;
  for (const line of text.split('\n').map((l) => l.trim())) {
    const words = line.split(/\s+/);
    if (words[0] === '-P' && words[1] === FORWARD_CHAIN) policy = words[2] ?? null;
    if (words[0] !== '-A' || words[1] !== FORWARD_CHAIN) continue;
    const spec = words.slice(2);
    if (isOwned(spec)) owned.push(spec);
    else foreign += 1;
  }
  return { policy, owned, foreign };
}

function isOwned(spec: RuleSpec): boolean {
  const i = spec.indexOf('--comment');
  return i >= 0 && spec[i + 1] === FORWARD_COMMENT;
}

const key = (spec: RuleSpec): string => spec.join(' ');

export interface ForwardPlan {
  /** Insert each at position 1, in this order: they end up in desired order at the top, ahead of anyone's DROP. */
  readonly insert: RuleSpec[];
  /** Ours but not wanted (an old network, a duplicate, --forward-rules=false). */
  readonly remove: RuleSpec[];
}

/** What to change so that exactly `desired` of ours is in the chain (each once). */
export function planForward(desired: readonly RuleSpec[], owned: readonly RuleSpec[]): ForwardPlan {
  const want = new Set(desired.map(key));
  const seen = new Set<string>();
  const remove: RuleSpec[] = [];
  for (const spec of owned) {
    const k = key(spec);
    if (!want.has(k) || seen.has(k)) remove.push(spec);
    seen.add(k);
  }
  const insert = desired.filter((d) => !seen.has(key(d))).reverse();
  return { insert, remove };
}
