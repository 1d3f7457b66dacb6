/*
 * The write path: write(handle, packets, counters, segmentSizes?) -> how many the kernel took.
 *
 * One write() per packet, the whole batch per call. With OFFLOAD_VNET each packet goes out
 * behind a struct virtio_net_hdr (writev, no copy): all zeros for an ordinary packet, or, when
 * segmentSizes[i] > 0, a TCP/IPv4 super-packet (GRO): gso_size = segmentSizes[i], checksum
 * partial from the TCP header on (the caller left the pseudo-header sum in the field), so the
 * kernel runs one pass of routing, bridging and TCP receive for many segments.
 *
 * counters (a Float64Array of 2) gets += full-queue drops (EAGAIN/ENOBUFS) and += rejects (any
 * other errno, e.g. EINVAL for a packet that is not IP). Neither throws: one bad datagram from
 * the network must not stop the data path.
 */
#include "tun.h"
#include "vnet.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* One packet into the device; 0 on success, else errno. */
static int write_one(tun_dev *dev, void *data, size_t len, uint32_t mss) {
  ssize_t w;
  if (!(dev->offload & OFFLOAD_VNET)) {
    do w = write(dev->fd, data, len);
    while (w < 0 && errno == EINTR);
    return w < 0 ? errno : 0;
  }
  struct virtio_net_hdr h;
  memset(&h, 0, sizeof h);
  if (mss > 0 && !tw_vnet_tcp4(&h, data, len, mss)) return EINVAL;
  struct iovec iov[2] = {{.iov_base = &h, .iov_len = sizeof h}, {.iov_base = data, .iov_len = len}};
  do w = writev(dev->fd, iov, 2);
  while (w < 0 && errno == EINTR);
  return w < 0 ? errno : 0;
}

/* segmentSizes: a Uint32Array (or undefined); entry i > 0 marks packet i as a super-packet. */
static uint32_t *segment_sizes(napi_env env, napi_value value, uint32_t n) {
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, NULL, NULL) != napi_ok) return NULL;
  return type == napi_uint32_array && length >= n ? data : NULL;
}

static void add_counts(napi_env env, napi_value value, double dropped, double rejected) {
  napi_typedarray_type type;
  size_t length;
  void *counters;
  if (napi_get_typedarray_info(env, value, &type, &length, &counters, NULL, NULL) == napi_ok &&
      type == napi_float64_array && length >= 2) {
    ((double *)counters)[0] += dropped;
    ((double *)counters)[1] += rejected;
  }
}

napi_value tun_write(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], item, out;
  uint32_t n = 0, written = 0;
  double dropped = 0, rejected = 0;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  tun_dev *dev = argc < 2 ? NULL : get_dev(env, argv[0]);
  if (dev == NULL) return NULL;
  CHECK(env, napi_get_array_length(env, argv[1], &n));
  const uint32_t *mss = argc >= 4 ? segment_sizes(env, argv[3], n) : NULL;
  for (uint32_t i = 0; i < n && dev->fd >= 0; i++) {
    void *data;
    size_t len;
    CHECK(env, napi_get_element(env, argv[1], i, &item));
    if (napi_get_buffer_info(env, item, &data, &len) != napi_ok) {
      napi_throw_type_error(env, NULL, "packets must be Buffers");
      return NULL;
    }
    int err = write_one(dev, data, len, mss == NULL ? 0 : mss[i]);
    if (err == 0) written++;
    else if (err == EAGAIN || err == ENOBUFS) dropped++;
    else rejected++;
  }
  if (argc >= 3 && (dropped > 0 || rejected > 0)) add_counts(env, argv[2], dropped, rejected);
  CHECK(env, napi_create_uint32(env, written, &out));
  return out;
}
