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

/* IP + UDP header bytes of a UDP/IPv4 packet that may be cut, else 0 (segment.ts udpHeadersLength). */
static size_t udp_headers_length(const uint8_t *pkt, size_t len) {
  if (len < 28 || pkt[0] >> 4 != 4 || pkt[9] != UDP) return 0;
  size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
  if (ihl < 20 || tw_read_be16(pkt + 2) != len || (tw_read_be16(pkt + 6) & 0x3fff) != 0) return 0;
  return ihl + 8 <= len ? ihl + 8 : 0;
}

/* The transport checksum (pseudo-header, header and payload) of seg, its field taken as 0. */
static uint16_t transport_checksum(uint8_t *seg, size_t len, size_t ihl, size_t field, uint32_t proto) {
  tw_write_be16(seg + field, 0);
  uint32_t sum = tw_read_be16(seg + 12) + tw_read_be16(seg + 14) + tw_read_be16(seg + 16) + tw_read_be16(seg + 18) + proto + (uint32_t)(len - ihl);
  sum += tw_ones_sum(seg, len, ihl, len);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

/* Fixes the transport header of packet k of count (seg_len bytes) after the IP header's fields. */
typedef void (*finish_fn)(uint8_t *seg, size_t seg_len, size_t ihl, size_t k, size_t count, uint32_t size, uint32_t seq);

static void finish_tcp(uint8_t *seg, size_t seg_len, size_t ihl, size_t k, size_t count, uint32_t mss, uint32_t seq) {
  tw_write_be32(seg + ihl + 4, seq + (uint32_t)(k * mss));
  if (k + 1 < count) seg[ihl + 13] &= (uint8_t)~(FIN | PSH);
  if (k > 0) seg[ihl + 13] &= (uint8_t)~CWR;
  tw_write_be16(seg + ihl + 16, transport_checksum(seg, seg_len, ihl, ihl + 16, TCP));
}

static void finish_udp(uint8_t *seg, size_t seg_len, size_t ihl, size_t k, size_t count, uint32_t size, uint32_t seq) {
  (void)k, (void)count, (void)size, (void)seq;
  tw_write_be16(seg + ihl + 4, (uint16_t)(seg_len - ihl));
  uint16_t check = transport_checksum(seg, seg_len, ihl, ihl + 6, UDP);
  tw_write_be16(seg + ihl + 6, check == 0 ? 0xffff : check); /* 0 would mean "no checksum" */
}

/* What both cuts share (segment.ts cut): hl header bytes in front of every `size` payload
 * bytes, each packet with its IP total length, IP id + k and header checksum, then `finish`. */
static size_t cut(const uint8_t *pkt, size_t len, size_t hl, uint32_t size, finish_fn finish, uint8_t *out, size_t cap, uint32_t *lens, size_t max) {
  if (hl == 0 || size < 1) return 0;
  size_t payload = len - hl;
  size_t count = payload == 0 ? 1 : (payload + size - 1) / size;
  if (count > TW_TSO_SEGMENTS_MAX || count > max || len + (count - 1) * hl > cap) return 0;
  size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
  uint16_t id = tw_read_be16(pkt + 4);
  uint32_t seq = pkt[9] == TCP ? tw_read_be32(pkt + ihl + 4) : 0;
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
    finish(seg, seg_len, ihl, k, count, size, seq);
    lens[k] = (uint32_t)seg_len;
    seg += seg_len;
  }
  return count;
}

size_t tw_tso_segment(const uint8_t *pkt, size_t len, uint32_t mss, uint8_t *out, size_t cap, uint32_t *lens, size_t max) {
  return cut(pkt, len, tcp_headers_length(pkt, len), mss, finish_tcp, out, cap, lens, max);
}

size_t tw_uso_segment(const uint8_t *pkt, size_t len, uint32_t size, uint8_t *out, size_t cap, uint32_t *lens, size_t max) {
  return cut(pkt, len, udp_headers_length(pkt, len), size, finish_udp, out, cap, lens, max);
}
