import { FORWARD_CHAIN, FORWARD_TABLE } from './forward-rules.js';
import { TWILL_NFT_FAMILY, TWILL_NFT_TABLE } from './nft-ruleset.js';

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const OURS = new RegExp(`\\b${esc(TWILL_NFT_FAMILY)} ${esc(TWILL_NFT_TABLE)}\\b`);
// iptables-nft's FORWARD chain lives in nft table "ip filter".
const FORWARD = new RegExp(`^(?:\\S+ )+(?:rule|chain) ip ${esc(FORWARD_TABLE)} ${esc(FORWARD_CHAIN)}\\b|^\\S+ table ip ${esc(FORWARD_TABLE)}\\b`);

/**
 * Pure: whether a line of `nft monitor` can touch twill's rules: anything in its own table, the
 * FORWARD chain of table filter (where iptables-nft keeps the forward rules) or that table as a
 * whole, or the whole ruleset. Other chains (Docker's, kube-proxy's) change often and never ours.
 */
export function touchesTrafficRules(line: string): boolean {
  return OURS.test(line) || FORWARD.test(line) || /\bruleset\b/.test(line);
}
