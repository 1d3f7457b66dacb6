/*
 * The pump's lifecycle (pump.h): the UDP socket and its offloads, the thread and its loop, the
 * lock-free hand-over of peer tables, fault reports, and rate-limited ICMP errors.
 */
#include "pump.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

/* ICMP errors: 10 per second, bursts of 20 (icmp.ts ICMP_RATE_PER_SEC, ICMP_BURST). */
#define ICMP_RATE_PER_SEC 10.0
#define ICMP_BURST 20.0

tw_peers *tw_peers_build(const tw_peer *peers, size_t n) {
  tw_peers *p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  p->table = tw_table_build(peers, n);
  p->traffic = calloc(n == 0 ? 1 : n, sizeof *p->traffic);
  p->n = n;
  if (p->table == NULL || p->traffic == NULL) {
    tw_peers_free(p);
    return NULL;
  }
  return p;
}

void tw_peers_free(tw_peers *p) {
  if (p == NULL) return;
  tw_table_free(p->table);
  free(p->traffic);
  free(p);
}

/* Turns on one socket option; 1 when the kernel took it. */
static int try_udp_option(int fd, int option, int value) {
  return setsockopt(fd, IPPROTO_UDP, option, &value, sizeof value) == 0;
}

/* UDP_SEGMENT is a per-send cmsg; a kernel that has it answers getsockopt for it. */
static int has_udp_segment(int fd) {
  int v = 0;
  socklen_t len = sizeof v;
  return getsockopt(fd, IPPROTO_UDP, UDP_SEGMENT, &v, &len) == 0;
}

static int open_socket(tw_pump *p, uint32_t addr_be, uint16_t port, int buf_bytes, int want, const char **where) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return *where = "socket", errno;
  if (buf_bytes > 0) { /* the kernel caps them at net.core.{r,w}mem_max, as for node:dgram */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf_bytes, sizeof buf_bytes);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf_bytes, sizeof buf_bytes);
  }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = {.s_addr = addr_be}};
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int err = errno;
    close(fd);
    return *where = "bind", err;
  }
  socklen_t len = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &len);
  p->port = ntohs(sa.sin_port);
  p->udp_fd = fd;
  p->offloads = 0;
  if ((want & TW_OFF_UDP_GRO) && try_udp_option(fd, UDP_GRO, 1)) p->offloads |= TW_OFF_UDP_GRO;
  if ((want & TW_OFF_UDP_SEGMENT) && has_udp_segment(fd)) p->offloads |= TW_OFF_UDP_SEGMENT;
  return 0;
}

tw_pump *tw_pump_open(uint32_t addr_be, uint16_t port, int buf_bytes, int want, uint32_t own_addr,
                      uint32_t own_len, uint32_t mtu, uint32_t tun_addr, int *err, const char **where) {
  tw_pump *p = calloc(1, sizeof *p);
  if (p == NULL) return *err = ENOMEM, *where = "malloc", NULL;
  p->udp_fd = p->wake_fd = p->tun_fd = -1;
  p->tx_frames = malloc((size_t)TW_TX_BATCH * TW_FRAME_MAX);
  p->seg_arena = malloc(TW_SEG_ARENA);
  p->tx = tw_tx_batch_new();
  p->rx_frames = malloc((size_t)TW_RX_BATCH * TW_FRAME_MAX);
  p->merged = malloc(TW_FRAME_MAX);
  p->peers = tw_peers_build(NULL, 0);
  p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (p->tx_frames == NULL || p->seg_arena == NULL || p->tx == NULL || p->rx_frames == NULL || p->merged == NULL || p->peers == NULL || p->wake_fd < 0) {
    *err = p->wake_fd < 0 ? errno : ENOMEM;
    *where = "malloc";
    tw_pump_close(p);
    return NULL;
  }
  *err = open_socket(p, addr_be, port, buf_bytes, want, where);
  if (*err != 0) {
    tw_pump_close(p);
    return NULL;
  }
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->adopted, NULL);
  tw_forwarder_init(&p->fwd, own_addr, own_len, mtu);
  p->tun_addr = tun_addr;
  p->icmp_tokens = ICMP_BURST;
  return p;
}

int tw_pump_offloads(const tw_pump *p) { return __atomic_load_n(&p->offloads, __ATOMIC_RELAXED); }
uint16_t tw_pump_port(const tw_pump *p) { return p->port; }
uint64_t tw_pump_stat(const tw_pump *p, int stat) { return tw_load(&p->stats[stat]); }
uint64_t tw_pump_drop(const tw_pump *p, int reason) { return tw_load(&p->fwd.drops[reason]); }
const tw_peers *tw_pump_peers(const tw_pump *p) { return p->peers; }

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void tw_pump_icmp(tw_pump *p, int reason, const uint8_t *pkt, size_t len) {
  uint8_t out[TW_ICMP_ERROR_MAX];
  if (reason != TW_NO_ROUTE && reason != TW_TTL_EXPIRED) return;
  if (!tw_icmp_error_allowed(pkt, len)) return; /* never answered: takes no token */
  uint64_t now = now_ns();
  p->icmp_tokens += (double)(now - p->icmp_at_ns) / 1e9 * ICMP_RATE_PER_SEC;
  if (p->icmp_tokens > ICMP_BURST) p->icmp_tokens = ICMP_BURST;
  p->icmp_at_ns = now;
  if (p->icmp_tokens < 1) return tw_add(&p->stats[TW_ST_ICMP_SUPPRESSED], 1);
  p->icmp_tokens -= 1;
  size_t n = tw_icmp_for(reason, pkt, len, p->tun_addr, out, sizeof out);
  if (n > 0 && tw_pump_tun_write(p, out, n, 0) == 0) tw_add(&p->stats[TW_ST_ICMP_SENT], 1);
}

