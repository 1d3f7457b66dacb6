/* Software GRO (coalesce.ts), rule for rule; see coalesce.h. */
#include "coalesce.h"

#include <string.h>

#include "packet.h"

#define TCP 6
#define ACK 0x10
#define PSH 0x08
#define END UINT32_MAX

void tw_gro_init(tw_gro *g) {
  g->held = 0;
  g->n_runs = 0;
}

/* IP + TCP header length if pkt is a TCP segment GRO may merge, else 0. */
static uint32_t mergeable_header_length(const uint8_t *p, size_t len) {
  if (len < 40 || p[0] != 0x45 || p[9] != TCP) return 0; /* IPv4 without options, TCP */
  if ((tw_read_be16(p + 6) & 0x3fff) != 0) return 0;     /* a fragment */
  uint32_t thl = (uint32_t)(p[32] >> 4) << 2;
  if (thl < 20 || (p[33] & ~PSH) != ACK) return 0; /* ACK, maybe PSH; nothing else */
  uint32_t hl = 20 + thl;
  uint32_t total = tw_read_be16(p + 2);
  return total > hl && total == len ? hl : 0; /* carries data, no trailing bytes */
}

/* b is a mergeable segment; a is any packet held. */
static int same_flow(const uint8_t *a, size_t alen, const uint8_t *b) {
  return alen >= 24 && a[0] == b[0] && a[9] == b[9] && memcmp(a + 12, b + 12, 12) == 0;
}

static int can_append(const tw_gro *g, const tw_gro_run *r, const uint8_t *p, size_t len, uint32_t hl) {
  if (r->closed || hl != r->hl) return 0;
  uint32_t payload = (uint32_t)len - hl;
  if (payload > r->mss || r->bytes + payload > TW_GRO_PACKET_MAX) return 0;
  if (tw_read_be32(p + 24) != r->next_seq) return 0;
  const uint8_t *f = g->pkt[r->first];
  /* TOS, TTL, DF: the kernel would re-segment with the head's values */
  if (f[1] != p[1] || f[8] != p[8] || (f[6] & 0x40) != (p[6] & 0x40)) return 0;
  /* ACK number, data offset, flags but PSH (both ACK), window; then the options */
  if (memcmp(f + 28, p + 28, 5) != 0 || memcmp(f + 34, p + 34, 2) != 0) return 0;
  return memcmp(f + 40, p + 40, hl - 40) == 0;
}

static void start_run(tw_gro *g, uint32_t idx, uint32_t hl) {
  tw_gro_run *r = &g->runs[g->n_runs++];
  size_t len = g->len[idx];
  *r = (tw_gro_run){.first = idx, .last = idx, .parts = 1, .hl = hl, .bytes = (uint32_t)len, .closed = 1};
  if (hl == 0) return; /* merges with nothing */
  const uint8_t *p = g->pkt[idx];
  r->mss = (uint32_t)len - hl;
  r->psh = (p[33] & PSH) != 0;
  r->closed = r->psh;
  r->next_seq = tw_read_be32(p + 24) + r->mss; /* wraps modulo 2^32, as the sequence space */
}

static void append(tw_gro *g, tw_gro_run *r, uint32_t idx) {
  uint32_t payload = (uint32_t)g->len[idx] - r->hl;
  g->next[r->last] = idx;
  r->last = idx;
  r->parts++;
  r->bytes += payload;
  r->next_seq += payload;
  if (g->pkt[idx][33] & PSH) r->psh = 1;
  /* PSH, or a short segment, ends the run: gso_size must fit every segment but the last */
  if (r->psh || payload < r->mss) r->closed = 1;
}

/* A TCP packet that cannot merge ends the open runs between its two addresses, so that no
 * later segment overtakes it (its ports may sit elsewhere). */
static void close_runs_between(tw_gro *g, const uint8_t *p, size_t len) {
  if (len < 20 || p[9] != TCP) return;
  for (size_t i = 0; i < g->n_runs; i++) {
    tw_gro_run *r = &g->runs[i];
    if (!r->closed && memcmp(g->pkt[r->first] + 12, p + 12, 8) == 0) r->closed = 1;
  }
}

int tw_gro_add(tw_gro *g, const uint8_t *pkt, size_t len) {
  if (g->held >= TW_GRO_BATCH_MAX || (pkt == NULL && len > 0)) return 0;
  uint32_t idx = (uint32_t)g->held++;
  g->pkt[idx] = pkt;
  g->len[idx] = len;
  g->next[idx] = END;
  uint32_t hl = mergeable_header_length(pkt, len);
  if (hl == 0) {
    close_runs_between(g, pkt, len);
    start_run(g, idx, 0);
    return 1;
  }
  for (size_t i = g->n_runs; i-- > 0;) { /* a packet may only join its flow's newest run */
    tw_gro_run *r = &g->runs[i];
    if (!same_flow(g->pkt[r->first], g->len[r->first], pkt)) continue;
    if (can_append(g, r, pkt, len, hl)) {
      append(g, r, idx);
      return 1;
    }
    break;
  }
  start_run(g, idx, hl);
  return 1;
}

/* The folded, uncomplemented pseudo-header sum: what a checksum-partial TCP field holds. */
static uint16_t pseudo_header_sum(const uint8_t *p, uint32_t tcp_length) {
  uint32_t sum = tw_read_be16(p + 12) + tw_read_be16(p + 14) + tw_read_be16(p + 16) + tw_read_be16(p + 18) + TCP + tcp_length;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}

size_t tw_gro_merge(const tw_gro *g, size_t i, uint8_t *out, size_t cap, uint32_t *segment_size) {
  if (i >= g->n_runs) return 0;
  const tw_gro_run *r = &g->runs[i];
  *segment_size = 0;
  if (r->bytes > cap) return 0;
  if (r->parts == 1) {
    if (r->bytes > 0) memcpy(out, g->pkt[r->first], r->bytes);
    return r->bytes;
  }
  memcpy(out, g->pkt[r->first], r->hl);
  size_t at = r->hl;
  for (uint32_t k = r->first; k != END; k = g->next[k]) {
    memcpy(out + at, g->pkt[k] + r->hl, g->len[k] - r->hl);
    at += g->len[k] - r->hl;
  }
  tw_write_be16(out + 2, (uint16_t)r->bytes);
  if (r->psh) out[33] |= PSH;
  tw_write_header_checksum(out, r->bytes);
  tw_write_be16(out + 36, pseudo_header_sum(out, r->bytes - 20));
  *segment_size = r->mss;
  return r->bytes;
}
