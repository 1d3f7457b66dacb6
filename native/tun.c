/*
 * twill's TUN addon: only what Node cannot do on its own.
 *
 *   open(name, nsPath|null) -> { handle, name }   /dev/net/tun + TUNSETIFF (IFF_TUN | IFF_NO_PI)
 *   start(handle, onBatch, mode)                   batches -> onBatch(ArrayBuffer); mode 0: reader
 *                                                  thread, 1: uv_poll on the JS thread's loop
 *   write(handle, buffers[]) -> written            one write() per packet, whole batch per call
 *   close(handle)                                  stops the reader, closes the fd (device goes)
 *
 * Read path: a dedicated thread poll()s the (non-blocking) fd, drains up to BATCH_MAX packets
 * per wake-up, copies them into one malloc'd slab and hands the slab to the JS thread through
 * a threadsafe function. Measured, the read() syscalls are about two thirds of the read
 * path's CPU; on a thread of their own they use the second core instead of the JS thread,
 * which also has to send every packet on. The slab becomes an external ArrayBuffer, so the
 * per-packet Buffers JS cuts out of it stay valid for as long as anything references them
 * (dgram.send). The slab layout is self-describing (HDR_* below): JS needs no shared constant.
 *
 * Errors from open() are thrown as Error objects with numeric `errno` (positive) and `syscall`;
 * src/kernel/tun.ts turns them into TwillErrors. A reader failure is delivered as a slab with
 * count 0 and a non-zero errno word.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Packets per wake-up: enough to amortise the hand-off, small enough to keep latency low. */
#define BATCH_MAX 64
/* Largest IPv4 packet: a read needs this much room or the kernel silently truncates. */
#define PKT_MAX 65535
/* Staging area the reader drains into: 64 packets of a 1500 MTU (96 KiB) plus room for one
 * maximal packet; each batch is then copied into a slab of its exact size. */
#define STAGING_CAP (256 * 1024)
/* Batches waiting for JS before the reader blocks; then the kernel's queue fills and drops. */
#define QUEUE_MAX 16

/* Slab header, in uint32 words: count, errno, byte offset of the data, then BATCH_MAX lengths. */
#define HDR_COUNT 0
#define HDR_ERRNO 1
#define HDR_DATA 2
#define HDR_LENS 3
#define HDR_BYTES (4 * (HDR_LENS + BATCH_MAX))

/* Read modes: a reader thread handing batches over, or a uv_poll handle on the JS thread's loop. */
#define MODE_THREAD 0
#define MODE_POLL 1

typedef struct {
  int fd;      /* the TUN fd; -1 once closed */
  int wake_fd; /* eventfd that tells the reader to stop */
  atomic_int stop;
  int reading; /* reader thread started and not yet joined */
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

#define CHECK(env, call)                                          \
  do {                                                            \
    if ((call) != napi_ok) {                                      \
      napi_throw_error((env), NULL, "twill tun: " #call " failed"); \
      return NULL;                                                \
    }                                                             \
  } while (0)

static void throw_errno(napi_env env, int err, const char *syscall) {
  char text[192];
  napi_value msg, error, value;
  snprintf(text, sizeof text, "%s: %s", syscall, strerror(err));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  napi_create_int32(env, err, &value);
  napi_set_named_property(env, error, "errno", value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "syscall", value);
  napi_throw(env, error);
}

/* ---- open ---------------------------------------------------------------------------- */

typedef struct {
  const char *ns_path; /* NULL: the calling thread's namespace */
  char name[IFNAMSIZ];
  int fd;
  int err;
  const char *syscall;
} open_req;

static void open_tun(open_req *r) {
  struct ifreq ifr;
  /* The namespace is fixed when the file is opened (the tun socket takes the opener's
   * netns), so setns() must come before this open. O_CLOEXEC: a spawned `ip` must not
   * inherit the fd, or the device would outlive close(). */
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    r->err = errno;
    r->syscall = "open /dev/net/tun";
    return;
  }
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  memcpy(ifr.ifr_name, r->name, IFNAMSIZ);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    r->err = errno;
    r->syscall = "ioctl TUNSETIFF";
    close(fd);
    return;
  }
  memcpy(r->name, ifr.ifr_name, IFNAMSIZ); /* the kernel expands patterns like tun%d */
  r->name[IFNAMSIZ - 1] = '\0';
  r->fd = fd;
}

