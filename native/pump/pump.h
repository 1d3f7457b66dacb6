/*
 * The udp packet pump: twill's udp data plane on a thread of its own. It blocks in poll() on
 * the TUN fd and the UDP socket, runs the packet functions of native/packet/ on every packet,
 * and never calls into JavaScript on the packet path. No Node-API here (pump_napi.c wraps it).
 *   pump.c     lifecycle: the socket, the thread, the peer table's hand-over, fault reports
 *   pump_tx.c  TUN -> wire: reads, forwarding, sendmmsg with UDP_SEGMENT per peer
 *   pump_rx.c  wire -> TUN: recvmmsg with UDP_GRO, acceptance, GRO into the TUN
 * Counters are written by the pump thread only and read by others with relaxed atomic loads.
 */
#ifndef TWILL_PUMP_H
#define TWILL_PUMP_H

#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../packet/coalesce.h"
#include "../packet/packet.h"

/* Frames read from the TUN per wake-up, and datagrams per recvmmsg. */
#define TW_TX_BATCH 64
#define TW_RX_BATCH 32
/* One sendmmsg: messages (a message carries many datagrams with UDP_SEGMENT), and datagrams. */
#define TW_TX_MSGS 64
#define TW_TX_IOV 1024
/* Segments cut from TSO super-packets, until sent: a few super-packets' worth. */
#define TW_SEG_ARENA (1024 * 1024)
/* The most one super-packet's segments take: the packet and a copy of the headers per segment. */
#define TW_SEG_OUT_MAX (65535 + TW_TSO_SEGMENTS_MAX * 120)
/* A TUN read or a GRO'd receive: a 64 KiB packet and a virtio header. */
#define TW_FRAME_MAX (65535 + 16)
/* The kernel's limit on segments in one UDP_SEGMENT send (UDP_MAX_SEGMENTS). */
#define TW_GSO_MAX_SEGMENTS 64

/* Socket offloads asked for and in effect (a bit mask; tw_pump.offloads). The device's (virtio
 * headers, TSO) come with its fd: tw_pump_start's vnet. */
#define TW_OFF_UDP_GRO 2     /* the socket coalesces received datagrams (UDP_GRO) */
#define TW_OFF_UDP_SEGMENT 4 /* a send carries several datagrams for one peer (UDP_SEGMENT) */

/* Pump totals (tw_pump.stats), in this order in pumpCounters(). */
enum tw_stat {
  TW_ST_PACKETS_OUT, TW_ST_BYTES_OUT, TW_ST_PACKETS_IN, TW_ST_BYTES_IN,
  TW_ST_ICMP_SENT, TW_ST_ICMP_SUPPRESSED,
  TW_ST_GRO_SUPER, TW_ST_GRO_SEGMENTS, /* TCP super-packets written to the TUN, segments in them */
  TW_ST_GSO_SENDS, TW_ST_GSO_SEGMENTS, /* UDP_SEGMENT sends of more than one datagram, datagrams in them */
  TW_ST_UDP_GRO_READS, TW_ST_UDP_GRO_SEGMENTS, /* received buffers holding more than one datagram */
  TW_ST_SENDMMSG, TW_ST_RECVMMSG, TW_ST_WAKEUPS,
  TW_ST_TSO_SUPER, TW_ST_TSO_SEGMENTS, /* TCP super-packets read from the TUN (TSO), segments cut from them */
  TW_ST_USO_SUPER, TW_ST_USO_SEGMENTS, /* UDP super-packets (USO), datagrams cut from them */
  TW_ST_COUNT
};

/* Per peer, by build index of its table. */
typedef struct {
  uint64_t packets_in, bytes_in, packets_out, bytes_out;
} tw_traffic;

/* One immutable peer table and its per-peer counters; swapped whole. */
typedef struct {
  tw_peer_table *table;
  size_t n;
  tw_traffic *traffic;
} tw_peers;

tw_peers *tw_peers_build(const tw_peer *peers, size_t n);
void tw_peers_free(tw_peers *p);

typedef struct tw_pump tw_pump;

/* How the thread ended (tw_pump_error). */
typedef struct {
  int err;             /* errno; 0 while running or after a clean stop */
  const char *where;   /* "tun read", "tun write", "socket", "poll" */
} tw_pump_fault;

/* Opens the UDP socket bound to addr:port (network byte order) with buffers of buf_bytes (0:
 * the kernel's) and turns on the offloads asked for in `want` that the kernel has. NULL and
 * *err and *where on failure. The TUN comes later (tw_pump_start). */
