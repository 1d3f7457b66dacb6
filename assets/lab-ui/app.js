// The lab page: draws the picture /api/lab lays out, shows every agent's state from
// /api/agents every 2 s, and marks the hops of /api/trace on the picture and in a list.
// Plain DOM, no framework; the server does the layout (src/tools/lab/ui/picture.ts).

const SVG_NS = 'http://www.w3.org/2000/svg';
const POLL_MS = 2000;
const $ = (selector) => document.querySelector(selector);

/** An SVG element with attributes, and text if given. */
function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** An HTML element with attributes and children (strings become text). */
function html(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

async function getJson(url) {
  const res = await fetch(url);
  const body = await res.json();
  if (!res.ok) throw new Error(body.message ?? `HTTP ${res.status}`);
  return body;
}

const points = (ps) => ps.map((p) => `${p.x},${p.y}`).join(' ');

function drawPicture(picture) {
  const root = $('#topology');
  root.setAttribute('viewBox', `0 0 ${picture.width} ${picture.height}`);
  const wires = svg('g', { class: 'wires' });
  for (const w of picture.wires) wires.append(svg('polyline', { class: 'wire', points: points(w.points), 'data-from': w.from, 'data-to': w.to }));
  const bars = svg('g', { class: 'bars' });
  for (const b of picture.bars) {
    const g = svg('g', { class: 'segment', 'data-segment': b.id });
    g.append(svg('rect', { x: b.x1, y: b.y - 11, width: b.x2 - b.x1, height: 22, rx: 4 }), svg('text', { x: b.x1 + 10, y: b.y + 4 }, b.label));
    bars.append(g);
  }
  const boxes = svg('g', { class: 'boxes' });
  for (const b of picture.boxes) {
    const g = svg('g', { class: `node node-${b.kind}`, 'data-node': b.id });
    g.append(svg('rect', { x: b.x, y: b.y, width: b.w, height: b.h, rx: 6 }));
    const cx = b.x + b.w / 2;
    g.append(svg('text', { class: 'title', x: cx, y: b.textY }, b.title));
    b.lines.forEach((line, i) => g.append(svg('text', { x: cx, y: b.textY + picture.lineHeight * (i + 1) }, line)));
    if (b.kind === 'host') g.append(svg('circle', { class: 'agent-dot', cx: b.x + b.w - 14, cy: b.y + 14, r: 6 }));
    boxes.append(g);
  }
  root.replaceChildren(wires, bars, boxes, svg('g', { id: 'marks' }));
}

function fillSelects(lab) {
  const option = (value, label = value) => html('option', { value }, label);
  const pods = lab.pods.filter((p) => p.ip !== null);
  $('#from').replaceChildren(...pods.map((p) => option(p.id, `${p.id} ${p.ip}`)));
  const to = [...pods.map((p) => option(p.id, `${p.id} ${p.ip}`)), ...lab.hosts.map((h) => option(h.id, `${h.id} ${h.ip}`)), option(lab.outside.id, `${lab.outside.id} ${lab.outside.ip}`)];
  $('#to').replaceChildren(...to);
  // A first guess worth tracing: a pod on another host.
  const other = pods.find((p) => pods[0] && p.host !== pods[0].host);
  if (other) $('#to').value = other.id;
}

async function loadLab() {
  const { lab, picture } = await getJson('/api/lab');
  $('#lab-name').textContent = lab.name;
  const router = lab.router ? `, router ${lab.router.id}` : '';
  const extras = [lab.directRouting ? 'DirectRouting' : '', lab.ipMasq ? 'ip-masq' : ''].filter(Boolean).join(', ');
  $('#lab-summary').textContent = `backend ${lab.backend}${extras ? ` (${extras})` : ''}, ${lab.topology} underlay${router}, network ${lab.network}, ${lab.hosts.length} hosts, ${lab.pods.length} pods`;
  drawPicture(picture);
  fillSelects(lab);
  return lab;
}

function agentState(status, error) {
  if (!status) return { cls: 'unreachable', text: `unreachable (${error ?? '?'})` };
  if (status.ready) return { cls: 'ready', text: 'ready' };
  const why = status.waitingFor.join(', ') || status.state;
  return { cls: 'not-ready', text: `not ready (${why})${status.reason ? `: ${status.reason}` : ''}` };
}

function showAgents(lab, agents) {
  const hostByIp = new Map(lab.hosts.map((h) => [h.ip, h.id]));
  const rows = agents.map((a) => {
    const state = agentState(a.status, a.error);
    $(`[data-node="${a.host}"]`)?.setAttribute('data-agent', state.cls);
    const peers = (a.status?.peers ?? []).map((p) => {
      const name = hostByIp.get(p.publicIP) ?? p.subnet;
      return html('span', { class: `peer peer-${p.state}`, 'data-peer': name, title: `${p.subnet} via ${p.publicIP}${p.reason ? `: ${p.reason}` : ''}` }, `${name} ${p.state}`);
    });
    return html('tr', { 'data-host': a.host }, html('td', {}, a.host), html('td', {}, html('span', { class: `agent-state ${state.cls}` }, state.text)), html('td', {}, ...(peers.length ? peers : ['none'])));
  });
  $('#agents tbody').replaceChildren(...rows);
  $('#agents-updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
}

function pollAgents(lab) {
  const tick = async () => {
    try {
      showAgents(lab, (await getJson('/api/agents')).agents);
    } catch (err) {
      $('#agents-updated').textContent = `not updated: ${err.message}`;
    }
    setTimeout(tick, POLL_MS);
  };
  void tick();
}

/** "ether › ipv4 › udp 8472 › vxlan 1 › ether › ipv4 › icmp 8/0". */
function layerText(l) {
  switch (l.proto) {
    case 'udp': return `udp ${l.dstPort}`;
    case 'vxlan': return `vxlan ${l.vni}`;
    case 'icmp': return `icmp ${l.type}/${l.code}`;
    case 'tcp': return `tcp ${l.dstPort} ${l.flags}`;
    default: return l.proto;
  }
}

function drawMarks(marks) {
  const layer = $('#marks');
  const seen = marks.filter((m) => m.seen);
  layer.replaceChildren(svg('polyline', { class: 'hop-path', points: points(seen) }));
  for (const m of marks) {
    const g = svg('g', { class: `hop hop-mark ${m.seen ? 'seen' : 'lost'}`, 'data-hop-id': m.id, 'data-step': m.step });
    g.append(svg('circle', { cx: m.x, cy: m.y, r: 10 }), svg('text', { x: m.x, y: m.y + 4 }, String(m.step)));
    layer.append(g);
  }
}

function listHops(trace) {
  const rows = trace.hops.map((hop, i) => {
    const p = hop.packet;
    const cls = `hop hop-row ${p ? 'seen' : 'lost'}`;
    const where = html('td', {}, hop.label, html('div', { class: 'dev' }, `${hop.ns} ${hop.dev}`));
    const what = p
      ? html('td', {}, html('div', { class: 'summary' }, p.summary), html('div', { class: 'layers', 'data-layers': p.layers.map((l) => l.proto).join(',') }, p.layers.map(layerText).join(' › ')))
      : html('td', { class: 'summary' }, hop.error ?? 'nothing seen before the deadline');
    return html('tr', { class: cls, 'data-hop-id': hop.id, 'data-role': hop.role }, html('td', {}, String(i + 1)), where, html('td', {}, p ? String(p.bytes) : '-'), html('td', {}, p ? String(p.overheadBytes) : '-'), what);
  });
  $('#hops tbody').replaceChildren(...rows);
}

/** The source agent's own account (twill trace): the path it expects, and any problem with its fix. */
function showChain(t) {
  const chain = t.chain;
  const lines = !chain
    ? [html('li', {}, `the agent of ${t.from.id}'s host did not answer`)]
    : chain.complete
      ? [html('li', {}, html('details', {}, html('summary', {}, `the agent of ${t.from.id}'s host (twill trace) finds the path whole`), html('ol', {}, ...chain.steps.map((s) => html('li', {}, s.text)))))]
      : chain.problems.map((p) => html('li', { class: 'problem' }, `${p.message} (fix: ${p.fix})`));
  $('#chain').replaceChildren(...lines);
}

function traceVerdict(t) {
  const seen = t.hops.filter((h) => h.packet).length;
  const end = t.complete ? `every hop saw it (${seen})` : `lost at ${t.lostAt ?? '?'} (${seen} of ${t.hops.length} hops saw it)`;
  const masq = t.masqueradedTo ? `, masqueraded to ${t.masqueradedTo}` : '';
  return `${t.from.id} ${t.from.ip} → ${t.to.id} ${t.to.ip}: ${end}${masq}`;
}

async function runTrace(event) {
  event.preventDefault();
  const status = $('#trace-status');
  const from = $('#from').value;
  const to = $('#to').value;
  $('#trace').disabled = true;
  status.className = 'busy';
  status.textContent = `tracing ${from} → ${to}…`;
  try {
    const { trace, marks } = await getJson(`/api/trace?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
    drawMarks(marks);
    listHops(trace);
    showChain(trace);
    status.className = trace.complete ? 'complete' : 'broken';
    status.textContent = traceVerdict(trace);
  } catch (err) {
    status.className = 'error';
    status.textContent = err.message;
  } finally {
    $('#trace').disabled = false;
  }
}

async function main() {
  try {
    const lab = await loadLab();
    $('#trace-form').addEventListener('submit', runTrace);
    pollAgents(lab);
    document.body.dataset.ready = 'true';
  } catch (err) {
    $('#lab-summary').textContent = `cannot load the lab: ${err.message}`;
    $('#lab-summary').className = 'error';
  }
}

void main();
