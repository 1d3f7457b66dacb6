// Issue 17, part 2: which interfaces `twill lab trace` waits on, from the lab's plan and the
// kernel's facts: a tunnel device only when the source host routes into one, the router's legs
// only between segments, the bridge skipped between two pods of one host.
import { describe, expect, it } from 'vitest';
import { isTwillError } from '../../src/errors.js';
import { captureFilter, planHops, resolveSource, resolveTarget, type PathFacts } from '../../src/tools/lab/trace/hops.js';
import { initialState, planOf, type LabState } from '../../src/tools/lab/state.js';
import { planLab, type LabOptions } from '../../src/tools/lab/topology.js';

function lab(topology: 'flat' | 'routed', backend = 'vxlan', podsPerHost = 1): LabState {
  const opts: LabOptions = { name: 'tt', hosts: 2, podsPerHost, backend, topology, dir: '/tmp/x' };
  const st = initialState(opts, planLab(opts));
  return { ...st, pods: st.pods.map((p, i) => ({ ...p, ip: `10.244.${Number(p.host.slice(1))}.${i + 2}` })) };
}

function hopIds(state: LabState, from: string, to: string, facts: Partial<PathFacts> = {}): string[] {
  const plan = planOf(state);
  const all: PathFacts = { srcVeth: 'vethA', dstVeth: 'vethB', egressDev: 'eth0', ...facts };
  return planHops(plan, resolveSource(state, plan, from), resolveTarget(state, plan, to), all).map((h) => h.id);
}

describe('planHops', () => {
  it('vxlan, flat: pod, veth, bridge, tunnel, underlay; then the same backwards on the far host', () => {
    expect(hopIds(lab('flat'), 'h1-p1', 'h2-p1', { egressDev: 'flannel.1' })).toEqual([
      'h1-p1:eth0', 'h1:vethA', 'h1:cni0', 'h1:flannel.1', 'h1:eth0', 'h2:eth0', 'h2:flannel.1', 'h2:cni0', 'h2:vethB', 'h2-p1:eth0',
    ]);
  });

  it('host-gw (routed out of eth0): no tunnel hop on either side', () => {
    expect(hopIds(lab('flat', 'host-gw'), 'h1-p1', 'h2-p1')).toEqual(['h1-p1:eth0', 'h1:vethA', 'h1:cni0', 'h1:eth0', 'h2:eth0', 'h2:cni0', 'h2:vethB', 'h2-p1:eth0']);
  });

  it('routed underlay: in on the router leg of the source segment, out on the other', () => {
    const ids = hopIds(lab('routed', 'udp'), 'h1-p1', 'h2-p1', { egressDev: 'twill0' });
    expect(ids.slice(3, 8)).toEqual(['h1:twill0', 'h1:eth0', 'rt:eth0', 'rt:eth1', 'h2:eth0']);
  });

  it('two pods of one host: veth to veth across the bridge, never cni0 itself', () => {
    expect(hopIds(lab('flat', 'vxlan', 2), 'h1-p1', 'h1-p2', { egressDev: 'cni0' })).toEqual(['h1-p1:eth0', 'h1:vethA', 'h1:vethB', 'h1-p2:eth0']);
  });

  it('the outside node: out of the underlay (through the router from segment B) to out:eth0', () => {
    expect(hopIds(lab('flat'), 'h1-p1', 'out')).toEqual(['h1-p1:eth0', 'h1:vethA', 'h1:cni0', 'h1:eth0', 'out:eth0']);
    expect(hopIds(lab('routed'), 'h2-p1', '198.18.0.3').slice(-3)).toEqual(['rt:eth1', 'rt:eth0', 'out:eth0']);
  });

  it("a host: its underlay; the pod's own host: delivered on the bridge; any other address: as far as the source's underlay", () => {
    expect(hopIds(lab('flat'), 'h1-p1', 'h2').at(-1)).toBe('h2:eth0');
    expect(hopIds(lab('flat'), 'h1-p1', 'h1').at(-1)).toBe('h1:cni0');
    expect(hopIds(lab('flat'), 'h1-p1', '192.0.2.1').at(-1)).toBe('h1:eth0');
  });

  it('names what it cannot resolve', () => {
    const st = lab('flat');
    const plan = planOf(st);
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isTwillError(e) ? e.code : 'other';
      }
      return 'none';
    };
    expect(code(() => resolveSource(st, plan, 'h9-p1'))).toBe('TWILL_ERR_OPTION_INVALID');
    expect(code(() => resolveTarget(st, plan, 'nowhere'))).toBe('TWILL_ERR_OPTION_INVALID');
    expect(() => resolveTarget(st, plan, 'nowhere')).toThrow(/"nowhere" is neither a pod, a host, "out" nor an IPv4 address/);
  });
});

describe('captureFilter', () => {
  it('matches the echo request of one size bare, in UDP whole, and in VXLAN', () => {
    const f = captureFilter(528);
    expect(f).toContain('ip[2:2] = 528 and icmp[0] = 8');
    expect(f).toContain('udp[10:2] = 528 and udp[28] = 8');
    expect(f).toContain('udp[32:2] = 528 and udp[50] = 8');
  });
});
