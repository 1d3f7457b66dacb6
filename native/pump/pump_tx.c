/*
 * TUN -> wire. One wake-up drains up to TW_TX_BATCH frames from the TUN. A TCP or UDP
 * super-packet (TSO, USO on the device) is cut into packets first (tw_tso_segment, tw_uso_segment). Each packet is forwarded
 * (tw_outbound) and queued; the queue goes out with one sendmmsg. With UDP_SEGMENT,
 * consecutive packets for the same peer travel in one message: equal-sized datagrams and at
 * most one shorter last, which the kernel cuts at gso_size (flannel's wire: one inner packet
 * per datagram), so the segments of one super-packet usually leave in one message.
 */
#include "pump.h"

#include <errno.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5 /* linux/virtio_net.h of Linux 6.2 on */
#endif
/* A UDP payload must fit 65535 - 8 - 20. */
#define GSO_BYTES_MAX 65507

typedef struct {
  int32_t peer;
  uint32_t segment; /* the first datagram's size: the gso_size */
  uint32_t segments, bytes;
  int closed; /* a shorter datagram ended it */
} tx_group;

struct tx_batch {
  struct mmsghdr msgs[TW_TX_MSGS];
  struct sockaddr_in to[TW_TX_MSGS];
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } cmsg[TW_TX_MSGS];
  tx_group groups[TW_TX_MSGS];
  struct iovec iov[TW_TX_IOV];
  size_t n_msgs, n_iov;
};

struct tx_batch *tw_tx_batch_new(void) { return calloc(1, sizeof(struct tx_batch)); }

/* Completes a checksum the kernel left partial (VIRTIO_NET_HDR_F_NEEDS_CSUM). */
static void complete_checksum(const struct virtio_net_hdr *h, uint8_t *pkt, size_t len) {
  size_t start = h->csum_start, field = (size_t)h->csum_start + h->csum_offset;
  if (!(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) || field + 2 > len || start >= len) return;
  uint16_t sum = (uint16_t)~tw_ones_sum(pkt, len, start, len);
  tw_write_be16(pkt + field, sum);
}

/* Joins the last message when the peer and sizes allow; 1 if it did. */
static int join_last(tw_pump *p, struct tx_batch *b, int32_t peer, uint32_t len) {
  if (!(p->offloads & TW_OFF_UDP_SEGMENT) || b->n_msgs == 0) return 0;
  tx_group *g = &b->groups[b->n_msgs - 1];
  if (g->peer != peer || g->closed || len > g->segment || g->segments >= TW_GSO_MAX_SEGMENTS || g->bytes + len > GSO_BYTES_MAX) return 0;
  g->segments++;
  g->bytes += len;
  g->closed = len < g->segment;
  b->msgs[b->n_msgs - 1].msg_hdr.msg_iovlen++;
  return 1;
}

/* Several datagrams in one message: the gso_size goes with it. */
static void add_segment_cmsg(struct tx_batch *b, size_t m) {
  struct msghdr *h = &b->msgs[m].msg_hdr;
  h->msg_control = b->cmsg[m].buf;
  h->msg_controllen = sizeof b->cmsg[m].buf;
  struct cmsghdr *c = CMSG_FIRSTHDR(h);
  c->cmsg_level = IPPROTO_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t size = (uint16_t)b->groups[m].segment;
  memcpy(CMSG_DATA(c), &size, sizeof size);
}

/* Sends the queue; a message the kernel refuses is dropped and counted, the rest still go. */
static void send_all(tw_pump *p, struct tx_batch *b) {
  for (size_t m = 0; m < b->n_msgs; m++) {
    if (b->groups[m].segments < 2) continue;
    add_segment_cmsg(b, m);
    tw_add(&p->stats[TW_ST_GSO_SENDS], 1);
    tw_add(&p->stats[TW_ST_GSO_SEGMENTS], b->groups[m].segments);
  }
  size_t i = 0;
  while (i < b->n_msgs) {
    int r = sendmmsg(p->udp_fd, &b->msgs[i], (unsigned)(b->n_msgs - i), MSG_DONTWAIT);
    tw_add(&p->stats[TW_ST_SENDMMSG], 1);
    if (r > 0) {
      i += (size_t)r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    tw_add(&p->fwd.drops[TW_SEND_FAILED], b->groups[i].segments);
    if (r < 0 && errno == EIO && b->groups[i].segments > 1) /* the device cannot segment: stop asking */
      __atomic_store_n(&p->offloads, p->offloads & ~TW_OFF_UDP_SEGMENT, __ATOMIC_RELAXED);
    i++;
  }
  b->n_msgs = b->n_iov = 0;
}

static void queue(tw_pump *p, struct tx_batch *b, int32_t index, uint8_t *pkt, uint32_t len) {
  if (b->n_iov == TW_TX_IOV) send_all(p, b);
  b->iov[b->n_iov++] = (struct iovec){.iov_base = pkt, .iov_len = len};
  tw_traffic *t = &p->peers->traffic[index];
  tw_add(&t->packets_out, 1);
  tw_add(&t->bytes_out, len);
  tw_add(&p->stats[TW_ST_PACKETS_OUT], 1);
  tw_add(&p->stats[TW_ST_BYTES_OUT], len);
  if (join_last(p, b, index, len)) return;
  if (b->n_msgs == TW_TX_MSGS) { /* full: send what is queued, then start over with this one */
    b->n_iov--;
    send_all(p, b);
    b->iov[b->n_iov++] = (struct iovec){.iov_base = pkt, .iov_len = len};
  }
  const tw_peer *peer = tw_table_peer(p->peers->table, index);
  size_t m = b->n_msgs++;
  b->to[m] = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(p->port), .sin_addr = {.s_addr = htonl(peer->public_ip)}};
  b->groups[m] = (tx_group){.peer = index, .segment = len, .segments = 1, .bytes = len, .closed = 0};
  b->msgs[m].msg_hdr = (struct msghdr){.msg_name = &b->to[m], .msg_namelen = sizeof b->to[m], .msg_iov = &b->iov[b->n_iov - 1], .msg_iovlen = 1};
}

