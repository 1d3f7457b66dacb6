/*
 * ICMP errors the data path writes back into the TUN (icmp.ts): net unreachable, time
 * exceeded. Never about an ICMP error, a non-first fragment, a non-unicast source or a
 * multicast/broadcast destination (RFC 1812 4.3.2.7, kept simple).
 */
#include "packet.h"

#include <string.h>

#define ICMP_TTL 64
/* Precedence "internetwork control", as RFC 1812 4.3.2.5 suggests and Linux does. */
#define ICMP_TOS 0xc0
/* RFC 792: the offender's IP header plus the first 64 bits of its payload. */
#define QUOTED_PAYLOAD 8

static int is_error_type(uint8_t type) {
  return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

/* Not 0/8, loopback, multicast, class E or broadcast. */
static int unicast(uint32_t ip) {
  uint32_t first = ip >> 24;
  return first != 0 && first != 127 && first < 224;
}

int tw_icmp_error_allowed(const uint8_t *pkt, size_t len) {
  if (tw_check_header(pkt, len) != TW_PASS) return 0;
  if (((pkt[6] & 0x1f) << 8 | pkt[7]) != 0) return 0;
  if (!unicast(tw_read_be32(pkt + 12)) || tw_read_be32(pkt + 16) >> 28 >= 0xe) return 0;
  if (pkt[9] != TW_PROTO_ICMP) return 1;
  size_t type_at = tw_header_length(pkt);
  /* An ICMP packet too short to show its type might be an error: stay silent. */
  return type_at < len && !is_error_type(pkt[type_at]);
}

size_t tw_icmp_error(const uint8_t *offender, size_t len, uint8_t type, uint8_t code, uint32_t source,
                     uint8_t *out, size_t cap) {
  if (out == NULL || !tw_icmp_error_allowed(offender, len)) return 0;
  size_t hl = tw_header_length(offender);
  size_t quoted = len < hl + QUOTED_PAYLOAD ? len : hl + QUOTED_PAYLOAD;
  size_t total = 20 + 8 + quoted;
  if (total > cap) return 0;
  memset(out, 0, total);
  out[0] = 0x45;
  out[1] = ICMP_TOS;
  tw_write_be16(out + 2, (uint16_t)total);
  out[8] = ICMP_TTL;
  out[9] = TW_PROTO_ICMP;
  tw_write_be32(out + 12, source);
  memcpy(out + 16, offender + 12, 4); /* to the offender's source */
  tw_write_header_checksum(out, total);
  out[20] = type;
  out[21] = code;
  memcpy(out + 28, offender, quoted);
  tw_write_be16(out + 22, tw_internet_checksum(out, total, 20, total));
  return total;
}

size_t tw_icmp_for(int reason, const uint8_t *offender, size_t len, uint32_t source, uint8_t *out, size_t cap) {
  if (reason == TW_NO_ROUTE)
    return tw_icmp_error(offender, len, TW_ICMP_DEST_UNREACHABLE, TW_ICMP_NET_UNREACHABLE, source, out, cap);
  if (reason == TW_TTL_EXPIRED)
    return tw_icmp_error(offender, len, TW_ICMP_TIME_EXCEEDED, TW_ICMP_TTL_EXCEEDED_IN_TRANSIT, source, out, cap);
  return 0;
}