/* Runs on a short-lived thread: setns() changes only this thread's namespace, so the Node
 * process (and libuv's threadpool) never leaves its own. */
static void *open_in_netns(void *arg) {
  open_req *r = arg;
  int ns = open(r->ns_path, O_RDONLY | O_CLOEXEC);
  if (ns < 0) {
    r->err = errno;
    r->syscall = "open netns";
    return NULL;
  }
  if (setns(ns, CLONE_NEWNET) < 0) {
    r->err = errno;
    r->syscall = "setns";
    close(ns);
    return NULL;
  }
  close(ns);
  open_tun(r);
  return NULL;
}

static void dev_close(tun_dev *dev);

static void env_cleanup(void *arg) {
  tun_dev *dev = arg;
  dev->hooked = 0;
  dev_close(dev);
}

static void dev_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  dev_close(data);
  free(data);
}

static napi_value tun_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result, value;
  napi_valuetype ns_type;
  char ns_path[4096];
  size_t len;
  open_req req = {.ns_path = NULL, .fd = -1, .err = 0, .syscall = NULL};

  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "open(name, nsPath) expects two arguments");
    return NULL;
  }
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "name must be a string");
    return NULL;
  }
  if (len >= IFNAMSIZ) { /* the copy below would silently truncate it */
    throw_errno(env, EINVAL, "name");
    return NULL;
  }
  memset(req.name, 0, sizeof req.name);
  CHECK(env, napi_get_value_string_utf8(env, argv[0], req.name, sizeof req.name, &len));
  CHECK(env, napi_typeof(env, argv[1], &ns_type));
  if (ns_type == napi_string) {
    if (napi_get_value_string_utf8(env, argv[1], ns_path, sizeof ns_path, &len) != napi_ok ||
        len >= sizeof ns_path - 1) {
      throw_errno(env, ENAMETOOLONG, "open netns");
      return NULL;
    }
    req.ns_path = ns_path;
    pthread_t t;
    int rc = pthread_create(&t, NULL, open_in_netns, &req);
    if (rc != 0) {
      throw_errno(env, rc, "pthread_create");
      return NULL;
    }
    pthread_join(t, NULL);
  } else {
    open_tun(&req);
  }
  if (req.fd < 0) {
    throw_errno(env, req.err, req.syscall);
    return NULL;
  }

  tun_dev *dev = calloc(1, sizeof *dev);
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (dev == NULL || wake < 0) {
    int err = dev == NULL ? ENOMEM : errno;
    free(dev);
    if (wake >= 0) close(wake);
    close(req.fd);
    throw_errno(env, err, "eventfd");
    return NULL;
  }
  dev->fd = req.fd;
  dev->wake_fd = wake;
  dev->env = env;
  /* Environment teardown (process exit, worker exit) must stop the reader before the
   * threadsafe function it calls into is freed. */
  if (napi_add_env_cleanup_hook(env, env_cleanup, dev) == napi_ok) dev->hooked = 1;

  CHECK(env, napi_create_object(env, &result));
  if (napi_create_external(env, dev, dev_finalize, NULL, &value) != napi_ok) {
    dev_finalize(env, dev, NULL);
    napi_throw_error(env, NULL, "twill tun: napi_create_external failed");
    return NULL;
  }
  CHECK(env, napi_set_named_property(env, result, "handle", value));
  CHECK(env, napi_create_string_utf8(env, req.name, NAPI_AUTO_LENGTH, &value));
  CHECK(env, napi_set_named_property(env, result, "name", value));
  return result;
}

/* ---- read path ----------------------------------------------------------------------- */