/* Between batches: a table handed over by tw_pump_set_peers becomes the thread's. */
static void adopt_pending(tw_pump *p) {
  if (atomic_load_explicit(&p->pending, memory_order_acquire) == NULL) return;
  pthread_mutex_lock(&p->mu);
  p->retired = p->peers;
  p->peers = atomic_exchange(&p->pending, NULL);
  pthread_cond_broadcast(&p->adopted);
  pthread_mutex_unlock(&p->mu);
}

static void drain_wake(int fd) {
  uint64_t v;
  while (read(fd, &v, sizeof v) > 0) {
  }
}

static void *run(void *arg) {
  tw_pump *p = arg;
  struct pollfd fds[3] = {{.fd = p->tun_fd, .events = POLLIN}, {.fd = p->udp_fd, .events = POLLIN}, {.fd = p->wake_fd, .events = POLLIN}};
  tw_pump_fault fault = {0, NULL};
  p->icmp_at_ns = now_ns();
  while (!atomic_load(&p->stop)) {
    adopt_pending(p);
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      fault = (tw_pump_fault){errno, "poll"};
      break;
    }
    tw_add(&p->stats[TW_ST_WAKEUPS], 1);
    if (fds[2].revents) drain_wake(p->wake_fd);
    adopt_pending(p);
    int tun_gone = 0;
    if (fds[1].revents) {
      int r = tw_pump_from_wire(p, &tun_gone);
      if (r < 0) {
        fault = (tw_pump_fault){-r, tun_gone ? "tun write" : "socket"};
        break;
      }
    }
    if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
      fault = (tw_pump_fault){EBADFD, "tun read"}; /* the device was deleted */
      break;
    }
    if (fds[0].revents & POLLIN) {
      int r = tw_pump_from_tun(p);
      if (r < 0) {
        fault = (tw_pump_fault){-r, "tun read"};
        break;
      }
    }
  }
  pthread_mutex_lock(&p->mu);
  p->running = 0;
  pthread_cond_broadcast(&p->adopted); /* a set_peers waiting for this thread adopts itself */
  pthread_mutex_unlock(&p->mu);
  if (fault.err != 0 && !atomic_load(&p->stop) && p->on_fault != NULL) p->on_fault(p->fault_ctx, fault);
  return NULL;
}

int tw_pump_start(tw_pump *p, int tun_fd, int vnet, void (*on_fault)(void *, tw_pump_fault), void *ctx) {
  if (p->running || p->tun_fd >= 0) return EBUSY;
  p->tun_fd = tun_fd;
  p->vnet = vnet;
  p->on_fault = on_fault;
  p->fault_ctx = ctx;
  atomic_store(&p->stop, 0);
  drain_wake(p->wake_fd);
  p->running = 1;
  int rc = pthread_create(&p->thread, NULL, run, p);
  if (rc != 0) {
    p->running = 0;
    p->tun_fd = -1;
  }
  return rc;
}

void tw_pump_stop(tw_pump *p) {
  if (p->tun_fd < 0) return;
  atomic_store(&p->stop, 1);
  uint64_t one = 1;
  if (write(p->wake_fd, &one, sizeof one) < 0) {
    /* the counter cannot overflow here; poll wakes anyway */
  }
  pthread_join(p->thread, NULL);
  p->tun_fd = -1;
}

tw_peers *tw_pump_set_peers(tw_pump *p, tw_peers *next) {
  tw_peers *old;
  pthread_mutex_lock(&p->mu);
  if (!p->running) {
    old = p->peers;
    p->peers = next;
    pthread_mutex_unlock(&p->mu);
    return old;
  }
  p->retired = NULL;
  atomic_store_explicit(&p->pending, next, memory_order_release);
  uint64_t one = 1;
  if (write(p->wake_fd, &one, sizeof one) < 0) {
    /* see tw_pump_stop */
  }
  while (atomic_load(&p->pending) != NULL && p->running) pthread_cond_wait(&p->adopted, &p->mu);
  tw_peers *stale = atomic_exchange(&p->pending, NULL);
  if (stale != NULL) { /* the thread ended before it took the table */
    old = p->peers;
    p->peers = stale;
  } else {
    old = p->retired;
  }
  p->retired = NULL;
  pthread_mutex_unlock(&p->mu);
  return old;
}

void tw_pump_close(tw_pump *p) {
  if (p == NULL) return;
  tw_pump_stop(p);
  if (p->udp_fd >= 0) close(p->udp_fd);
  if (p->wake_fd >= 0) close(p->wake_fd);
  tw_peers_free(p->peers);
  free(p->tx_frames);
  free(p->seg_arena);
  free(p->tx);
  free(p->rx_frames);
  free(p->merged);
  free(p);
}

int tw_tun_gone(int err) { return err == EBADFD; }
