/* IPv4 header check and parse (src/backend/udp/packet.ts), and the reason names. */
#include "packet.h"

#include <string.h>

static const char *const REASON_NAMES[TW_REASON_COUNT] = {
    "pass",          "truncated",   "not-ipv4",     "bad-header",     "bad-checksum",
    "length-mismatch", "oversize",  "unknown-peer", "spoofed-source", "not-for-us",
    "ttl-expired",   "no-route",    "own-subnet",   "send-failed",    "tun-write-failed",
};

const char *tw_reason_name(int reason) {
  return reason >= 0 && reason < TW_REASON_COUNT ? REASON_NAMES[reason] : NULL;
}

uint32_t tw_read_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint16_t tw_read_be16(const uint8_t *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

void tw_write_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

void tw_write_be16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

size_t tw_header_length(const uint8_t *pkt) {
  return (size_t)(pkt[0] & 0x0f) << 2;
}

int tw_check_header(const uint8_t *pkt, size_t len) {
  if (pkt == NULL || len < TW_IPV4_MIN_HEADER) return TW_TRUNCATED;
  if (pkt[0] >> 4 != 4) return TW_NOT_IPV4;
  size_t hl = tw_header_length(pkt);
  if (hl < TW_IPV4_MIN_HEADER) return TW_BAD_HEADER;
  if (hl > len) return TW_TRUNCATED;
  size_t total = tw_read_be16(pkt + 2);
  if (total < hl) return TW_BAD_HEADER;
  /* A datagram carries exactly one packet: shorter is truncated, longer has trailing junk. */
  if (total != len) return TW_LENGTH_MISMATCH;
  return TW_PASS;
}

int tw_parse_ipv4(const uint8_t *pkt, size_t len, tw_ipv4 *out) {
  int problem = tw_check_header(pkt, len);
  if (problem != TW_PASS) return problem;
  out->header_length = (uint32_t)tw_header_length(pkt);
  out->total_length = tw_read_be16(pkt + 2);
  out->ttl = pkt[8];
  out->protocol = pkt[9];
  out->fragment_offset = (uint32_t)(pkt[6] & 0x1f) << 8 | pkt[7];
  out->checksum = tw_read_be16(pkt + 10);
  out->src = tw_read_be32(pkt + 12);
  out->dst = tw_read_be32(pkt + 16);
  return TW_PASS;
}