static void free_slab(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

/* Wraps a slab (ownership passes to the ArrayBuffer); NULL if that failed (slab freed). */
static napi_value slab_value(napi_env env, uint32_t *slab) {
  napi_value ab;
  size_t bytes = HDR_BYTES;
  void *copy;
  for (uint32_t i = 0; i < slab[HDR_COUNT]; i++) bytes += slab[HDR_LENS + i];
  if (napi_create_external_arraybuffer(env, slab, bytes, free_slab, NULL, &ab) != napi_ok) {
    /* Runtimes that forbid external buffers (V8 sandbox): pay one copy instead. */
    if (napi_create_arraybuffer(env, bytes, &copy, &ab) != napi_ok) {
      free(slab);
      return NULL;
    }
    memcpy(copy, slab, bytes);
    free(slab);
  }
  return ab;
}

/* Runs on the JS thread for each slab; env is NULL when the function is being torn down
 * and the queued slab can only be freed. */
static void deliver(napi_env env, napi_value fn, void *context, void *data) {
  napi_value ab, undefined;
  (void)context;
  if (env == NULL || fn == NULL) {
    free(data);
    return;
  }
  if ((ab = slab_value(env, data)) == NULL) return;
  napi_get_undefined(env, &undefined);
  napi_call_function(env, undefined, fn, 1, &ab, NULL);
}

static int hand_over(tun_dev *dev, uint32_t *slab) {
  if (napi_call_threadsafe_function(dev->tsfn, slab, napi_tsfn_blocking) != napi_ok) {
    free(slab); /* closing: nobody will take it */
    return -1;
  }
  return 0;
}

/* A slab of exactly the bytes read: a small malloc from the reader's arena. Reading straight
 * into a worst-case-sized slab instead would make every slab an mmap() and every free() in
 * the JS thread a munmap() with a TLB shootdown; one memcpy per batch is far cheaper. */
static uint32_t *slab_of(const uint32_t *staging, size_t used) {
  uint32_t *slab = malloc(used);
  if (slab != NULL) memcpy(slab, staging, used);
  return slab;
}

/* Drains up to BATCH_MAX packets into the staging buffer; returns the bytes used (header
 * included) and sets *err on a failure other than "nothing more to read". */
static size_t drain(tun_dev *dev, uint32_t *count, int *err) {
  uint32_t *staging = dev->staging;
  size_t used = HDR_BYTES;
  *count = 0;
  while (*count < BATCH_MAX && STAGING_CAP - used >= PKT_MAX) {
    ssize_t n = read(dev->fd, (char *)staging + used, STAGING_CAP - used);
    if (n > 0) {
      staging[HDR_LENS + (*count)++] = (uint32_t)n;
      used += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      if (n < 0 && errno != EAGAIN) *err = errno;
      break;
    }
  }
  return used;
}

static void *reader_main(void *arg) {
  tun_dev *dev = arg;
  uint32_t *staging = dev->staging;
  struct pollfd fds[2] = {{.fd = dev->fd, .events = POLLIN}, {.fd = dev->wake_fd, .events = POLLIN}};
  sigset_t all;
  int err = 0;
  /* Signals belong to Node's own threads. */
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);

  while (err == 0 && !atomic_load_explicit(&dev->stop, memory_order_acquire)) {
    uint32_t count = 0;
    if (poll(fds, 2, -1) < 0) {
      if (errno != EINTR) err = errno;
      continue;
    }
    if (fds[1].revents) break;
    size_t used = drain(dev, &count, &err);
    /* A detached device (ip link del) polls as POLLERR yet reads EAGAIN: do not spin. */
    if (count == 0 && err == 0 && (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL))) err = EBADFD;
    if (count > 0) {
      staging[HDR_COUNT] = count;
      staging[HDR_ERRNO] = 0;
      uint32_t *slab = slab_of(staging, used);
      if (slab == NULL) err = ENOMEM;
      else if (hand_over(dev, slab) < 0) return NULL; /* closing */
    }
  }
  if (err != 0) { /* tell JS the data path stopped; close() still joins us */
    staging[HDR_COUNT] = 0;
    staging[HDR_ERRNO] = (uint32_t)err;
    uint32_t *note = slab_of(staging, HDR_BYTES);
    if (note != NULL) hand_over(dev, note);
  }
  return NULL;
}

/* ---- read path, MODE_POLL ---------------------------------------------------------------
 * The fd is watched by a uv_poll handle on the JS thread's own loop: a readable event drains
 * up to BATCH_MAX packets and calls JS at once. One wake-up per hop instead of two (reader
 * thread, then the JS thread through the threadsafe function's uv_async), no cross-thread
 * hand-off, no queue. Level-triggered: a fuller queue is read on the next loop turn, after
 * the socket and timers had theirs. */

static void poll_closed(uv_handle_t *handle) {
  free(handle);
}

