/*
 * The pump (native/pump/) as part of the twill_tun addon, so that it can take a TUN handle
 * from open(). Loaded by src/kernel/udp-pump.ts.
 *
 *   pumpOpen(address, port, bufferBytes, offloads, ownAddr, ownLen, mtu, tunAddr) -> pump
 *                                  the UDP socket, bound; throws an Error with errno/syscall
 *   pumpStart(pump, tunHandle, onFault(errno, where))   the thread, on that device
 *   pumpStop(pump)                 joins the thread (the device is the caller's again)
 *   pumpSetPeers(pump, Uint32Array [addr, len, publicIP]*) -> Float64Array
 *                                  swaps the table; returns the old one's per-peer counters
 *                                  [packetsIn, bytesIn, packetsOut, bytesOut]* in its order
 *   pumpCounters(pump) -> [stats Float64Array, drops Float64Array, traffic Float64Array, offloads, port]
 *   pumpClose(pump)                stops, closes the socket; the external's finalizer also does
 */
#include "tun.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pump/pump.h"

typedef struct {
  tw_pump *pump;
  napi_threadsafe_function on_fault;
  napi_env env;
  int hooked;
} pump_ref;

static void release_fault_fn(pump_ref *r) {
  if (r->on_fault != NULL) napi_release_threadsafe_function(r->on_fault, napi_tsfn_abort);
  r->on_fault = NULL;
}

static void ref_close(pump_ref *r) {
  if (r->pump != NULL) tw_pump_close(r->pump);
  r->pump = NULL;
  release_fault_fn(r);
  if (r->hooked) napi_remove_env_cleanup_hook(r->env, (void (*)(void *))ref_close, r);
  r->hooked = 0;
}

static void ref_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  ref_close(data);
  free(data);
}

static pump_ref *get_ref(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok || data == NULL || ((pump_ref *)data)->pump == NULL) {
    napi_throw_type_error(env, NULL, "not an open pump");
    return NULL;
  }
  return data;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "twill pump: too few arguments");
    return 0;
  }
  return 1;
}

static napi_value pump_open(napi_env env, napi_callback_info info) {
  napi_value argv[8], out;
  char address[64];
  size_t len;
  uint32_t u[7];
  if (!get_args(env, info, 8, argv)) return NULL;
  struct in_addr addr;
  if (napi_get_value_string_utf8(env, argv[0], address, sizeof address, &len) != napi_ok || inet_pton(AF_INET, address, &addr) != 1) {
    napi_throw_type_error(env, NULL, "address must be an IPv4 literal");
    return NULL;
  }
  for (int i = 0; i < 7; i++) {
    if (napi_get_value_uint32(env, argv[i + 1], &u[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "pumpOpen: expected numbers");
      return NULL;
    }
  }
  int err = 0;
  const char *where = NULL;
  tw_pump *p = tw_pump_open(addr.s_addr, (uint16_t)u[0], (int)u[1], (int)u[2], u[3], u[4], u[5], u[6], &err, &where);
  if (p == NULL) {
    throw_errno(env, err, where);
    return NULL;
  }
  pump_ref *r = calloc(1, sizeof *r);
  if (r == NULL) {
    tw_pump_close(p);
    throw_errno(env, ENOMEM, "malloc");
    return NULL;
  }
  r->pump = p;
  r->env = env;
  /* Environment teardown must stop the thread before the function it reports to goes. */
  if (napi_add_env_cleanup_hook(env, (void (*)(void *))ref_close, r) == napi_ok) r->hooked = 1;
  if (napi_create_external(env, r, ref_finalize, NULL, &out) != napi_ok) {
    ref_finalize(env, r, NULL);
    napi_throw_error(env, NULL, "twill pump: napi_create_external failed");
    return NULL;
  }
  return out;
}

/* Runs on the JS thread: onFault(errno, where). */
static void call_fault(napi_env env, napi_value fn, void *context, void *data) {
  (void)context;
  tw_pump_fault *f = data;
  if (env != NULL && fn != NULL) {
    napi_value argv[2], undefined;
    napi_create_int32(env, f->err, &argv[0]);
    napi_create_string_utf8(env, f->where, NAPI_AUTO_LENGTH, &argv[1]);
    napi_get_undefined(env, &undefined);
    napi_call_function(env, undefined, fn, 2, argv, NULL);
  }
  free(f);
}

/* Runs on the pump thread as it ends by itself. */
static void on_fault(void *ctx, tw_pump_fault f) {
  pump_ref *r = ctx;
  tw_pump_fault *copy = malloc(sizeof *copy);
  if (copy == NULL || r->on_fault == NULL) return free(copy);
  *copy = f;
  if (napi_call_threadsafe_function(r->on_fault, copy, napi_tsfn_nonblocking) != napi_ok) free(copy);
}

static napi_value pump_start(napi_env env, napi_callback_info info) {
  napi_value argv[3], name;
  if (!get_args(env, info, 3, argv)) return NULL;
  pump_ref *r = get_ref(env, argv[0]);
  tun_dev *dev = r == NULL ? NULL : get_dev(env, argv[1]);
  if (dev == NULL) return NULL;
  if (dev->fd < 0 || r->pump->tun_fd >= 0) { /* a closed device, or a thread not yet stopped */
    throw_errno(env, dev->fd < 0 ? EBADF : EBUSY, "pumpStart");
    return NULL;
  }
  release_fault_fn(r);
  CHECK(env, napi_create_string_utf8(env, "twill-pump-fault", NAPI_AUTO_LENGTH, &name));
  CHECK(env, napi_create_threadsafe_function(env, argv[2], NULL, name, 0, 1, NULL, NULL, NULL, call_fault, &r->on_fault));
  napi_unref_threadsafe_function(env, r->on_fault); /* a running pump does not keep Node alive */
  int rc = tw_pump_start(r->pump, dev->fd, dev->offload & OFFLOAD_VNET, on_fault, r);
  if (rc != 0) {
    release_fault_fn(r);
    throw_errno(env, rc, "pthread_create");
  }
  return NULL;
}

static napi_value pump_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  pump_ref *r = get_ref(env, argv[0]);
  if (r != NULL) {
    tw_pump_stop(r->pump);
    release_fault_fn(r);
  }
  return NULL;
}

