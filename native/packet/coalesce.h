/*
 * Software GRO for the TUN write path in C (src/backend/udp/offload/coalesce.ts): TCP segments
 * of one flow that continue each other are merged into one TCP/IPv4 super-packet, by Linux's
 * tcp_gro_receive rules. A batch holds pointers to the caller's packets, which must stay valid
 * until the batch is merged; nothing is allocated.
 */
#ifndef TWILL_COALESCE_H
#define TWILL_COALESCE_H

#include <stddef.h>
#include <stdint.h>

/* Packets held before a batch is full (COALESCE_BATCH_MAX). */
#define TW_GRO_BATCH_MAX 64
/* A super-packet must fit the IPv4 total length field. */
#define TW_GRO_PACKET_MAX 65535

typedef struct {
  uint32_t first, last; /* batch indexes of the head packet and of the newest part */
  uint32_t parts;
  uint32_t hl;  /* IP + TCP header bytes; 0 for a packet that merges with nothing */
  uint32_t mss; /* the head's payload */
  uint32_t bytes; /* IP total length of the merged packet */
  uint32_t next_seq;
  int psh, closed;
} tw_gro_run;

typedef struct {
  const uint8_t *pkt[TW_GRO_BATCH_MAX];
  size_t len[TW_GRO_BATCH_MAX];
  uint32_t next[TW_GRO_BATCH_MAX]; /* the next part of the same run, in order */
  tw_gro_run runs[TW_GRO_BATCH_MAX];
  size_t held, n_runs;
} tw_gro;

void tw_gro_init(tw_gro *g);
/* Adds a packet (TcpCoalescer.add); 0 when the batch is already full (nothing added). */
int tw_gro_add(tw_gro *g, const uint8_t *pkt, size_t len);
/* Run i (0 <= i < n_runs) as one packet in out: its length, and *segment_size (0: a packet
 * that merged with nothing, copied as it is). 0 when cap is too small. */
size_t tw_gro_merge(const tw_gro *g, size_t i, uint8_t *out, size_t cap, uint32_t *segment_size);

#endif