static void call_js(tun_dev *dev, uint32_t *slab) {
  napi_env env = dev->env;
  napi_handle_scope scope;
  napi_value fn, global, ab, exc;
  if (napi_open_handle_scope(env, &scope) != napi_ok) {
    free(slab);
    return;
  }
  if ((ab = slab_value(env, slab)) != NULL && napi_get_reference_value(env, dev->fn, &fn) == napi_ok && fn != NULL &&
      napi_get_global(env, &global) == napi_ok) {
    /* make_callback, not call_function: process.nextTick and microtasks run afterwards, as
     * for any I/O callback. An exception becomes an uncaught exception (tun.ts catches first). */
    if (napi_make_callback(env, dev->async, global, fn, 1, &ab, NULL) == napi_pending_exception &&
        napi_get_and_clear_last_exception(env, &exc) == napi_ok)
      napi_fatal_exception(env, exc);
  }
  napi_close_handle_scope(env, scope);
}

static void poll_stop(tun_dev *dev) {
  if (dev->poll == NULL) return;
  uv_poll_stop(dev->poll);
  uv_close((uv_handle_t *)dev->poll, poll_closed);
  dev->poll = NULL;
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  tun_dev *dev = handle->data;
  uint32_t *staging = dev->staging;
  uint32_t count = 0;
  int err = 0;
  size_t used = HDR_BYTES;
  (void)events;
  /* libuv reports POLLERR as UV_EBADF: a detached device (ip link del). */
  if (status < 0) err = status == UV_EBADF ? EBADFD : -status;
  else used = drain(dev, &count, &err);
  staging[HDR_COUNT] = count;
  staging[HDR_ERRNO] = (uint32_t)err;
  if (count == 0 && err == 0) return; /* spurious wake-up */
  if (err != 0) poll_stop(dev);        /* tell JS once, then stay quiet; close() still cleans up */
  uint32_t *slab = slab_of(staging, count > 0 ? used : HDR_BYTES);
  if (slab != NULL) call_js(dev, slab);
  if (count > 0 && err != 0 && dev->fd >= 0) { /* packets and then an error: report it too */
    staging[HDR_COUNT] = 0;
    if ((slab = slab_of(staging, HDR_BYTES)) != NULL) call_js(dev, slab);
  }
}

static int poll_start(napi_env env, tun_dev *dev, napi_value fn) {
  uv_loop_t *loop;
  napi_value name;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || napi_create_reference(env, fn, 1, &dev->fn) != napi_ok) return EINVAL;
  if (napi_create_string_utf8(env, "twill:tun", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &dev->async) != napi_ok) return EINVAL;
  if ((dev->poll = malloc(sizeof *dev->poll)) == NULL) return ENOMEM;
  int rc = uv_poll_init(loop, dev->poll, dev->fd);
  if (rc == 0) {
    dev->poll->data = dev;
    rc = uv_poll_start(dev->poll, UV_READABLE, on_readable);
    /* The agent's sockets and timers keep the loop alive; an open TUN device must not. */
    uv_unref((uv_handle_t *)dev->poll);
    if (rc != 0) poll_stop(dev);
  } else {
    free(dev->poll);
    dev->poll = NULL;
  }
  return -rc;
}

static void poll_release(tun_dev *dev) {
  poll_stop(dev);
  if (dev->fn != NULL) napi_delete_reference(dev->env, dev->fn);
  if (dev->async != NULL) napi_async_destroy(dev->env, dev->async);
  dev->fn = NULL;
  dev->async = NULL;
}

static tun_dev *get_dev(napi_env env, napi_value handle) {
  void *data = NULL;
  if (napi_get_value_external(env, handle, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "not a tun handle");
    return NULL;
  }
  return data;
}

