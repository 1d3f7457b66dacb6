/*
 * twill's TUN addon: what the three parts share (see tun.c for the exported functions).
 *   tun.c        open, close, module registration
 *   tun_read.c   start(): batches of packets to JavaScript (uv_poll or a reader thread)
 *   tun_write.c  write(): batches of packets into the device, with virtio headers if asked
 */
#ifndef TWILL_TUN_H
#define TWILL_TUN_H

#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* Packets per wake-up: enough to amortise the hand-off, small enough to keep latency low. */
#define BATCH_MAX 64
/* Largest frame a read can return: a 64 KiB IPv4 packet plus its virtio_net_hdr (offload on).
 * A read needs this much room or the kernel silently truncates. */
#define PKT_MAX (65535 + 10)
/* Staging area the reader drains into: 64 packets of a 1500 MTU, or a few TCP super-packets
 * when offload is on; each batch is then copied into a slab of its exact size. */
#define STAGING_CAP (512 * 1024)
/* Batches waiting for JS before the reader blocks; then the kernel's queue fills and drops. */
#define QUEUE_MAX 16

/* Slab header, in uint32 words: count, errno, byte offset of the data, then BATCH_MAX lengths. */
#define HDR_COUNT 0
#define HDR_ERRNO 1
#define HDR_DATA 2
#define HDR_LENS 3
#define HDR_BYTES (4 * (HDR_LENS + BATCH_MAX))

/* Read modes: a reader thread handing batches over, a uv_poll handle on the JS thread's loop,
 * or adaptive: the loop reads while traffic is light (one wake-up per packet, the lowest
 * latency) and hands reading to the thread once it is heavy (reads run on the other core). */
#define MODE_THREAD 0
#define MODE_POLL 1
#define MODE_ADAPTIVE 2
/* Adaptive: this many full batches in a row move reading to the thread... */
#define BUSY_WAKEUPS 4
/* ...and this long without a packet moves it back to the loop. */
#define IDLE_MS 50
/* Who reads in adaptive mode. */
#define OWNER_LOOP 0
#define OWNER_THREAD 1
/* The errno word of the slab that tells the loop to read again (no real errno is this big). */
#define HDR_RESUME_LOOP 0xffffffffu

/* open() options (a bit mask). OFFLOAD_VNET: every frame starts with a struct virtio_net_hdr,
 * so writes can carry TCP super-packets (GRO). Reads stay ordinary packets unless OFFLOAD_TSO
 * is asked for too: the JS read path takes packets only (TSO reads were measured slower there,
 * the segmenting moving onto the agent's busiest thread); the pump segments in C. */
#define OFFLOAD_VNET 1
/* OFFLOAD_TSO (with OFFLOAD_VNET): TUNSETOFFLOAD TUN_F_CSUM | TUN_F_TSO4, so reads may be TCP
 * super-packets of up to 64 KiB and checksum-partial packets. Only the udp pump asks: it
 * segments in C. A kernel that refuses it leaves the device without (open() says which). */
#define OFFLOAD_TSO 2
/* Set by open() when TSO came with TUN_F_USO4 too: reads may also be UDP super-packets. */
#define OFFLOAD_USO 4

typedef struct {
  int fd;      /* the TUN fd; -1 once closed */
  int wake_fd; /* eventfd that tells the reader to stop */
  int offload; /* OFFLOAD_* bits in effect */
  atomic_int stop;
  int reading; /* reader thread started and not yet joined */
  int adaptive;       /* MODE_ADAPTIVE: the two readers below take turns */
  atomic_int owner;   /* OWNER_LOOP or OWNER_THREAD */
  int go_fd;          /* eventfd: the loop tells the parked reader thread to read; -1 if none */
  int busy;           /* full batches in a row, on the loop */
  uint32_t switches[2]; /* hand-overs to the thread, and back to the loop (JS thread only) */
  pthread_t reader;
  napi_threadsafe_function tsfn;
  /* MODE_POLL: the handle (freed in its close callback), the JS callback and its async context. */
  uv_poll_t *poll;
  napi_ref fn;
  napi_async_context async;
  uint32_t *staging; /* the reader's drain buffer, STAGING_CAP bytes */
  napi_env env;
  int hooked; /* env cleanup hook registered */
} tun_dev;

#define CHECK(env, call)                                            \
  do {                                                              \
    if ((call) != napi_ok) {                                        \
      napi_throw_error((env), NULL, "twill tun: " #call " failed"); \
      return NULL;                                                  \
    }                                                               \
  } while (0)

/* tun.c */
void throw_errno(napi_env env, int err, const char *syscall);
tun_dev *get_dev(napi_env env, napi_value handle);

/* tun_read.c */
napi_value tun_start(napi_env env, napi_callback_info info);
/* readerSwitches(handle) -> [to thread, back to loop] */
napi_value tun_reader_switches(napi_env env, napi_callback_info info);
/* Stops whichever reader runs and waits for it; idempotent. */
void reader_stop(tun_dev *dev);

/* pump_napi.c: the pump's functions on the module's exports */
napi_status pump_register(napi_env env, napi_value exports);

/* tun_write.c */
napi_value tun_write(napi_env env, napi_callback_info info);

#endif
