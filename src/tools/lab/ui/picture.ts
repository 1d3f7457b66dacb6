import type { Hop, LabTrace } from '../trace/types.js';
import type { LabView } from './view.js';

/**
 * Pure: the lab as a picture the page draws in SVG, in SVG units. Each segment is a bar; hosts
 * stand on their segment with their pods above them; etcd and the outside node hang below
 * segment A; in a routed lab the router joins the bars. Boxes carry `slots`, the points where
 * a trace's hops are marked: a pod's eth0 under it, its veth on the wire into its host, a
 * host's bridge on its top edge, its tunnel device on its right edge, its underlay eth0 on its
 * bottom edge, the router's legs on its sides.
 */
export interface Point {
  readonly x: number;
  readonly y: number;
}

export type BoxKind = 'pod' | 'host' | 'router' | 'etcd' | 'outside';

export interface Box {
  /** The lab node's id: "h1-p1", "h1", "rt", "etcd", "out". */
  readonly id: string;
  readonly kind: BoxKind;
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
  readonly title: string;
  readonly lines: readonly string[];
  /** The title's baseline; each line goes LINE_HEIGHT below the one before. */
  readonly textY: number;
  readonly slots: Readonly<Record<string, Point>>;
}

export interface Bar {
  /** The segment's id: A, B. */
  readonly id: string;
  readonly x1: number;
  readonly x2: number;
  /** The bar's middle; it is BAR_THICKNESS thick. */
  readonly y: number;
  readonly label: string;
}

export interface Wire {
  readonly from: string;
  readonly to: string;
  readonly points: readonly Point[];
}

export interface Picture {
  readonly lineHeight: number;
  readonly width: number;
  readonly height: number;
  readonly bars: readonly Bar[];
  readonly boxes: readonly Box[];
  readonly wires: readonly Wire[];
}

/** A hop placed on the picture: step counts from 1 in the trace's order. */
export interface HopMark extends Point {
  readonly id: string;
  readonly step: number;
  readonly seen: boolean;
}

const MARGIN = 24;
const POD = { w: 116, h: 44, gap: 12 } as const;
const HOST = { w: 210, h: 100 } as const;
const LINE_HEIGHT = 18;
const SIDE = { w: 170, gap: 24 } as const;
/** The router hangs from the bars' line, its text below the line its legs join. */
const ROUTER = { w: 160, above: 20, gap: 28 } as const;
const COLUMN_GAP = 36;
const BAR_PAD = 24;
export const BAR_THICKNESS = 22;
const POD_Y = MARGIN;
const HOST_Y = POD_Y + POD.h + 56;
const BAR_Y = HOST_Y + HOST.h + 52;
const SIDE_Y = BAR_Y + 44;
/** Marks on one spot are moved this far apart. */
const MARK_SHIFT = 22;

type View = Pick<LabView, 'segments' | 'router' | 'etcd' | 'outside' | 'hosts' | 'pods' | 'directRouting'>;
type HostView = LabView['hosts'][number];

interface Drawn {
  readonly boxes: Box[];
  readonly wires: Wire[];
}

const center = (b: Pick<Box, 'x' | 'w'>): number => b.x + b.w / 2;

function columnWidth(pods: number): number {
  return Math.max(HOST.w, pods * POD.w + Math.max(0, pods - 1) * POD.gap);
}

/** A host over its segment's bar, its pods in a row above it. */
function drawHost(view: View, h: HostView, x: number, out: Drawn): number {
  const pods = view.pods.filter((p) => p.host === h.id);
  const w = columnWidth(pods.length);
  const cx = x + w / 2;
  const backend = `${h.backend}${view.directRouting ? ' + DirectRouting' : ''}`;
  out.boxes.push({
    id: h.id,
    kind: 'host',
    x,
    y: HOST_Y,
    w,
    h: HOST.h,
    title: `${h.id} · ${h.ip}`,
    lines: [`subnet ${h.subnet ?? '-'}`, `${backend} · segment ${h.segment}`],
    textY: HOST_Y + 30,
    slots: { bridge: { x: cx, y: HOST_Y }, tunnel: { x: x + w, y: HOST_Y + HOST.h / 2 }, underlay: { x: cx, y: HOST_Y + HOST.h } },
  });
  out.wires.push({ from: h.id, to: h.segment, points: [{ x: cx, y: HOST_Y + HOST.h }, { x: cx, y: BAR_Y - BAR_THICKNESS / 2 }] });
  const row = pods.length * POD.w + Math.max(0, pods.length - 1) * POD.gap;
  pods.forEach((p, i) => {
    const px = cx - row / 2 + i * (POD.w + POD.gap);
    const pcx = px + POD.w / 2;
    const slots = { eth0: { x: pcx, y: POD_Y + POD.h + 10 }, veth: { x: pcx, y: HOST_Y - 22 } };
    out.boxes.push({ id: p.id, kind: 'pod', x: px, y: POD_Y, w: POD.w, h: POD.h, title: p.id, lines: [p.ip ?? 'no address'], textY: POD_Y + 17, slots });
    out.wires.push({ from: p.id, to: h.id, points: [{ x: pcx, y: POD_Y + POD.h }, { x: pcx, y: HOST_Y }] });
  });
  return w;
}

