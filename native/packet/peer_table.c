/*
 * The longest-prefix peer table (peer-table.ts), immutable: built once from a peer list, then
 * only read, so a pump can swap a new table in between batches. One sorted array of keys per
 * prefix length, probed from the longest length down with a binary search: leases share one
 * length, so a lookup is usually one search (14 steps for 10,000 peers).
 */
#include "packet.h"

#include <stdlib.h>
#include <string.h>

#define LENS 33

typedef struct {
  uint32_t key;  /* addr & mask(len) */
  uint32_t len;
  int32_t index; /* into peers */
} slot;

struct tw_peer_table {
  tw_peer *peers; /* the build list, copied */
  size_t n_peers;
  slot *slots; /* sorted by length (longest first), then key; one per subnet */
  size_t n_slots;
  uint32_t lens[LENS]; /* lengths in use, longest first */
  size_t n_lens;
  size_t first[LENS], count[LENS]; /* per length: its run of slots */
  uint32_t *public_ips;            /* sorted, unique */
  size_t n_public;
};

static uint32_t mask_of(uint32_t len) {
  return len == 0 ? 0 : 0xffffffffu << (32 - len); /* a shift by 32 would be undefined */
}

static int slot_order(const void *a, const void *b) {
  const slot *x = a, *y = b;
  if (x->len != y->len) return x->len > y->len ? -1 : 1;
  if (x->key != y->key) return x->key < y->key ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

static int u32_order(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* Sorts the slots and keeps the last entry given for each subnet (PeerTable.set replaces). */
static void sort_and_dedupe(tw_peer_table *t) {
  qsort(t->slots, t->n_slots, sizeof *t->slots, slot_order);
  size_t out = 0;
  for (size_t i = 0; i < t->n_slots; i++) {
    if (out > 0 && t->slots[out - 1].len == t->slots[i].len && t->slots[out - 1].key == t->slots[i].key)
      t->slots[out - 1] = t->slots[i]; /* sorted by index within a subnet: the later one wins */
    else
      t->slots[out++] = t->slots[i];
  }
  t->n_slots = out;
}

static void index_lengths(tw_peer_table *t) {
  for (size_t i = 0; i < t->n_slots; i++) {
    uint32_t len = t->slots[i].len;
    if (t->count[len]++ == 0) {
      t->first[len] = i;
      t->lens[t->n_lens++] = len;
    }
  }
}

static void collect_public_ips(tw_peer_table *t) {
  for (size_t i = 0; i < t->n_slots; i++) t->public_ips[i] = t->peers[t->slots[i].index].public_ip;
  qsort(t->public_ips, t->n_slots, sizeof *t->public_ips, u32_order);
  size_t out = 0;
  for (size_t i = 0; i < t->n_slots; i++)
    if (out == 0 || t->public_ips[out - 1] != t->public_ips[i]) t->public_ips[out++] = t->public_ips[i];
  t->n_public = out;
}

tw_peer_table *tw_table_build(const tw_peer *peers, size_t n) {
  if (n > INT32_MAX || (n > 0 && peers == NULL)) return NULL;
  for (size_t i = 0; i < n; i++)
    if (peers[i].len > 32) return NULL;
  tw_peer_table *t = calloc(1, sizeof *t);
  size_t room = n > 0 ? n : 1; /* malloc(0) may return NULL */
  if (t == NULL) return NULL;
  t->peers = malloc(room * sizeof *t->peers);
  t->slots = malloc(room * sizeof *t->slots);
  t->public_ips = malloc(room * sizeof *t->public_ips);
  if (t->peers == NULL || t->slots == NULL || t->public_ips == NULL) {
    tw_table_free(t);
    return NULL;
  }
  if (n > 0) memcpy(t->peers, peers, n * sizeof *peers);
  t->n_peers = n;
  for (size_t i = 0; i < n; i++)
    t->slots[i] = (slot){.key = peers[i].addr & mask_of(peers[i].len), .len = peers[i].len, .index = (int32_t)i};
  t->n_slots = n;
  sort_and_dedupe(t);
  index_lengths(t);
  collect_public_ips(t);
  return t;
}

void tw_table_free(tw_peer_table *t) {
  if (t == NULL) return;
  free(t->peers);
  free(t->slots);
  free(t->public_ips);
  free(t);
}

/* The slot with this key among slots[lo, lo + n), or NULL. */
static const slot *find_key(const slot *s, size_t n, uint32_t key) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s[mid].key == key) return &s[mid];
    if (s[mid].key < key) lo = mid + 1;
    else hi = mid;
  }
  return NULL;
}

int32_t tw_table_lookup(const tw_peer_table *t, uint32_t ip) {
  if (t == NULL) return -1;
  for (size_t i = 0; i < t->n_lens; i++) {
    uint32_t len = t->lens[i];
    const slot *hit = find_key(t->slots + t->first[len], t->count[len], ip & mask_of(len));
    if (hit != NULL) return hit->index;
  }
  return -1;
}

int tw_table_has_public_ip(const tw_peer_table *t, uint32_t ip) {
  if (t == NULL) return 0;
  size_t lo = 0, hi = t->n_public;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (t->public_ips[mid] == ip) return 1;
    if (t->public_ips[mid] < ip) lo = mid + 1;
    else hi = mid;
  }
  return 0;
}

const tw_peer *tw_table_peer(const tw_peer_table *t, int32_t index) {
  if (t == NULL || index < 0 || (size_t)index >= t->n_peers) return NULL;
  return &t->peers[index];
}

size_t tw_table_size(const tw_peer_table *t) {
  return t == NULL ? 0 : t->n_slots;
}
