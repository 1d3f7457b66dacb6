/*
 * twill's TUN addon: only what Node cannot do on its own.
 *
 *   open(name, nsPath|null, offload) -> { handle, name, offload }
 *                                  /dev/net/tun + TUNSETIFF (IFF_TUN | IFF_NO_PI, and
 *                                  IFF_VNET_HDR when asked: OFFLOAD_VNET in tun.h; then
 *                                  TUNSETOFFLOAD for OFFLOAD_TSO); offload: the bits in effect
 *   start(handle, onBatch, mode)   batches -> onBatch(ArrayBuffer)            (tun_read.c)
 *   write(handle, buffers[], counters, segmentSizes?) -> written             (tun_write.c)
 *   close(handle)                  stops the reader, closes the fd (the device goes)
 *   pump*                          the udp packet pump on a device (pump_napi.c, pump/)
 *
 * Errors from open() are thrown as Error objects with numeric `errno` (positive) and `syscall`;
 * src/kernel/tun.ts turns them into TwillErrors.
 */
#include "tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20 /* linux/if_tun.h of Linux 6.2 on */
#define TUN_F_USO6 0x40
#endif

void throw_errno(napi_env env, int err, const char *syscall) {
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
  int offload;         /* OFFLOAD_* bits asked for */
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
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (r->offload & OFFLOAD_VNET ? IFF_VNET_HDR : 0);
  memcpy(ifr.ifr_name, r->name, IFNAMSIZ);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    r->err = errno;
    r->syscall = "ioctl TUNSETIFF";
    close(fd);
    return;
  }
  /* USO (Linux 6.2 on) where the kernel has it: a pod's UDP_SEGMENT sends stay whole to here.
   * The kernel takes UDP segmentation only with both USO4 and USO6 (only IPv4 is routed here). */
  if ((r->offload & OFFLOAD_TSO) && ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_USO4 | TUN_F_USO6) < 0) {
    r->offload &= ~OFFLOAD_USO;
    if (ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4) < 0) r->offload &= ~OFFLOAD_TSO;
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
  size_t argc = 3;
  napi_value argv[3], result, value;
  napi_valuetype ns_type;
  char ns_path[4096];
  size_t len;
  uint32_t offload = 0;
  open_req req = {.ns_path = NULL, .offload = 0, .fd = -1, .err = 0, .syscall = NULL};

  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "open(name, nsPath, offload) expects two or three arguments");
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
  if (argc >= 3 && napi_get_value_uint32(env, argv[2], &offload) == napi_ok) req.offload = (int)(offload & OFFLOAD_VNET ? offload & (OFFLOAD_VNET | OFFLOAD_TSO) : 0);
  if (req.offload & OFFLOAD_TSO) req.offload |= OFFLOAD_USO; /* asked for with TSO; dropped if refused */
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
  dev->go_fd = -1;
  dev->offload = req.offload;
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
  CHECK(env, napi_create_uint32(env, (uint32_t)req.offload, &value));
  CHECK(env, napi_set_named_property(env, result, "offload", value));
  return result;
}

tun_dev *get_dev(napi_env env, napi_value handle) {
  void *data = NULL;
  if (napi_get_value_external(env, handle, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "not a tun handle");
    return NULL;
  }
  return data;
}

/* Idempotent; safe from close(), the GC finalizer and the env cleanup hook. */
static void dev_close(tun_dev *dev) {
  reader_stop(dev);
  free(dev->staging);
  dev->staging = NULL;
  if (dev->hooked) {
    napi_remove_env_cleanup_hook(dev->env, env_cleanup, dev);
    dev->hooked = 0;
  }
  if (dev->fd >= 0) {
    close(dev->fd); /* last reference: the kernel removes the device */
    close(dev->wake_fd);
    if (dev->go_fd >= 0) close(dev->go_fd);
    dev->go_fd = -1;
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

/* ---- module -------------------------------------------------------------------------- */

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, tun_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"start", NULL, tun_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"write", NULL, tun_write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, tun_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readerSwitches", NULL, tun_reader_switches, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  CHECK(env, pump_register(env, exports));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
