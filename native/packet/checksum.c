/* The Internet checksum (RFC 1071) and the incremental TTL patch (RFC 1624), as checksum.ts. */
#include "packet.h"

static uint32_t fold(uint32_t sum) {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return sum;
}

uint32_t tw_ones_sum(const uint8_t *buf, size_t len, size_t start, size_t end) {
  if (buf == NULL || start > end || end > len) return 0;
  /* At most 32768 words of 0xffff per 64 KiB: a uint64 cannot overflow on any length. */
  uint64_t sum = 0;
  size_t i = start;
  for (; i + 1 < end; i += 2) sum += (uint32_t)buf[i] << 8 | buf[i + 1];
  if (i < end) sum += (uint32_t)buf[i] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return (uint32_t)sum;
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
