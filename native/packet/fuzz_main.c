/*
 * Sanitizer harness for the packet functions (issue 15: "built with
 * -fsanitize=address,undefined and fed 10^6 random and truncated inputs; no report").
 * GRO coalescing gets the same inputs, plus TCP segments that continue each other.
 * Not part of the addon: test/unit/udp-native-sanitize.test.ts compiles it with the packet
 * .c files and runs it. Every input sits in a malloc of exactly its length, so a read one
 * byte past the end is an AddressSanitizer report. Besides "no report", it checks a few
 * invariants and aborts naming the first that fails.
 *
 *   fuzz_main [seed] [inputs]      defaults 15 and 1000000
 */
#include "coalesce.h"
#include "packet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state;

/* splitmix64: small, seeded, the same sequence on every machine. */
static uint64_t next(void) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint32_t below(uint32_t n) {
  return n == 0 ? 0 : (uint32_t)(next() % n);
}

static void fail(const char *what, uint64_t input) {
  fprintf(stderr, "fuzz: invariant failed at input %llu: %s\n", (unsigned long long)input, what);
  abort();
}

/* A copy of src[0, len) in a block of exactly len bytes (malloc(0) may give NULL: every
 * function must take NULL with length 0). */
static uint8_t *exact_copy(const uint8_t *src, size_t len) {
  uint8_t *p = malloc(len);
  if (p == NULL && len > 0) abort();
  if (len > 0) memcpy(p, src, len);
  return p;
}

static uint32_t mask_of(uint32_t len) {
  return len == 0 ? 0 : 0xffffffffu << (32 - len);
}

/* ---- inputs ---- */

#define SCRATCH 2048

/* A well-formed packet from a 10.x address to another, then perhaps broken one way. */
static size_t make_input(uint8_t *buf) {
  uint32_t kind = below(10);
  size_t len;
  if (kind < 2) { /* noise */
    len = below(100);
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)next();
    if (len > 0 && below(2)) buf[0] = 0x45;
    return len;
  }
  size_t hl = 20 + 4 * (below(4) == 0 ? below(11) : 0);
  len = hl + (below(30) == 0 ? below(SCRATCH - 60) : below(80));
  for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)next();
  buf[0] = (uint8_t)(0x40 | hl >> 2);
  tw_write_be16(buf + 2, (uint16_t)len);
  if (below(2)) buf[6] = buf[7] = 0; /* first fragment half the time */
  buf[8] = (uint8_t)(below(3) == 0 ? below(3) : 64);
  if (below(3) == 0) buf[9] = TW_PROTO_ICMP;
  tw_write_be32(buf + 12, 0x0a000000u | below(1u << 16) << 8 | below(256));
  tw_write_be32(buf + 16, 0x0a000000u | below(1u << 16) << 8 | below(256));
  tw_write_header_checksum(buf, len);
  if (kind < 5) len = below((uint32_t)len + 1); /* truncated anywhere */
  else if (kind < 7 && len > 0) buf[below((uint32_t)len)] = (uint8_t)next();
  else if (kind < 8) buf[0] = (uint8_t)(buf[0] & 0xf0) | (uint8_t)below(16);
  else if (kind < 9) tw_write_be16(buf + 2, (uint16_t)next());
  return len;
}

/* ---- tables ---- */

#define SMALL_MAX 48

typedef struct {
  tw_peer peers[SMALL_MAX];
  size_t n;
  tw_peer_table *t;
} small_table;

static void small_build(small_table *s) {
  tw_table_free(s->t);
  s->n = below(SMALL_MAX + 1);
  for (size_t i = 0; i < s->n; i++) {
    static const uint32_t lens[] = {0, 8, 16, 20, 24, 24, 24, 25, 28, 31, 32};
    s->peers[i].len = lens[below(sizeof lens / sizeof lens[0])];
    s->peers[i].addr = 0x0a000000u | below(1u << 16) << 8 | below(256);
    s->peers[i].public_ip = 0xc6120000u | below(8);
  }
  s->t = tw_table_build(s->peers, s->n);
  if (s->t == NULL) fail("small table not built", 0);
}

/* The naive answer: the longest containing prefix; for one subnet given twice, the later. */
static int32_t linear_lookup(const small_table *s, uint32_t ip) {
  int32_t best = -1;
  for (size_t i = 0; i < s->n; i++) {
    const tw_peer *p = &s->peers[i];
    if ((ip & mask_of(p->len)) != (p->addr & mask_of(p->len))) continue;
    if (best < 0 || p->len >= s->peers[best].len) best = (int32_t)i;
  }
  return best;
}

static tw_peer_table *big_table(void) {
  tw_peer *peers = malloc(10000 * sizeof *peers);
  if (peers == NULL) abort();
  for (size_t i = 0; i < 10000; i++)
    peers[i] = (tw_peer){.addr = 0x0a000000u | (uint32_t)i << 8, .len = 24, .public_ip = 0xc6124000u | (uint32_t)i};
  tw_peer_table *t = tw_table_build(peers, 10000);
  free(peers);
  if (t == NULL || tw_table_size(t) != 10000) fail("big table", 0);
  return t;
}

