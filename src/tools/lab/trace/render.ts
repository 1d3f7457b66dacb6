import { renderTrace } from '../../../cli/trace-cmd.js';
import type { CapturedPacket, Layer, LabTrace } from './types.js';

/** Pure: one layer as a header line shows it. */
export function showLayer(l: Layer): string {
  switch (l.proto) {
    case 'ether':
      return `Ethernet ${l.src} > ${l.dst}`;
    case 'ipv4':
      return `IPv4 ${l.src} > ${l.dst} ttl ${l.ttl} length ${l.length}`;
    case 'udp':
      return `UDP ${l.srcPort} > ${l.dstPort} length ${l.length}`;
    case 'vxlan':
      return `VXLAN vni ${l.vni}`;
    case 'icmp':
      return `ICMP type ${l.type} code ${l.code} id ${l.id} seq ${l.seq}`;
    case 'tcp':
      return `TCP ${l.srcPort} > ${l.dstPort} [${l.flags}]`;
  }
}

const overhead = (p: CapturedPacket): string => (p.overheadBytes > 0 ? `, +${p.overheadBytes} B of encapsulation` : '');

/** Pure: the hops, one block each (what was seen, then its headers), then the verdict and the agent's own chain. */
export function renderLabTrace(t: LabTrace): string {
  const head = `lab ${t.lab} (${t.backend}): ${t.from.id} ${t.from.ip} → ${t.to.id}${t.to.id === t.to.ip ? '' : ` ${t.to.ip}`}, one ICMP echo request, captured at every hop`;
  const width = Math.max(...t.hops.map((h) => `${h.node} ${h.dev}`.length));
  const hops = t.hops.flatMap((h, i) => {
    const where = `${String(i + 1).padStart(2)}. ${`${h.node} ${h.dev}`.padEnd(width)}  ${h.label}`;
    if (!h.packet) return [where, `      NOTHING SEEN${h.error ? ` (${h.error})` : ''}`];
    return [where, `      ${h.packet.summary} (${h.packet.bytes} B${overhead(h.packet)})`, `      ${h.packet.layers.map(showLayer).join(' / ')}`];
  });
  const verdict = t.complete ? 'every hop saw the packet' : `the packet was lost after the last hop that saw it: nothing at ${t.lostAt}`;
  const masq = t.masqueradedTo ? [`masqueraded: its source ${t.from.ip} was rewritten to ${t.masqueradedTo} on the way`] : [];
  const chain = t.chain ? ['', `the agent on ${t.from.id}'s host says:`, renderTrace(t.chain).trimEnd()] : ['', "the source host's agent gave no trace"];
  return `${[head, ...hops, '', verdict, ...masq, ...chain].join('\n')}\n`;
}
