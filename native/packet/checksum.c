/* The Internet checksum (RFC 1071) and the incremental TTL patch (RFC 1624), as checksum.ts. */
#include "packet.h"

#include <string.h>

static uint32_t fold(uint32_t sum) {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return sum;
}

uint32_t tw_ones_sum(const uint8_t *buf, size_t len, size_t start, size_t end) {
  if (buf == NULL || start > end || end > len) return 0;
  const uint8_t *p = buf + start;
  size_t n = end - start;
  uint64_t sum = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  /* Eight bytes at a time in the machine's order, swapped once at the end: the ones'
   * complement sum is the same either way round (RFC 1071, "byte order independence").
   * Each step adds two 32-bit halves: no overflow below 2^31 steps. */
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    memcpy(&w, p, sizeof w);
    sum += (w & 0xffffffffu) + (w >> 32);
  }
  for (; n >= 2; p += 2, n -= 2) sum += (uint32_t)p[1] << 8 | p[0];
  if (n > 0) sum += p[0];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return (uint32_t)((sum >> 8) | (sum & 0xff) << 8);
#else
  for (; n >= 2; p += 2, n -= 2) sum += (uint32_t)p[0] << 8 | p[1];
  if (n > 0) sum += (uint32_t)p[0] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return (uint32_t)sum;
#endif
}

uint16_t tw_internet_checksum(const uint8_t *buf, size_t len, size_t start, size_t end) {
  return (uint16_t)(~tw_ones_sum(buf, len, start, end) & 0xffff);
}

int tw_write_header_checksum(uint8_t *pkt, size_t len) {
  if (pkt == NULL || len < 1) return 0;
  size_t hl = tw_header_length(pkt);
  if (hl < 12 || hl > len) return 0; /* the checksum field itself must be inside */
  pkt[10] = 0;
  pkt[11] = 0;
  tw_write_be16(pkt + 10, tw_internet_checksum(pkt, len, 0, hl));
  return 1;
}

int tw_header_checksum_valid(const uint8_t *pkt, size_t len, size_t header_len) {
  if (pkt == NULL || header_len > len) return 0;
  return tw_ones_sum(pkt, len, 0, header_len) == 0xffff;
}

int tw_decrement_ttl(uint8_t *pkt, size_t len) {
  if (pkt == NULL || len < TW_IPV4_MIN_HEADER) return 0;
  uint32_t ttl = pkt[8];
  if (ttl <= 1) return 0;
  /* HC' = ~(~HC + ~m + m'), m being the 16-bit word TTL|protocol (RFC 1624 eqn. 3). */
  uint32_t old = ttl << 8 | pkt[9];
  uint32_t hc = tw_read_be16(pkt + 10);
  uint32_t sum = fold((~hc & 0xffff) + (~old & 0xffff) + (old - 0x100));
  pkt[8] = (uint8_t)(ttl - 1);
  tw_write_be16(pkt + 10, (uint16_t)(~sum & 0xffff));
  return 1;
}
