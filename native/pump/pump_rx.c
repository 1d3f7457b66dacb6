/*
 * Wire -> TUN. recvmmsg takes up to TW_RX_BATCH buffers at a time; with UDP_GRO each may hold
 * many datagrams of one sender, cut at the size the kernel reports. Every datagram passes the
 * acceptance rules (tw_inbound). With virtio headers, accepted TCP segments are merged per
 * flow (tw_gro) and written as super-packets once the batch is read; anything else is written
 * at once.
 */
#include "pump.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../vnet.h"

#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#define IPPROTO_TCP_NUMBER 6
/* Socket reads per wake-up before the TUN gets its turn. */
#define RX_ROUNDS 8

typedef struct {
  struct mmsghdr msgs[TW_RX_BATCH];
  struct iovec iov[TW_RX_BATCH];
  struct sockaddr_in from[TW_RX_BATCH];
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } cmsg[TW_RX_BATCH];
} rx_batch;

int tw_pump_tun_write(tw_pump *p, const uint8_t *pkt, size_t len, uint32_t gso_size) {
  struct virtio_net_hdr h;
  struct iovec iov[2] = {{.iov_base = &h, .iov_len = sizeof h}, {.iov_base = (void *)pkt, .iov_len = len}};
  ssize_t w;
  if (gso_size > 0 && !tw_vnet_tcp4(&h, pkt, len, gso_size)) return EINVAL;
  if (gso_size == 0) memset(&h, 0, sizeof h);
  do w = p->vnet ? writev(p->tun_fd, iov, 2) : write(p->tun_fd, pkt, len);
  while (w < 0 && errno == EINTR);
  return w < 0 ? errno : 0;
}

/* A write into the TUN that fails is a drop; a device that is gone ends the pump. */
static int deliver(tw_pump *p, const uint8_t *pkt, size_t len, uint32_t gso_size) {
  int err = tw_pump_tun_write(p, pkt, len, gso_size);
  if (err == 0) return 0;
  tw_add(&p->fwd.drops[TW_TUN_WRITE_FAILED], 1);
  return tw_tun_gone(err) ? -err : 0;
}

static int flush_gro(tw_pump *p) {
  int fatal = 0;
  for (size_t i = 0; i < p->gro.n_runs && fatal == 0; i++) {
    uint32_t segment = 0;
    size_t n = tw_gro_merge(&p->gro, i, p->merged, TW_FRAME_MAX, &segment);
    if (n == 0) continue;
    fatal = deliver(p, p->merged, n, segment);
    if (fatal == 0 && segment > 0) {
      tw_add(&p->stats[TW_ST_GRO_SUPER], 1);
      tw_add(&p->stats[TW_ST_GRO_SEGMENTS], p->gro.runs[i].parts);
    }
  }
  tw_gro_init(&p->gro);
  return fatal;
}

/* One datagram from `from` (host order). */
static int accept_one(tw_pump *p, uint8_t *pkt, size_t len, uint32_t from) {
  const tw_peers *peers = p->peers;
  int verdict = tw_inbound(&p->fwd, peers->table, pkt, len, from);
  if (verdict != TW_PASS) {
    tw_pump_icmp(p, verdict, pkt, len);
    return 0;
  }
  int32_t index = tw_table_lookup(peers->table, tw_read_be32(pkt + 12));
  tw_traffic *t = &peers->traffic[index];
  tw_add(&t->packets_in, 1);
  tw_add(&t->bytes_in, len);
  tw_add(&p->stats[TW_ST_PACKETS_IN], 1);
  tw_add(&p->stats[TW_ST_BYTES_IN], len);
  if (!p->vnet || pkt[9] != IPPROTO_TCP_NUMBER) return deliver(p, pkt, len, 0);
  if (tw_gro_add(&p->gro, pkt, len)) return 0;
  int fatal = flush_gro(p); /* the batch is full: write it and start the next */
  if (fatal == 0) tw_gro_add(&p->gro, pkt, len);
  return fatal;
}

/* The datagram size UDP_GRO reports for a buffer; 0 when it holds one datagram. */
static uint32_t gro_size(struct msghdr *h) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO) {
      int v;
      memcpy(&v, CMSG_DATA(c), sizeof v);
      return v > 0 ? (uint32_t)v : 0;
    }
  }
  return 0;
}

/* One received buffer: one datagram, or several of one sender cut at their size. */
static int accept_buffer(tw_pump *p, uint8_t *buf, size_t len, uint32_t size, uint32_t from) {
  if (size == 0 || size >= len) return accept_one(p, buf, len, from);
  tw_add(&p->stats[TW_ST_UDP_GRO_READS], 1);
  tw_add(&p->stats[TW_ST_UDP_GRO_SEGMENTS], (len + size - 1) / size);
  for (size_t off = 0; off < len; off += size) {
    size_t n = len - off < size ? len - off : size;
    int fatal = accept_one(p, buf + off, n, from);
    if (fatal != 0) return fatal;
  }
  return 0;
}

static void prepare(tw_pump *p, rx_batch *b) {
  for (int i = 0; i < TW_RX_BATCH; i++) {
    b->iov[i] = (struct iovec){.iov_base = p->rx_frames + (size_t)i * TW_FRAME_MAX, .iov_len = TW_FRAME_MAX};
    b->msgs[i].msg_hdr = (struct msghdr){.msg_name = &b->from[i], .msg_namelen = sizeof b->from[i], .msg_iov = &b->iov[i], .msg_iovlen = 1, .msg_control = b->cmsg[i].buf, .msg_controllen = sizeof b->cmsg[i].buf};
  }
}

int tw_pump_from_wire(tw_pump *p, int *tun_gone) {
  rx_batch b;
  *tun_gone = 0;
  for (int round = 0; round < RX_ROUNDS; round++) {
    prepare(p, &b);
    int n = recvmmsg(p->udp_fd, b.msgs, TW_RX_BATCH, MSG_DONTWAIT, NULL);
    tw_add(&p->stats[TW_ST_RECVMMSG], 1);
    if (n < 0) {
      if (errno == EINTR) continue;
      /* ECONNREFUSED and the like report an earlier send's ICMP error: not the socket's end. */
      return errno == EAGAIN || errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH ? 0 : -errno;
    }
    tw_gro_init(&p->gro);
    int fatal = 0;
    for (int i = 0; i < n && fatal == 0; i++) {
      struct msghdr *h = &b.msgs[i].msg_hdr;
      if (h->msg_flags & MSG_TRUNC) { /* larger than any frame we take: cannot be a packet */
        tw_add(&p->fwd.drops[TW_OVERSIZE], 1);
        continue;
      }
      fatal = accept_buffer(p, b.iov[i].iov_base, b.msgs[i].msg_len, gro_size(h), ntohl(b.from[i].sin_addr.s_addr));
    }
    if (fatal == 0) fatal = flush_gro(p);
    if (fatal != 0) {
      *tun_gone = 1;
      return fatal;
    }
    if (n < TW_RX_BATCH) return 0;
  }
  return 0;
}
