/*
 * Software TSO and USO (src/backend/udp/offload/segment.ts): a TCP/IPv4 super-packet, or a
 * UDP/IPv4 one (a pod's UDP_SEGMENT send), read from a TUN with TUNSETOFFLOAD, cut into
 * packets as tcp_gso_segment and __udp_gso_segment cut them.
 */
#include "packet.h"

#include <string.h>

#define TCP 6
#define UDP 17
#define FIN 0x01
#define PSH 0x08
#define CWR 0x80

/* IP + TCP header bytes of a packet that may be cut, else 0 (segment.ts tcpHeadersLength). */
static size_t tcp_headers_length(const uint8_t *pkt, size_t len) {
  if (len < 40 || pkt[0] >> 4 != 4 || pkt[9] != TCP) return 0;
  size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
  if (ihl < 20 || tw_read_be16(pkt + 2) != len || (tw_read_be16(pkt + 6) & 0x3fff) != 0) return 0;
  if (len < ihl + 20) return 0;
  size_t thl = (size_t)(pkt[ihl + 12] >> 4) * 4;
  return thl >= 20 && ihl + thl <= len ? ihl + thl : 0;
}

static void write_tcp_checksum(uint8_t *seg, size_t len, size_t ihl) {
  tw_write_be16(seg + ihl + 16, 0);
  uint32_t sum = tw_read_be16(seg + 12) + tw_read_be16(seg + 14) + tw_read_be16(seg + 16) + tw_read_be16(seg + 18) + TCP + (uint32_t)(len - ihl);
  sum += tw_ones_sum(seg, len, ihl, len);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  tw_write_be16(seg + ihl + 16, (uint16_t)~sum);
}

size_t tw_tso_segment(const uint8_t *pkt, size_t len, uint32_t mss, uint8_t *out, size_t cap, uint32_t *lens, size_t max) {
  size_t hl = tcp_headers_length(pkt, len);
  if (hl == 0 || mss < 1) return 0;
  size_t payload = len - hl;
  size_t count = payload == 0 ? 1 : (payload + mss - 1) / mss;
  if (count > TW_TSO_SEGMENTS_MAX || count > max || len + (count - 1) * hl > cap) return 0;
  size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
  uint16_t id = tw_read_be16(pkt + 4);
  uint32_t seq = tw_read_be32(pkt + ihl + 4);
  uint8_t *seg = out;
  for (size_t k = 0; k < count; k++) {
    size_t start = hl + k * mss;
    size_t n = len - start < mss ? len - start : mss;
    if (payload == 0) n = 0;
    size_t seg_len = hl + n;
    memcpy(seg, pkt, hl);
    memcpy(seg + hl, pkt + start, n);
    tw_write_be16(seg + 2, (uint16_t)seg_len);
    tw_write_be16(seg + 4, (uint16_t)(id + k));
    tw_write_header_checksum(seg, seg_len);
    tw_write_be32(seg + ihl + 4, seq + (uint32_t)(k * mss));
    if (k + 1 < count) seg[ihl + 13] &= (uint8_t)~(FIN | PSH);
    if (k > 0) seg[ihl + 13] &= (uint8_t)~CWR;
    write_tcp_checksum(seg, seg_len, ihl);
    lens[k] = (uint32_t)seg_len;
    seg += seg_len;
  }
  return count;
}

/* IP + UDP header bytes of a UDP/IPv4 packet that may be cut, else 0 (segment.ts udpHeadersLength). */
static size_t udp_headers_length(const uint8_t *pkt, size_t len) {
  if (len < 28 || pkt[0] >> 4 != 4 || pkt[9] != UDP) return 0;
  size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
  if (ihl < 20 || tw_read_be16(pkt + 2) != len || (tw_read_be16(pkt + 6) & 0x3fff) != 0) return 0;
  return ihl + 8 <= len ? ihl + 8 : 0;
}

static void write_udp_checksum(uint8_t *seg, size_t len, size_t ihl) {
  tw_write_be16(seg + ihl + 6, 0);
  uint32_t sum = tw_read_be16(seg + 12) + tw_read_be16(seg + 14) + tw_read_be16(seg + 16) + tw_read_be16(seg + 18) + UDP + (uint32_t)(len - ihl);
  sum += tw_ones_sum(seg, len, ihl, len);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  uint16_t check = (uint16_t)~sum;
  tw_write_be16(seg + ihl + 6, check == 0 ? 0xffff : check); /* 0 would mean "no checksum" */
}

size_t tw_uso_segment(const uint8_t *pkt, size_t len, uint32_t size, uint8_t *out, size_t cap, uint32_t *lens, size_t max) {
  size_t hl = udp_headers_length(pkt, len);
  if (hl == 0 || size < 1) return 0;
  size_t payload = len - hl;
  size_t count = payload == 0 ? 1 : (payload + size - 1) / size;
  if (count > TW_TSO_SEGMENTS_MAX || count > max || len + (count - 1) * hl > cap) return 0;
  size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
  uint16_t id = tw_read_be16(pkt + 4);
  uint8_t *seg = out;
  for (size_t k = 0; k < count; k++) {
    size_t start = hl + k * size;
    size_t n = len - start < size ? len - start : size;
    size_t seg_len = hl + n;
    memcpy(seg, pkt, hl);
    memcpy(seg + hl, pkt + start, n);
    tw_write_be16(seg + 2, (uint16_t)seg_len);
    tw_write_be16(seg + 4, (uint16_t)(id + k));
    tw_write_header_checksum(seg, seg_len);
    tw_write_be16(seg + ihl + 4, (uint16_t)(seg_len - ihl));
    write_udp_checksum(seg, seg_len, ihl);
    lens[k] = (uint32_t)seg_len;
    seg += seg_len;
  }
  return count;
}