static napi_value tun_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], name;
  uint32_t mode = MODE_THREAD;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  tun_dev *dev = argc < 2 ? NULL : get_dev(env, argv[0]);
  if (dev == NULL) return NULL;
  if (argc >= 3 && napi_get_value_uint32(env, argv[2], &mode) != napi_ok) mode = MODE_THREAD;
  if (dev->fd < 0 || dev->reading || dev->fn != NULL) {
    throw_errno(env, dev->fd < 0 ? EBADF : EALREADY, "start");
    return NULL;
  }
  if (dev->staging == NULL && (dev->staging = malloc(STAGING_CAP)) == NULL) {
    throw_errno(env, ENOMEM, "start");
    return NULL;
  }
  dev->staging[HDR_DATA] = HDR_BYTES;
  if (mode == MODE_POLL) {
    int err = poll_start(env, dev, argv[1]);
    if (err != 0) {
      poll_release(dev);
      throw_errno(env, err, "start");
    }
    return NULL;
  }
  CHECK(env, napi_create_string_utf8(env, "twill:tun", NAPI_AUTO_LENGTH, &name));
  CHECK(env, napi_create_threadsafe_function(env, argv[1], NULL, name, QUEUE_MAX, 1, NULL, NULL,
                                             NULL, deliver, &dev->tsfn));
  /* The agent's sockets and timers keep the loop alive; an open TUN device must not. */
  napi_unref_threadsafe_function(env, dev->tsfn);
  atomic_store(&dev->stop, 0);
  int rc = pthread_create(&dev->reader, NULL, reader_main, dev);
  if (rc != 0) {
    napi_release_threadsafe_function(dev->tsfn, napi_tsfn_abort);
    throw_errno(env, rc, "pthread_create");
    return NULL;
  }
  dev->reading = 1;
  return NULL;
}

/* Idempotent; safe from close(), the GC finalizer and the env cleanup hook. */
static void dev_close(tun_dev *dev) {
  if (dev->reading) {
    uint64_t one = 1;
    atomic_store_explicit(&dev->stop, 1, memory_order_release);
    if (write(dev->wake_fd, &one, sizeof one) < 0) { /* the counter cannot overflow here */ }
    /* Abort wakes a reader blocked on a full queue. The function is freed only later, on
     * the loop, so the reader may still touch it until the join below. */
    napi_release_threadsafe_function(dev->tsfn, napi_tsfn_abort);
    pthread_join(dev->reader, NULL);
    dev->reading = 0;
  }
  poll_release(dev);
  free(dev->staging);
  dev->staging = NULL;
  if (dev->hooked) {
    napi_remove_env_cleanup_hook(dev->env, env_cleanup, dev);
    dev->hooked = 0;
  }
  if (dev->fd >= 0) {
    close(dev->fd); /* last reference: the kernel removes the device */
    close(dev->wake_fd);
    dev->fd = -1;
    dev->wake_fd = -1;
  }
}

static napi_value tun_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  tun_dev *dev = argc < 1 ? NULL : get_dev(env, argv[0]);
  if (dev != NULL) dev_close(dev);
  return NULL;
}

/* ---- write path ---------------------------------------------------------------------- */

/* write(handle, packets, counters): returns how many packets the kernel took. counters
 * (a Float64Array of 2) gets += full-queue drops (EAGAIN/ENOBUFS) and += rejects (any other
 * errno, e.g. EINVAL for a packet that is not IP). Neither throws: one bad datagram from
 * the network must not stop the data path. */
static napi_value tun_write(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], item, out;
  uint32_t n = 0, written = 0;
  double dropped = 0, rejected = 0;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  tun_dev *dev = argc < 2 ? NULL : get_dev(env, argv[0]);
  if (dev == NULL) return NULL;
  CHECK(env, napi_get_array_length(env, argv[1], &n));
  for (uint32_t i = 0; i < n && dev->fd >= 0; i++) {
    void *data;
    size_t len;
    ssize_t w;
    CHECK(env, napi_get_element(env, argv[1], i, &item));
    if (napi_get_buffer_info(env, item, &data, &len) != napi_ok) {
      napi_throw_type_error(env, NULL, "packets must be Buffers");
      return NULL;
    }
    do w = write(dev->fd, data, len);
    while (w < 0 && errno == EINTR);
    if (w >= 0) written++;
    else if (errno == EAGAIN || errno == ENOBUFS) dropped++;
    else rejected++;
  }
  if (argc >= 3 && (dropped > 0 || rejected > 0)) {
    napi_typedarray_type type;
    size_t length;
    void *counters;
    if (napi_get_typedarray_info(env, argv[2], &type, &length, &counters, NULL, NULL) == napi_ok &&
        type == napi_float64_array && length >= 2) {
      ((double *)counters)[0] += dropped;
      ((double *)counters)[1] += rejected;
    }
  }
  CHECK(env, napi_create_uint32(env, written, &out));
  return out;
}

/* ---- module -------------------------------------------------------------------------- */

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, tun_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"start", NULL, tun_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"write", NULL, tun_write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, tun_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
