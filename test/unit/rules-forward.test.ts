import { describe, expect, it } from 'vitest';
import { forwardRuleSpecs, parseForwardChain, planForward } from '../../src/rules/forward-rules.js';

const N = '10.244.0.0/16';

// `iptables -S FORWARD` (iptables v1.8.9, nf_tables) on a host where Docker set the policy.
const LISTING = `-P FORWARD DROP
-A FORWARD -s 10.244.0.0/16 -m comment --comment twill-forward -j ACCEPT
-A FORWARD -d 10.244.0.0/16 -m comment --comment twill-forward -j ACCEPT
-A FORWARD -j DOCKER-USER
-A FORWARD -o docker0 -m comment --comment "twill-forward is not this" -j ACCEPT
`;

describe('forward rules', () => {
  it('accept from and to the network, tagged with our comment', () => {
    expect(forwardRuleSpecs(N).map((s) => s.join(' '))).toEqual([
      '-s 10.244.0.0/16 -m comment --comment twill-forward -j ACCEPT',
      '-d 10.244.0.0/16 -m comment --comment twill-forward -j ACCEPT',
    ]);
  });

  it('finds ours by the comment alone, and the policy', () => {
    const chain = parseForwardChain(LISTING);
    expect(chain.policy).toBe('DROP');
    expect(chain.owned).toEqual(forwardRuleSpecs(N));
    expect(chain.foreign).toBe(2);
    expect(parseForwardChain('-P FORWARD ACCEPT\n')).toEqual({ policy: 'ACCEPT', owned: [], foreign: 0 });
  });

  it('plans nothing when in place', () => {
    expect(planForward(forwardRuleSpecs(N), forwardRuleSpecs(N))).toEqual({ insert: [], remove: [] });
  });

  it('puts back what was deleted, inserting so that the order at the top is ours', () => {
    const [from, to] = forwardRuleSpecs(N);
    expect(planForward([from!, to!], [])).toEqual({ insert: [to, from], remove: [] });
    expect(planForward([from!, to!], [from!])).toEqual({ insert: [to], remove: [] });
  });

  it("removes ours for another network, duplicates, and all of ours when they are off", () => {
    const old = forwardRuleSpecs('10.200.0.0/16');
    const now = forwardRuleSpecs(N);
    expect(planForward(now, [...old, now[0]!, now[0]!, now[1]!])).toEqual({ insert: [], remove: [old[0], old[1], now[0]] });
    expect(planForward([], now)).toEqual({ insert: [], remove: now });
  });
});