/** etcd or the outside node, hanging below a bar. */
function drawSide(id: string, kind: 'etcd' | 'outside', title: string, lines: readonly string[], x: number, segment: string, out: Drawn): number {
  const top = { x: x + SIDE.w / 2, y: SIDE_Y };
  out.boxes.push({ id, kind, x, y: SIDE_Y, w: SIDE.w, h: 28 + lines.length * LINE_HEIGHT, title, lines, textY: SIDE_Y + 20, slots: { eth0: top } });
  out.wires.push({ from: id, to: segment, points: [{ x: top.x, y: BAR_Y + BAR_THICKNESS / 2 }, top] });
  return SIDE.w;
}

/** One segment from x: its hosts in columns, etcd and the outside node below it if they sit there. */
function drawSegment(view: View, seg: View['segments'][number], x: number, out: Drawn): Bar {
  let hostsEnd = x + BAR_PAD;
  for (const h of view.hosts.filter((hh) => hh.segment === seg.id)) hostsEnd += drawHost(view, h, hostsEnd, out) + COLUMN_GAP;
  let sideEnd = x + BAR_PAD;
  if (view.etcd.segment === seg.id) {
    const members = view.etcd.members.map((m) => `${m.name} ${m.ip}`);
    sideEnd += drawSide(view.etcd.id, 'etcd', 'etcd', members, sideEnd, seg.id, out) + SIDE.gap;
  }
  if (view.outside.segment === seg.id) sideEnd += drawSide(view.outside.id, 'outside', `${view.outside.id} (outside)`, [view.outside.ip], sideEnd, seg.id, out) + SIDE.gap;
  const inner = Math.max(hostsEnd - COLUMN_GAP, sideEnd - SIDE.gap, x + BAR_PAD + SIDE.w);
  return { id: seg.id, x1: x, x2: inner + BAR_PAD, y: BAR_Y, label: `segment ${seg.id} · ${seg.subnet}` };
}

/** The router between two bars: one leg on each side, at the bar's height. */
function drawRouter(router: NonNullable<View['router']>, x: number, out: Drawn): void {
  const sides = [x, x + ROUTER.w];
  const slots = Object.fromEntries(router.legs.map((l, i) => [l.iface, { x: sides[i] ?? x, y: BAR_Y }]));
  const lines = router.legs.map((l) => `${l.iface} ${l.ip}`);
  const h = ROUTER.above + 22 + lines.length * LINE_HEIGHT + 12;
  out.boxes.push({ id: router.id, kind: 'router', x, y: BAR_Y - ROUTER.above, w: ROUTER.w, h, title: `${router.id} (router)`, lines, textY: BAR_Y + 22, slots });
}

export function layoutLab(view: View): Picture {
  const out: Drawn = { boxes: [], wires: [] };
  const bars: Bar[] = [];
  let x = MARGIN;
  view.segments.forEach((seg, i) => {
    if (i > 0 && view.router) {
      const prev = bars[bars.length - 1];
      const rx = x + ROUTER.gap;
      drawRouter(view.router, rx, out);
      x = rx + ROUTER.w + ROUTER.gap;
      if (prev) out.wires.push({ from: prev.id, to: view.router.id, points: [{ x: prev.x2, y: BAR_Y }, { x: rx, y: BAR_Y }] });
      out.wires.push({ from: view.router.id, to: seg.id, points: [{ x: rx + ROUTER.w, y: BAR_Y }, { x, y: BAR_Y }] });
    }
    const bar = drawSegment(view, seg, x, out);
    bars.push(bar);
    x = bar.x2;
  });
  const bottom = Math.max(BAR_Y + BAR_THICKNESS / 2, ...out.boxes.map((b) => b.y + b.h));
  return { lineHeight: LINE_HEIGHT, width: x + MARGIN, height: bottom + MARGIN, bars, boxes: out.boxes, wires: out.wires };
}

/** The box a hop is marked on, and the point: see the slots above. */
function hopPoint(picture: Picture, trace: Pick<LabTrace, 'from' | 'to'>, hop: Hop): Point | null {
  const box = picture.boxes.find((b) => b.id === hop.node);
  if (!box) return null;
  const middle = { x: center(box), y: box.y + box.h / 2 };
  switch (hop.role) {
    case 'veth': {
      // The host end of a pod's veth: on the wire of the traced pod that lives on this host.
      const pod = [trace.from.id, trace.to.id].map((id) => picture.boxes.find((b) => b.id === id && b.kind === 'pod')).find((b) => b && picture.wires.some((w) => w.from === b.id && w.to === box.id));
      return pod?.slots.veth ?? box.slots.bridge ?? middle;
    }
    case 'pod':
    case 'outside':
      return box.slots.eth0 ?? middle;
    case 'router':
      return box.slots[hop.dev] ?? middle;
    case 'bridge':
    case 'tunnel':
    case 'underlay':
      return box.slots[hop.role] ?? middle;
  }
}

/** Every hop that belongs to a node of the picture, in order; hops on one spot are moved apart. */
export function placeHops(picture: Picture, trace: Pick<LabTrace, 'from' | 'to' | 'hops'>): HopMark[] {
  const used = new Map<string, number>();
  const marks: HopMark[] = [];
  trace.hops.forEach((hop, i) => {
    const p = hopPoint(picture, trace, hop);
    if (!p) return;
    const key = `${p.x},${p.y}`;
    const n = used.get(key) ?? 0;
    used.set(key, n + 1);
    marks.push({ id: hop.id, step: i + 1, seen: hop.packet !== null, x: p.x + n * MARK_SHIFT, y: p.y });
  });
  return marks;
}