static void forward(tw_pump *p, struct tx_batch *b, uint8_t *pkt, size_t len) {
  int32_t index;
  int verdict = tw_outbound(&p->fwd, p->peers->table, pkt, len, &index);
  if (verdict == TW_PASS) queue(p, b, index, pkt, (uint32_t)len);
  else tw_pump_icmp(p, verdict, pkt, len);
}

/* A TCP (TSO) or UDP (USO) super-packet: its packets, cut into the arena, each forwarded. */
static size_t forward_super(tw_pump *p, struct tx_batch *b, const struct virtio_net_hdr *h, int udp, const uint8_t *pkt, size_t len, uint8_t *out) {
  uint32_t lens[TW_TSO_SEGMENTS_MAX];
  size_t n = (udp ? tw_uso_segment : tw_tso_segment)(pkt, len, h->gso_size, out, TW_SEG_OUT_MAX, lens, TW_TSO_SEGMENTS_MAX);
  if (n == 0) {
    tw_add(&p->fwd.drops[TW_BAD_HEADER], 1);
    return 0;
  }
  tw_add(&p->stats[udp ? TW_ST_USO_SUPER : TW_ST_TSO_SUPER], 1);
  tw_add(&p->stats[udp ? TW_ST_USO_SEGMENTS : TW_ST_TSO_SEGMENTS], n);
  size_t used = 0;
  for (size_t k = 0; k < n; k++) {
    forward(p, b, out + used, lens[k]);
    used += lens[k];
  }
  return used;
}

int tw_pump_from_tun(tw_pump *p) {
  struct tx_batch *b = p->tx;
  size_t skip = p->vnet ? sizeof(struct virtio_net_hdr) : 0, used = 0;
  int fatal = 0;
  b->n_msgs = b->n_iov = 0;
  for (int i = 0; i < TW_TX_BATCH; i++) {
    if (TW_SEG_ARENA - used < TW_SEG_OUT_MAX) { /* the arena is full: send, then reuse it */
      send_all(p, b);
      used = 0;
    }
    uint8_t *frame = p->tx_frames + (size_t)i * TW_FRAME_MAX;
    ssize_t n = read(p->tun_fd, frame, TW_FRAME_MAX);
    if (n < 0) {
      if (errno == EINTR) {
        i--;
        continue;
      }
      if (errno != EAGAIN) fatal = -errno;
      break;
    }
    if ((size_t)n < skip) continue;
    uint8_t *pkt = frame + skip;
    size_t len = (size_t)n - skip;
    const struct virtio_net_hdr *h = (const struct virtio_net_hdr *)frame;
    uint8_t gso = skip ? h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN : VIRTIO_NET_HDR_GSO_NONE;
    if (gso == VIRTIO_NET_HDR_GSO_TCPV4 || gso == VIRTIO_NET_HDR_GSO_UDP_L4) {
      used += forward_super(p, b, h, gso == VIRTIO_NET_HDR_GSO_UDP_L4, pkt, len, p->seg_arena + used);
      continue;
    }
    if (skip && h->gso_type != VIRTIO_NET_HDR_GSO_NONE) { /* a kind we never asked for */
      tw_add(&p->fwd.drops[TW_BAD_HEADER], 1);
      continue;
    }
    if (skip) complete_checksum(h, pkt, len);
    forward(p, b, pkt, len);
  }
  if (b->n_msgs > 0) send_all(p, b);
  return fatal;
}