/* A Float64Array of n numbers copied from vals. */
static napi_value doubles(napi_env env, const double *vals, size_t n) {
  napi_value ab, arr;
  void *data;
  if (napi_create_arraybuffer(env, n * sizeof(double), &data, &ab) != napi_ok) return NULL;
  memcpy(data, vals, n * sizeof(double));
  if (napi_create_typedarray(env, napi_float64_array, n, ab, 0, &arr) != napi_ok) return NULL;
  return arr;
}

/* Per-peer counters of a table, [in packets, in bytes, out packets, out bytes] each. */
static napi_value traffic_of(napi_env env, const tw_peers *peers) {
  size_t n = peers == NULL ? 0 : peers->n;
  double *vals = calloc(n * 4 + 1, sizeof *vals);
  if (vals == NULL) return NULL;
  for (size_t i = 0; i < n; i++) {
    const tw_traffic *t = &peers->traffic[i];
    vals[4 * i] = (double)tw_load(&t->packets_in);
    vals[4 * i + 1] = (double)tw_load(&t->bytes_in);
    vals[4 * i + 2] = (double)tw_load(&t->packets_out);
    vals[4 * i + 3] = (double)tw_load(&t->bytes_out);
  }
  napi_value out = doubles(env, vals, n * 4);
  free(vals);
  return out;
}

static napi_value pump_set_peers(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (!get_args(env, info, 2, argv)) return NULL;
  pump_ref *r = get_ref(env, argv[0]);
  if (r == NULL) return NULL;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint32_array || length % 3 != 0) {
    napi_throw_type_error(env, NULL, "peers must be a Uint32Array of [addr, len, publicIP]*");
    return NULL;
  }
  size_t n = length / 3;
  tw_peer *list = calloc(n == 0 ? 1 : n, sizeof *list);
  if (list == NULL) return throw_errno(env, ENOMEM, "malloc"), NULL;
  const uint32_t *u = data;
  for (size_t i = 0; i < n; i++) list[i] = (tw_peer){.addr = u[3 * i], .len = u[3 * i + 1], .public_ip = u[3 * i + 2]};
  tw_peers *next = tw_peers_build(list, n);
  free(list);
  if (next == NULL) return throw_errno(env, EINVAL, "peer table"), NULL;
  tw_peers *old = tw_pump_set_peers(r->pump, next);
  napi_value out = traffic_of(env, old);
  tw_peers_free(old);
  return out;
}

static napi_value pump_counters(napi_env env, napi_callback_info info) {
  napi_value argv[1], out, v;
  double stats[TW_ST_COUNT], drops[TW_REASON_COUNT];
  if (!get_args(env, info, 1, argv)) return NULL;
  pump_ref *r = get_ref(env, argv[0]);
  if (r == NULL) return NULL;
  for (int i = 0; i < TW_ST_COUNT; i++) stats[i] = (double)tw_pump_stat(r->pump, i);
  for (int i = 0; i < TW_REASON_COUNT; i++) drops[i] = (double)tw_pump_drop(r->pump, i);
  CHECK(env, napi_create_array_with_length(env, 5, &out));
  napi_set_element(env, out, 0, doubles(env, stats, TW_ST_COUNT));
  napi_set_element(env, out, 1, doubles(env, drops, TW_REASON_COUNT));
  napi_set_element(env, out, 2, traffic_of(env, tw_pump_peers(r->pump)));
  napi_create_uint32(env, (uint32_t)tw_pump_offloads(r->pump), &v);
  napi_set_element(env, out, 3, v);
  napi_create_uint32(env, tw_pump_port(r->pump), &v);
  napi_set_element(env, out, 4, v);
  return out;
}

static napi_value pump_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *data = NULL;
  if (!get_args(env, info, 1, argv)) return NULL;
  if (napi_get_value_external(env, argv[0], &data) == napi_ok && data != NULL) ref_close(data);
  return NULL;
}

napi_status pump_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"pumpOpen", NULL, pump_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pumpStart", NULL, pump_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pumpStop", NULL, pump_stop, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pumpSetPeers", NULL, pump_set_peers, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pumpCounters", NULL, pump_counters, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pumpClose", NULL, pump_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
