/*
 * The read path: start(handle, onBatch, mode) hands batches of packets to JavaScript.
 *
 * MODE_THREAD: a dedicated thread poll()s the (non-blocking) fd, drains up to BATCH_MAX
 * packets per wake-up, copies them into one malloc'd slab and hands the slab to the JS thread
 * through a threadsafe function. MODE_POLL: a uv_poll handle on the JS thread's own loop
 * drains and calls JS at once. MODE_ADAPTIVE (the default in src/kernel/tun.ts): both, taking
 * turns (see maybe_hand_over and hand_back); exactly one of them reads at any time.
 * The slab becomes an external ArrayBuffer, so the per-packet Buffers JS cuts out of it stay
 * valid for as long as anything references them (dgram.send). The slab layout is
 * self-describing (HDR_* in tun.h): JS needs no shared constant. With OFFLOAD_VNET each
 * packet starts with its virtio_net_hdr, which JS skips. A reader failure is delivered as a
 * slab with count 0 and a non-zero errno word.
 */
#include "tun.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void resume_loop(tun_dev *dev);

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
  uint32_t *slab = data;
  if (env == NULL || fn == NULL) {
    free(data);
    return;
  }
  if (slab[HDR_COUNT] == 0 && slab[HDR_ERRNO] == HDR_RESUME_LOOP) {
    free(data);
    resume_loop(context);
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

/* Adaptive mode, loop's turn: waits until the loop hands reading over (0) or close() (-1). */
static int park(tun_dev *dev) {
  struct pollfd fds[2] = {{.fd = dev->wake_fd, .events = POLLIN}, {.fd = dev->go_fd, .events = POLLIN}};
  uint64_t n;
  while (poll(fds, 2, -1) < 0) {
    if (errno != EINTR) return -1;
  }
  if (fds[0].revents) return -1;
  if (read(dev->go_fd, &n, sizeof n) < 0) { /* EAGAIN: another wake-up consumed it */ }
  return 0;
}

/* Adaptive mode, quiet for IDLE_MS: the loop reads again (told through the queue, so that it
 * resumes only after every batch read so far has been delivered). */
static int hand_back(tun_dev *dev) {
  uint32_t *note = malloc(HDR_BYTES);
  if (note == NULL) return 0; /* keep reading here; try again after the next quiet spell */
  atomic_store_explicit(&dev->owner, OWNER_LOOP, memory_order_release);
  note[HDR_COUNT] = 0;
  note[HDR_ERRNO] = HDR_RESUME_LOOP;
  note[HDR_DATA] = HDR_BYTES;
  return hand_over(dev, note);
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
    if (dev->adaptive && atomic_load_explicit(&dev->owner, memory_order_acquire) == OWNER_LOOP) {
      if (park(dev) < 0) break;
      continue;
    }
    int ready = poll(fds, 2, dev->adaptive ? IDLE_MS : -1);
    if (ready < 0) {
      if (errno != EINTR) err = errno;
      continue;
    }
    if (ready == 0) {
      if (hand_back(dev) < 0) return NULL; /* closing */
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

static void maybe_hand_over(tun_dev *dev, uint32_t count);

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
  if (err == 0 && dev->adaptive && dev->reading) maybe_hand_over(dev, count);
}

/* Adaptive mode: a queue that keeps filling whole batches is read on the thread instead. */
static void maybe_hand_over(tun_dev *dev, uint32_t count) {
  uint64_t one = 1;
  dev->busy = count == BATCH_MAX ? dev->busy + 1 : 0;
  if (dev->busy < BUSY_WAKEUPS || dev->poll == NULL) return;
  dev->busy = 0;
  uv_poll_stop(dev->poll);
  atomic_store_explicit(&dev->owner, OWNER_THREAD, memory_order_release);
  if (write(dev->go_fd, &one, sizeof one) < 0) { /* the counter cannot overflow here */ }
  dev->switches[0]++;
}

/* Adaptive mode, on the JS thread: the reader thread went quiet; the loop reads again. */
static void resume_loop(tun_dev *dev) {
  if (dev->poll == NULL || dev->fd < 0) return; /* closing, or the loop's reader failed */
  if (uv_poll_start(dev->poll, UV_READABLE, on_readable) == 0) dev->switches[1]++;
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

/* The reader thread and the threadsafe function it hands batches over with. */
static int thread_start(napi_env env, tun_dev *dev, napi_value fn) {
  napi_value name;
  if (napi_create_string_utf8(env, "twill:tun", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_threadsafe_function(env, fn, NULL, name, QUEUE_MAX, 1, NULL, NULL, dev, deliver, &dev->tsfn) != napi_ok)
    return EINVAL;
  /* The agent's sockets and timers keep the loop alive; an open TUN device must not. */
  napi_unref_threadsafe_function(env, dev->tsfn);
  atomic_store(&dev->stop, 0);
  int rc = pthread_create(&dev->reader, NULL, reader_main, dev);
  if (rc != 0) {
    napi_release_threadsafe_function(dev->tsfn, napi_tsfn_abort);
    return rc;
  }
  dev->reading = 1;
  return 0;
}

/* Adaptive: both readers, the loop's first; the thread parks until the loop hands over. */
static int adaptive_start(napi_env env, tun_dev *dev, napi_value fn) {
  if ((dev->go_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) return errno;
  dev->adaptive = 1;
  atomic_store(&dev->owner, OWNER_LOOP);
  int err = poll_start(env, dev, fn);
  return err != 0 ? err : thread_start(env, dev, fn);
}

napi_value tun_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  uint32_t mode = MODE_THREAD;
  int err;
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
  if (mode == MODE_POLL) err = poll_start(env, dev, argv[1]);
  else if (mode == MODE_ADAPTIVE) err = adaptive_start(env, dev, argv[1]);
  else err = thread_start(env, dev, argv[1]);
  if (err != 0) {
    reader_stop(dev);
    throw_errno(env, err, "start");
  }
  return NULL;
}

napi_value tun_reader_switches(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out, value;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  tun_dev *dev = argc < 1 ? NULL : get_dev(env, argv[0]);
  if (dev == NULL) return NULL;
  CHECK(env, napi_create_array_with_length(env, 2, &out));
  for (uint32_t i = 0; i < 2; i++) {
    CHECK(env, napi_create_uint32(env, dev->switches[i], &value));
    CHECK(env, napi_set_element(env, out, i, value));
  }
  return out;
}

/* Stops whichever reader runs and waits for it; idempotent. Safe from close(), the GC
 * finalizer and the env cleanup hook. */
void reader_stop(tun_dev *dev) {
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
}
