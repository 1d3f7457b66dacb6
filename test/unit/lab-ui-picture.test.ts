import { describe, expect, it } from 'vitest';
import { layoutLab, placeHops, type Box, type Picture } from '../../src/tools/lab/ui/picture.js';
import { checkTraceEnds, labView } from '../../src/tools/lab/ui/view.js';
import { labStateFixture, routedVxlanTrace } from '../support/lab-view.js';

const box = (p: Picture, id: string): Box => {
  const b = p.boxes.find((bb) => bb.id === id);
  if (!b) throw new Error(`no box ${id}`);
  return b;
};
const overlap = (a: Box, b: Box): boolean => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

describe('lab page: the view of a lab', () => {
  it('takes segments, router legs, etcd, the outside node, hosts and pods from the state and its plan', () => {
    const v = labView(labStateFixture({ hosts: 2, topology: 'routed' }));
    expect(v.segments.map((s) => `${s.id} ${s.subnet}`)).toEqual(['A 198.18.0.0/24', 'B 198.19.0.0/24']);
    expect(v.router?.legs).toEqual([
      { iface: 'eth0', segment: 'A', ip: '198.18.0.1' },
      { iface: 'eth1', segment: 'B', ip: '198.19.0.1' },
    ]);
    expect(v.etcd).toMatchObject({ id: 'etcd', segment: 'A', members: [{ name: 'etcd1', ip: '198.18.0.2' }] });
    expect(v.outside).toMatchObject({ id: 'out', segment: 'A', ip: '198.18.0.3' });
    expect(v.hosts.map((h) => [h.id, h.segment, h.subnet, h.backend])).toEqual([
      ['h1', 'A', '10.244.1.0/24', 'vxlan'],
      ['h2', 'B', '10.244.2.0/24', 'vxlan'],
    ]);
    expect(v.pods.map((p) => `${p.id}@${p.host} ${p.ip}`)).toEqual(['h1-p1@h1 10.244.1.2', 'h2-p1@h2 10.244.2.2']);
  });

  it('checks the ends of a trace and says what is wrong', () => {
    const v = labView(labStateFixture({ hosts: 2, topology: 'flat' }));
    expect(checkTraceEnds(v, 'h1-p1', 'h2-p1')).toEqual({ ok: true, from: 'h1-p1', to: 'h2-p1' });
    for (const to of ['h2', 'out', '192.0.2.1']) expect(checkTraceEnds(v, 'h1-p1', to).ok).toBe(true);
    const why = (from: unknown, to: unknown): string => {
      const r = checkTraceEnds(v, from, to);
      return r.ok ? 'ok' : r.why;
    };
    expect(why(undefined, 'h2-p1')).toMatch(/give the source pod as \?from=.*h1-p1, h2-p1/);
    expect(why('h9-p1', 'h2-p1')).toMatch(/^from: "h9-p1" is not a pod of lab t/);
    expect(why('h1', 'h2-p1')).toMatch(/^from: "h1" is not a pod/);
    expect(why('h1-p1', '')).toMatch(/give the destination as \?to=/);
    expect(why('h1-p1', 'nowhere')).toMatch(/^to: "nowhere" is not a pod, a host, "out" or an IPv4 address/);
    expect(why('h1-p1', '10.244.1')).toMatch(/^to: "10.244.1"/);
    expect(why('h1-p1', 'h1-p1')).toMatch(/is the source pod itself/);
    const noIp = { ...v, pods: v.pods.map((p) => ({ ...p, ip: null })) };
    expect(checkTraceEnds(noIp, 'h1-p1', 'h2').ok).toBe(false);
  });
});

