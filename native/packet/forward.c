/*
 * The udp backend's forwarding decisions (forward.ts Forwarder.outbound / inbound): which
 * peer a packet from the TUN goes to, whether a datagram from the wire is accepted. Packets
 * are patched in place (TTL, checksum) only when they pass; every drop is counted by reason.
 */
#include "packet.h"

#include <string.h>

void tw_forwarder_init(tw_forwarder *f, uint32_t own_addr, uint32_t own_len, uint32_t mtu) {
  memset(f, 0, sizeof *f);
  f->own_mask = own_len == 0 ? 0 : own_len >= 32 ? 0xffffffffu : 0xffffffffu << (32 - own_len);
  f->own_addr = own_addr & f->own_mask;
  f->mtu = mtu;
}

static int drop(tw_forwarder *f, int reason) {
  f->drops[reason]++;
  return reason;
}

int tw_outbound(tw_forwarder *f, const tw_peer_table *t, uint8_t *pkt, size_t len, int32_t *peer) {
  *peer = -1;
  int problem = tw_check_header(pkt, len);
  if (problem != TW_PASS) return drop(f, problem);
  uint32_t dst = tw_read_be32(pkt + 16);
  if ((dst & f->own_mask) == f->own_addr) return drop(f, TW_OWN_SUBNET);
  int32_t hit = tw_table_lookup(t, dst);
  if (hit < 0) return drop(f, TW_NO_ROUTE);
  if (!tw_decrement_ttl(pkt, len)) return drop(f, TW_TTL_EXPIRED);
  *peer = hit;
  return TW_PASS;
}

int tw_inbound(tw_forwarder *f, const tw_peer_table *t, uint8_t *pkt, size_t len, uint32_t from) {
  if (len > f->mtu) return drop(f, TW_OVERSIZE);
  if (!tw_table_has_public_ip(t, from)) return drop(f, TW_UNKNOWN_PEER);
  int problem = tw_check_header(pkt, len);
  if (problem != TW_PASS) return drop(f, problem);
  if (!tw_header_checksum_valid(pkt, len, tw_header_length(pkt))) return drop(f, TW_BAD_CHECKSUM);
  /* The sender must own the inner source: a peer cannot speak for another's pods. */
  const tw_peer *owner = tw_table_peer(t, tw_table_lookup(t, tw_read_be32(pkt + 12)));
  if (owner == NULL || owner->public_ip != from) return drop(f, TW_SPOOFED_SOURCE);
  if ((tw_read_be32(pkt + 16) & f->own_mask) != f->own_addr) return drop(f, TW_NOT_FOR_US);
  if (!tw_decrement_ttl(pkt, len)) return drop(f, TW_TTL_EXPIRED);
  return TW_PASS;
}