/* ---- checks per input ---- */

static void check_icmp(const uint8_t *out, size_t n, size_t cap, uint64_t input) {
  if (n == 0) return;
  if (n > cap || n < 28) fail("icmp length", input);
  uint8_t *copy = exact_copy(out, n);
  if (tw_check_header(copy, n) != TW_PASS || !tw_header_checksum_valid(copy, n, 20)) fail("icmp header", input);
  if (tw_ones_sum(copy, n, 20, n) != 0xffff) fail("icmp checksum", input);
  free(copy);
}

static void header_functions(const uint8_t *in, size_t len, uint64_t input) {
  tw_ipv4 h;
  int code = tw_check_header(in, len);
  if (tw_parse_ipv4(in, len, &h) != code) fail("parse and check disagree", input);
  tw_ones_sum(in, len, below((uint32_t)len + 3), below((uint32_t)len + 3)); /* also ranges outside */
  tw_internet_checksum(in, len, 0, len);
  tw_header_checksum_valid(in, len, below(70));
  tw_icmp_error_allowed(in, len);
  (void)tw_reason_name((int)below(20) - 2);
  uint8_t *p = exact_copy(in, len);
  int valid = code == TW_PASS && tw_header_checksum_valid(p, len, tw_header_length(p));
  if (tw_decrement_ttl(p, len) && valid && !tw_header_checksum_valid(p, len, tw_header_length(p)))
    fail("checksum broken by the TTL patch", input);
  tw_write_header_checksum(p, len);
  free(p);
}

static void icmp_functions(const uint8_t *in, size_t len, uint64_t input) {
  uint8_t out[TW_ICMP_ERROR_MAX];
  size_t cap = below(4) == 0 ? below(TW_ICMP_ERROR_MAX) : TW_ICMP_ERROR_MAX;
  check_icmp(out, tw_icmp_error(in, len, (uint8_t)next(), (uint8_t)next(), (uint32_t)next(), out, cap), cap, input);
  check_icmp(out, tw_icmp_for((int)below(18) - 1, in, len, 0x0a000001u, out, cap), cap, input);
}

static void forward_functions(tw_forwarder *f, small_table *s, const tw_peer_table *big, const uint8_t *in,
                              size_t len, uint64_t input) {
  const tw_peer_table *t = below(8) == 0 ? big : below(16) == 0 ? NULL : s->t;
  int32_t peer;
  uint8_t *p = exact_copy(in, len);
  if (tw_outbound(f, t, p, len, &peer) == TW_PASS && tw_table_peer(t, peer) == NULL) fail("outbound peer", input);
  free(p);
  p = exact_copy(in, len);
  tw_inbound(f, t, p, len, below(2) ? 0xc6120000u | below(8) : (uint32_t)next());
  free(p);
  uint32_t ip = below(2) ? 0x0a000000u | below(1u << 24) : (uint32_t)next();
  if (tw_table_lookup(s->t, ip) != linear_lookup(s, ip)) fail("lookup differs from a linear scan", input);
  tw_table_lookup(big, ip);
}

/* ---- GRO ---- */

static uint32_t flow_seq;
static uint64_t super_packets; /* merged runs seen, to show the harness reaches merging */

/* A TCP segment of one of two flows, mostly continuing the sequence. */
static size_t make_segment(uint8_t *buf) {
  size_t hl = 40 + 4 * (below(4) == 0 ? below(3) : 0);
  size_t len = hl + (below(8) == 0 ? below(1400) : 1000);
  memset(buf, 0, hl);
  buf[0] = 0x45;
  tw_write_be16(buf + 2, (uint16_t)len);
  buf[6] = 0x40;
  buf[8] = 64;
  buf[9] = 6;
  tw_write_be32(buf + 12, 0x0af40102);
  tw_write_be32(buf + 16, 0x0af40202);
  tw_write_be32(buf + 20, below(2) ? 0x9c401451u : 0x9c411451u);
  tw_write_be32(buf + 24, below(20) == 0 ? (uint32_t)next() : flow_seq);
  buf[32] = (uint8_t)((hl - 20) / 4) << 4;
  buf[33] = below(10) == 0 ? (uint8_t)next() : 0x10;
  for (size_t i = hl; i < len; i++) buf[i] = (uint8_t)i;
  flow_seq += (uint32_t)(len - hl);
  if (below(10) == 0) buf[below((uint32_t)len)] = (uint8_t)next();
  return below(10) == 0 ? below((uint32_t)len + 1) : len;
}

typedef struct {
  tw_gro g;
  uint8_t *held[TW_GRO_BATCH_MAX];
  uint8_t *out; /* exactly TW_GRO_PACKET_MAX bytes */
} gro_state;