tw_pump *tw_pump_open(uint32_t addr_be, uint16_t port, int buf_bytes, int want, uint32_t own_addr,
                      uint32_t own_len, uint32_t mtu, uint32_t tun_addr, int *err, const char **where);
/* The offloads in effect (TW_OFF_*): asked for, granted by the kernel, and not since refused. */
int tw_pump_offloads(const tw_pump *p);
/* The bound port (host order). */
uint16_t tw_pump_port(const tw_pump *p);
/* Starts the thread on a TUN fd (vnet: its frames carry virtio headers). on_fault runs on the
 * pump thread when it stops by itself (the device went, the socket failed). 0 or errno. */
int tw_pump_start(tw_pump *p, int tun_fd, int vnet, void (*on_fault)(void *ctx, tw_pump_fault f), void *ctx);
/* Stops and joins the thread; the TUN fd is the caller's again. Idempotent. */
void tw_pump_stop(tw_pump *p);
/* Hands the thread a new table; returns once no packet will see the old one, and gives the
 * old one back (the caller reads its counters and frees it). */
tw_peers *tw_pump_set_peers(tw_pump *p, tw_peers *next);
/* Stops the thread, closes the socket, frees everything but the TUN. */
void tw_pump_close(tw_pump *p);

/* Reads (relaxed) for the counters API. */
uint64_t tw_pump_stat(const tw_pump *p, int stat);
uint64_t tw_pump_drop(const tw_pump *p, int reason);
/* The current table (for its per-peer counters); only stable between set_peers calls, which
 * happen on the same (JS) thread as this read. */
const tw_peers *tw_pump_peers(const tw_pump *p);
static inline uint64_t tw_load(const uint64_t *v) { return __atomic_load_n(v, __ATOMIC_RELAXED); }
static inline void tw_add(uint64_t *v, uint64_t n) { __atomic_store_n(v, *v + n, __ATOMIC_RELAXED); }

/* ---- shared by pump*.c ---- */

struct tw_pump {
  int udp_fd;
  uint16_t port; /* host order: peers listen on the same port */
  int offloads;
  uint32_t tun_addr; /* ICMP errors come from here */
  tw_forwarder fwd;
  uint64_t stats[TW_ST_COUNT];

  /* The thread. */
  int tun_fd;
  int vnet;
  int wake_fd;
  atomic_int stop;
  pthread_t thread;
  void (*on_fault)(void *, tw_pump_fault);
  void *fault_ctx;

  /* The table: `peers` is the thread's own while it runs; hand-over through `pending`. */
  tw_peers *peers;
  _Atomic(tw_peers *) pending;
  tw_peers *retired;
  int running;
  pthread_mutex_t mu;
  pthread_cond_t adopted;

  /* ICMP errors: a token bucket, in nanoseconds. */
  double icmp_tokens;
  uint64_t icmp_at_ns;

  /* Buffers, allocated once. */
  uint8_t *tx_frames; /* TW_TX_BATCH x TW_FRAME_MAX */
  uint8_t *seg_arena; /* TW_SEG_ARENA: segments cut from super-packets */
  struct tx_batch *tx; /* pump_tx.c's sendmmsg batch */
  uint8_t *rx_frames; /* TW_RX_BATCH x TW_FRAME_MAX */
  uint8_t *merged;    /* one GRO super-packet behind its virtio header */
  tw_gro gro;
};

/* pump_tx.c: a sendmmsg batch (freed with free()). */
struct tx_batch *tw_tx_batch_new(void);
/* pump_tx.c: drains the TUN; <0: -errno of a fatal TUN error. */
int tw_pump_from_tun(tw_pump *p);
/* pump_rx.c: drains the socket; <0: -errno of a fatal socket error, or of a TUN write that
 * says the device is gone (then *tun_gone = 1). */
int tw_pump_from_wire(tw_pump *p, int *tun_gone);
/* pump_rx.c: one packet into the TUN (a zero virtio header first when vnet); 0 or errno. */
int tw_pump_tun_write(tw_pump *p, const uint8_t *pkt, size_t len, uint32_t gso_size);
/* pump.c: an ICMP error about a dropped packet into the TUN, rate-limited. */
void tw_pump_icmp(tw_pump *p, int reason, const uint8_t *pkt, size_t len);
/* True for a TUN write errno that means the device is gone (EBADFD), not a full queue or a down link. */
int tw_tun_gone(int err);

#endif