describe('lab page: the picture', () => {
  it('draws a flat lab on one bar: hosts above it in order, pods above their host, etcd and the outside node below', () => {
    const p = layoutLab(labView(labStateFixture({ hosts: 3, podsPerHost: 2, topology: 'flat' })));
    expect(p.bars.map((b) => b.label)).toEqual(['segment A · 198.18.0.0/24']);
    expect(p.boxes.some((b) => b.kind === 'router')).toBe(false);
    const [bar] = p.bars;
    const hosts = ['h1', 'h2', 'h3'].map((id) => box(p, id));
    expect(hosts.map((h) => h.x)).toEqual([...hosts.map((h) => h.x)].sort((a, b) => a - b));
    for (const h of hosts) {
      expect(h.y + h.h).toBeLessThan(bar!.y);
      expect(h.x).toBeGreaterThanOrEqual(bar!.x1);
      expect(h.x + h.w).toBeLessThanOrEqual(bar!.x2);
      expect(h.lines).toContain(`subnet 10.244.${h.id.slice(1)}.0/24`);
      for (const pod of [1, 2].map((j) => box(p, `${h.id}-p${j}`))) {
        expect(pod.y + pod.h).toBeLessThan(h.y);
        expect(pod.x).toBeGreaterThanOrEqual(h.x);
        expect(pod.x + pod.w).toBeLessThanOrEqual(h.x + h.w);
      }
    }
    for (const id of ['etcd', 'out']) expect(box(p, id).y).toBeGreaterThan(bar!.y);
    expect(box(p, 'etcd').lines).toEqual(['etcd1 198.18.0.2']);
  });

  it('keeps every box inside the picture and apart from the others', () => {
    for (const state of [labStateFixture({ hosts: 3, podsPerHost: 3, topology: 'flat' }), labStateFixture({ hosts: 5, topology: 'routed' })]) {
      const p = layoutLab(labView(state));
      for (const b of p.boxes) {
        expect(b.x).toBeGreaterThanOrEqual(0);
        expect(b.y).toBeGreaterThanOrEqual(0);
        expect(b.x + b.w).toBeLessThanOrEqual(p.width);
        expect(b.y + b.h).toBeLessThanOrEqual(p.height);
        for (const other of p.boxes.filter((o) => o !== b)) expect(overlap(b, other), `${b.id} and ${other.id}`).toBe(false);
      }
    }
  });

  it('joins the two segments of a routed lab with the router, its legs on the side of their segment', () => {
    const p = layoutLab(labView(labStateFixture({ hosts: 3, topology: 'routed' })));
    const [a, b] = p.bars;
    expect([a?.id, b?.id]).toEqual(['A', 'B']);
    const rt = box(p, 'rt');
    expect(rt.x).toBeGreaterThan(a!.x2);
    expect(rt.x + rt.w).toBeLessThan(b!.x1);
    expect(rt.slots.eth0?.x).toBe(rt.x);
    expect(rt.slots.eth1?.x).toBe(rt.x + rt.w);
    expect(rt.lines).toEqual(['eth0 198.18.0.1', 'eth1 198.19.0.1']);
    const within = (id: string, bar: typeof a) => box(p, id).x >= bar!.x1 && box(p, id).x + box(p, id).w <= bar!.x2;
    expect(['h1', 'h3', 'etcd', 'out'].every((id) => within(id, a))).toBe(true);
    expect(within('h2', b)).toBe(true);
    expect(p.wires.filter((w) => w.from === 'rt' || w.to === 'rt').map((w) => `${w.from}-${w.to}`)).toEqual(['A-rt', 'rt-B']);
  });
});

describe('lab page: hops on the picture', () => {
  const picture = layoutLab(labView(labStateFixture({ hosts: 2, topology: 'routed' })));

  it('marks each hop at its interface, numbered in order', () => {
    const marks = placeHops(picture, routedVxlanTrace());
    expect(marks.map((m) => `${m.step} ${m.id}`)).toEqual(routedVxlanTrace().hops.map((h, i) => `${i + 1} ${h.id}`));
    expect(marks.every((m) => m.seen)).toBe(true);
    const at = (id: string) => marks.find((m) => m.id === id)!;
    const [pod, h1, rt, h2] = ['h1-p1', 'h1', 'rt', 'h2'].map((id) => box(picture, id)) as [Box, Box, Box, Box];
    expect(at('h1-p1:eth0')).toMatchObject({ x: pod.x + pod.w / 2 });
    expect(at('h1-p1:eth0').y).toBeGreaterThan(pod.y + pod.h);
    expect(at('h1:veth1').x).toBe(pod.x + pod.w / 2);
    expect(at('h1:veth1').y).toBeLessThan(h1.y);
    expect(at('h1:veth1').y).toBeGreaterThan(at('h1-p1:eth0').y);
    expect(at('h1:cni0')).toMatchObject({ y: h1.y });
    expect(at('h1:flannel.1')).toMatchObject({ x: h1.x + h1.w, y: h1.y + h1.h / 2 });
    expect(at('h1:eth0')).toMatchObject({ y: h1.y + h1.h });
    expect(at('rt:eth0')).toMatchObject({ x: rt.x });
    expect(at('rt:eth1')).toMatchObject({ x: rt.x + rt.w });
    expect(at('h2:eth0')).toMatchObject({ y: h2.y + h2.h });
    expect(at('h2:veth2').x).toBe(box(picture, 'h2-p1').x + box(picture, 'h2-p1').w / 2);
  });

  it('marks the hops that saw nothing as lost', () => {
    const marks = placeHops(picture, routedVxlanTrace(7));
    expect(marks.filter((m) => !m.seen).map((m) => m.id)).toEqual(['h2:eth0', 'h2:flannel.1', 'h2:cni0', 'h2:veth2', 'h2-p1:eth0']);
  });

  it('leaves out hops of nodes not in the picture and moves hops on one spot apart', () => {
    const t = routedVxlanTrace();
    const extra = [{ ...t.hops[2]!, id: 'h1:cni0-again' }, { ...t.hops[2]!, id: 'x:eth0', node: 'x' }];
    const marks = placeHops(picture, { ...t, hops: [...t.hops, ...extra] });
    expect(marks.map((m) => m.id)).not.toContain('x:eth0');
    const [first, again] = ['h1:cni0', 'h1:cni0-again'].map((id) => marks.find((m) => m.id === id)!);
    expect(again!.y).toBe(first!.y);
    expect(again!.x).toBeGreaterThan(first!.x);
  });
});