/* Merges every run (into a cap that is sometimes too small), checks them, frees the batch. */
static void gro_flush(gro_state *st, uint64_t input) {
  for (size_t i = 0; i < st->g.n_runs; i++) {
    uint32_t mss;
    size_t cap = below(16) == 0 ? below(TW_GRO_PACKET_MAX) : TW_GRO_PACKET_MAX;
    size_t n = tw_gro_merge(&st->g, i, st->out, cap, &mss);
    if (n > cap || (n > 0 && n != st->g.runs[i].bytes)) fail("gro length", input);
    if (mss > 0) super_packets++;
    if (mss > 0 && (tw_check_header(st->out, n) != TW_PASS || !tw_header_checksum_valid(st->out, n, 20)))
      fail("gro super-packet header", input);
  }
  tw_gro_merge(&st->g, st->g.n_runs, st->out, TW_GRO_PACKET_MAX, &(uint32_t){0}); /* out of range: 0 */
  for (size_t i = 0; i < st->g.held; i++) free(st->held[i]);
  tw_gro_init(&st->g);
}

static void gro_functions(gro_state *st, const uint8_t *in, size_t len, uint64_t input) {
  static uint8_t seg[SCRATCH];
  /* Every input, and a continuing segment after every fourth. */
  for (int k = 0; k < (input % 4 == 0 ? 2 : 1); k++) {
    size_t n = k == 0 ? len : make_segment(seg);
    uint8_t *copy = exact_copy(k == 0 ? in : seg, n);
    if (!tw_gro_add(&st->g, copy, n)) fail("gro refused a packet below the batch size", input);
    st->held[st->g.held - 1] = copy;
    if (st->g.held == TW_GRO_BATCH_MAX || below(40) == 0) gro_flush(st, input);
  }
}

static uint64_t segments_cut = 0;

/* TSO (even inputs) or USO (odd ones) on every input, made TCP or UDP half the time; the output is exactly cap bytes, so a write past
 * it is caught. */
static void segment_functions(const uint8_t *in, size_t len, uint64_t input) {
  uint32_t lens[TW_TSO_SEGMENTS_MAX];
  uint8_t *copy = exact_copy(in, len);
  if (len > 9 && below(2)) copy[9] = input & 1 ? 17 : 6;
  uint32_t mss = below(4) == 0 ? below(8) : 1 + below(1500);
  size_t cap = below(8) == 0 ? below(4096) : len + TW_TSO_SEGMENTS_MAX * 120;
  size_t max = below(8) == 0 ? below(TW_TSO_SEGMENTS_MAX) : TW_TSO_SEGMENTS_MAX;
  uint8_t *out = malloc(cap == 0 ? 1 : cap);
  if (out == NULL) abort();
  size_t n = (input & 1 ? tw_uso_segment : tw_tso_segment)(copy, len, mss, out, cap, lens, max);
  size_t total = 0;
  for (size_t k = 0; k < n; k++) total += lens[k];
  if (total > cap || n > max) fail("segments overran the output", input);
  segments_cut += n;
  free(out);
  free(copy);
}

int main(int argc, char **argv) {
  state = argc > 1 ? strtoull(argv[1], NULL, 10) : 15;
  uint64_t inputs = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000;
  static uint8_t buf[SCRATCH];
  small_table s = {.n = 0, .t = NULL};
  tw_peer_table *big = big_table();
  tw_forwarder f;
  static gro_state gro;
  gro.out = malloc(TW_GRO_PACKET_MAX);
  if (gro.out == NULL) abort();
  tw_gro_init(&gro.g);
  tw_forwarder_init(&f, 0x0a000000u | below(1u << 16) << 8, 24, 1472);
  tw_peer bad = {.addr = 0, .len = 33, .public_ip = 0};
  if (tw_table_build(&bad, 1) != NULL) fail("a /33 was accepted", 0);
  for (uint64_t i = 0; i < inputs; i++) {
    if (i % 1000 == 0) small_build(&s);
    size_t len = make_input(buf);
    uint8_t *in = exact_copy(buf, len);
    header_functions(in, len, i);
    icmp_functions(in, len, i);
    forward_functions(&f, &s, big, in, len, i);
    gro_functions(&gro, in, len, i);
    segment_functions(in, len, i);
    free(in);
  }
  gro_flush(&gro, inputs);
  free(gro.out);
  tw_table_free(s.t);
  tw_table_free(big);
  uint64_t dropped = 0;
  for (int r = 0; r < TW_REASON_COUNT; r++) dropped += f.drops[r];
  printf("fuzz: %llu inputs, %llu drops counted, %llu super-packets, %llu segments cut, no problem\n", (unsigned long long)inputs,
         (unsigned long long)dropped, (unsigned long long)super_packets, (unsigned long long)segments_cut);
  return 0;
}
