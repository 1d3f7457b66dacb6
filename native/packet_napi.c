/*
 * The packet functions of native/packet/, exposed to tests (test/unit/udp-native-diff.test.ts)
 * as the `twill_packet` addon. Not loaded by the agent: nothing here is on the data path.
 * Packets are Buffers, patched in place as the C functions patch them; tables and forwarders
 * are externals freed by the garbage collector.
 *
 *   reasonNames() -> string[]                 index = verdict code
 *   checkHeader(buf) -> code                  parse(buf) -> code | [hl, total, ttl, proto, frag, sum, src, dst]
 *   onesSum(buf, start, end) -> number        headerChecksumValid(buf, hl) -> bool
 *   writeHeaderChecksum(buf) -> bool          decrementTtl(buf) -> bool
 *   tableBuild(Uint32Array [addr, len, publicIP]*) -> table | null
 *   tableLookup(table, ip) -> index | -1      tableLookupMany(table, Uint32Array ips, Int32Array out)
 *   tableSize(table) -> number
 *   forwarder(ownAddr, ownLen, mtu) -> fwd    drops(fwd) -> number[] (index = code)
 *   outbound(fwd, table, buf) -> [code, peer] inbound(fwd, table, buf, from) -> code
 *   icmpAllowed(buf) -> bool                  icmpError(buf, type, code, source) -> Buffer | null
 *   icmpFor(reason, buf, source) -> Buffer | null
 *   coalesce(Buffer[] (at most 64)) -> [packets, segmentSizes, superPackets, mergedSegments]
 *   tsoSegment(buf, mss) -> Buffer[] | null    usoSegment(buf, size) -> Buffer[] | null
 */
#include <node_api.h>

#include <stdbool.h>
#include <stdlib.h>

#include "packet/coalesce.h"
#include "packet/packet.h"

#define CHECK(env, call)                                               \
  do {                                                                 \
    if ((call) != napi_ok) {                                           \
      napi_throw_error((env), NULL, "twill packet: " #call " failed"); \
      return NULL;                                                     \
    }                                                                  \
  } while (0)

/* Up to `max` arguments; throws unless at least `want` were given. */
static int args(napi_env env, napi_callback_info info, size_t want, size_t max, napi_value *argv) {
  size_t argc = max;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "twill packet: too few arguments");
    return 0;
  }
  return 1;
}

static int buffer_arg(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  void *p = NULL;
  if (napi_get_buffer_info(env, v, &p, len) != napi_ok) {
    napi_throw_type_error(env, NULL, "twill packet: expected a Buffer");
    return 0;
  }
  *data = p;
  return 1;
}

static int u32_arg(napi_env env, napi_value v, uint32_t *out) {
  if (napi_get_value_uint32(env, v, out) != napi_ok) {
    napi_throw_type_error(env, NULL, "twill packet: expected a number");
    return 0;
  }
  return 1;
}

/* A typed array of the given type: its elements and their count. */
static int typed_arg(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *n) {
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, n, data, &ab, &offset) != napi_ok || type != want) {
    napi_throw_type_error(env, NULL, "twill packet: wrong typed array");
    return 0;
  }
  return 1;
}

/* Type tags: a forwarder passed where a table is expected must throw, not be misread. */
static const napi_type_tag TABLE_TAG = {0x7477696c6c746162ull, 0x6c65000000000001ull};
static const napi_type_tag FORWARDER_TAG = {0x7477696c6c667764ull, 0x0000000000000002ull};

/* Wraps data in an external tagged `tag`; frees it with `fin` (now, if that fails). */
static napi_value make_external(napi_env env, void *data, napi_finalize fin, const napi_type_tag *tag) {
  napi_value out;
  if (napi_create_external(env, data, fin, NULL, &out) != napi_ok) {
    fin(env, data, NULL);
    napi_throw_error(env, NULL, "twill packet: napi_create_external failed");
    return NULL;
  }
  CHECK(env, napi_type_tag_object(env, out, tag));
  return out;
}

static void *external_arg(napi_env env, napi_value v, const napi_type_tag *tag) {
  void *data = NULL;
  bool tagged = false;
  if (napi_check_object_type_tag(env, v, tag, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, v, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, tag == &TABLE_TAG ? "twill packet: expected a table" : "twill packet: expected a forwarder");
    return NULL;
  }
  return data;
}

static napi_value num(napi_env env, double v) {
  napi_value out;
  CHECK(env, napi_create_double(env, v, &out));
  return out;
}

static napi_value boolean(napi_env env, int v) {
  napi_value out;
  CHECK(env, napi_get_boolean(env, v != 0, &out));
  return out;
}

static napi_value array_of(napi_env env, const double *v, size_t n) {
  napi_value arr;
  CHECK(env, napi_create_array_with_length(env, n, &arr));
  for (size_t i = 0; i < n; i++) CHECK(env, napi_set_element(env, arr, (uint32_t)i, num(env, v[i])));
  return arr;
}


/* ---- packet.c, checksum.c ---- */

static napi_value reason_names(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value arr, name;
  CHECK(env, napi_create_array_with_length(env, TW_REASON_COUNT, &arr));
  for (int i = 0; i < TW_REASON_COUNT; i++) {
    CHECK(env, napi_create_string_utf8(env, tw_reason_name(i), NAPI_AUTO_LENGTH, &name));
    CHECK(env, napi_set_element(env, arr, (uint32_t)i, name));
  }
  return arr;
}

static napi_value check_header(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  uint8_t *p;
  size_t len;
  if (!args(env, info, 1, 1, argv) || !buffer_arg(env, argv[0], &p, &len)) return NULL;
  return num(env, tw_check_header(p, len));
}

static napi_value parse(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  uint8_t *p;
  size_t len;
  tw_ipv4 h;
  if (!args(env, info, 1, 1, argv) || !buffer_arg(env, argv[0], &p, &len)) return NULL;
  int code = tw_parse_ipv4(p, len, &h);
  if (code != TW_PASS) return num(env, code);
  const double f[] = {h.header_length, h.total_length, h.ttl, h.protocol, h.fragment_offset, h.checksum, h.src, h.dst};
  return array_of(env, f, sizeof f / sizeof f[0]);
}

static napi_value ones_sum(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  uint8_t *p;
  size_t len;
  uint32_t start, end;
  if (!args(env, info, 3, 3, argv) || !buffer_arg(env, argv[0], &p, &len) || !u32_arg(env, argv[1], &start) ||
      !u32_arg(env, argv[2], &end))
    return NULL;
  return num(env, tw_ones_sum(p, len, start, end));
}

static napi_value checksum_valid(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint8_t *p;
  size_t len;
  uint32_t hl;
  if (!args(env, info, 2, 2, argv) || !buffer_arg(env, argv[0], &p, &len) || !u32_arg(env, argv[1], &hl)) return NULL;
  return boolean(env, tw_header_checksum_valid(p, len, hl));
}

static napi_value write_checksum(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  uint8_t *p;
  size_t len;
  if (!args(env, info, 1, 1, argv) || !buffer_arg(env, argv[0], &p, &len)) return NULL;
  return boolean(env, tw_write_header_checksum(p, len));
}

static napi_value decrement_ttl(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  uint8_t *p;
  size_t len;
  if (!args(env, info, 1, 1, argv) || !buffer_arg(env, argv[0], &p, &len)) return NULL;
  return boolean(env, tw_decrement_ttl(p, len));
}

/* ---- peer_table.c ---- */

static void table_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  tw_table_free(data);
}

static napi_value table_build(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  void *data;
  size_t n;
  if (!args(env, info, 1, 1, argv) || !typed_arg(env, argv[0], napi_uint32_array, &data, &n)) return NULL;
  const uint32_t *w = data;
  size_t peers = n / 3;
  tw_peer *list = malloc((peers > 0 ? peers : 1) * sizeof *list);
  if (list == NULL) {
    napi_throw_error(env, NULL, "twill packet: out of memory");
    return NULL;
  }
  for (size_t i = 0; i < peers; i++) list[i] = (tw_peer){.addr = w[3 * i], .len = w[3 * i + 1], .public_ip = w[3 * i + 2]};
  tw_peer_table *t = tw_table_build(list, peers);
  free(list);
  if (t == NULL) {
    CHECK(env, napi_get_null(env, &out));
    return out;
  }
  return make_external(env, t, table_finalize, &TABLE_TAG);
}

static napi_value table_lookup(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint32_t ip;
  if (!args(env, info, 2, 2, argv)) return NULL;
  tw_peer_table *t = external_arg(env, argv[0], &TABLE_TAG);
  if (t == NULL || !u32_arg(env, argv[1], &ip)) return NULL;
  return num(env, tw_table_lookup(t, ip));
}

static napi_value table_lookup_many(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  void *ips, *out;
  size_t n, m;
  if (!args(env, info, 3, 3, argv)) return NULL;
  tw_peer_table *t = external_arg(env, argv[0], &TABLE_TAG);
  if (t == NULL || !typed_arg(env, argv[1], napi_uint32_array, &ips, &n) ||
      !typed_arg(env, argv[2], napi_int32_array, &out, &m))
    return NULL;
  for (size_t i = 0; i < n && i < m; i++) ((int32_t *)out)[i] = tw_table_lookup(t, ((const uint32_t *)ips)[i]);
  return NULL;
}

static napi_value table_size(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!args(env, info, 1, 1, argv)) return NULL;
  tw_peer_table *t = external_arg(env, argv[0], &TABLE_TAG);
  return t == NULL ? NULL : num(env, (double)tw_table_size(t));
}

/* ---- forward.c ---- */

static void forwarder_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static napi_value forwarder(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  uint32_t addr, len, mtu;
  if (!args(env, info, 3, 3, argv) || !u32_arg(env, argv[0], &addr) || !u32_arg(env, argv[1], &len) ||
      !u32_arg(env, argv[2], &mtu))
    return NULL;
  tw_forwarder *f = malloc(sizeof *f);
  if (f == NULL) {
    napi_throw_error(env, NULL, "twill packet: out of memory");
    return NULL;
  }
  tw_forwarder_init(f, addr, len, mtu);
  return make_external(env, f, forwarder_finalize, &FORWARDER_TAG);
}

static napi_value drops(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  double counts[TW_REASON_COUNT];
  if (!args(env, info, 1, 1, argv)) return NULL;
  tw_forwarder *f = external_arg(env, argv[0], &FORWARDER_TAG);
  if (f == NULL) return NULL;
  for (int i = 0; i < TW_REASON_COUNT; i++) counts[i] = (double)f->drops[i];
  return array_of(env, counts, TW_REASON_COUNT);
}

static napi_value outbound(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  uint8_t *p;
  size_t len;
  int32_t peer;
  if (!args(env, info, 3, 3, argv)) return NULL;
  tw_forwarder *f = external_arg(env, argv[0], &FORWARDER_TAG);
  tw_peer_table *t = f == NULL ? NULL : external_arg(env, argv[1], &TABLE_TAG);
  if (t == NULL || !buffer_arg(env, argv[2], &p, &len)) return NULL;
  int code = tw_outbound(f, t, p, len, &peer);
  const double r[] = {code, peer};
  return array_of(env, r, 2);
}

static napi_value inbound(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  uint8_t *p;
  size_t len;
  uint32_t from;
  if (!args(env, info, 4, 4, argv)) return NULL;
  tw_forwarder *f = external_arg(env, argv[0], &FORWARDER_TAG);
  tw_peer_table *t = f == NULL ? NULL : external_arg(env, argv[1], &TABLE_TAG);
  if (t == NULL || !buffer_arg(env, argv[2], &p, &len) || !u32_arg(env, argv[3], &from)) return NULL;
  return num(env, tw_inbound(f, t, p, len, from));
}

/* ---- icmp.c ---- */

static napi_value icmp_allowed(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  uint8_t *p;
  size_t len;
  if (!args(env, info, 1, 1, argv) || !buffer_arg(env, argv[0], &p, &len)) return NULL;
  return boolean(env, tw_icmp_error_allowed(p, len));
}

/* A copy of out[0, n) as a new Buffer, or null when n is 0. */
static napi_value reply(napi_env env, const uint8_t *out, size_t n) {
  napi_value v;
  if (n == 0) {
    CHECK(env, napi_get_null(env, &v));
    return v;
  }
  CHECK(env, napi_create_buffer_copy(env, n, out, NULL, &v));
  return v;
}

static napi_value icmp_error(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  uint8_t *p, out[TW_ICMP_ERROR_MAX];
  size_t len;
  uint32_t type, code, source;
  if (!args(env, info, 4, 4, argv) || !buffer_arg(env, argv[0], &p, &len) || !u32_arg(env, argv[1], &type) ||
      !u32_arg(env, argv[2], &code) || !u32_arg(env, argv[3], &source))
    return NULL;
  return reply(env, out, tw_icmp_error(p, len, (uint8_t)type, (uint8_t)code, source, out, sizeof out));
}

static napi_value icmp_for(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  uint8_t *p, out[TW_ICMP_ERROR_MAX];
  size_t len;
  uint32_t reason, source;
  if (!args(env, info, 3, 3, argv) || !u32_arg(env, argv[0], &reason) || !buffer_arg(env, argv[1], &p, &len) ||
      !u32_arg(env, argv[2], &source))
    return NULL;
  return reply(env, out, tw_icmp_for((int)reason, p, len, source, out, sizeof out));
}

/* ---- coalesce.c ---- */

/* One run of the batch as a Buffer: the input itself when it merged with nothing. */
static napi_value run_packet(napi_env env, const tw_gro *g, size_t i, napi_value input, uint8_t *scratch, uint32_t *mss) {
  napi_value v;
  size_t n = tw_gro_merge(g, i, scratch, TW_GRO_PACKET_MAX, mss);
  if (*mss == 0) {
    CHECK(env, napi_get_element(env, input, g->runs[i].first, &v));
    return v;
  }
  CHECK(env, napi_create_buffer_copy(env, n, scratch, NULL, &v));
  return v;
}

static napi_value coalesce_batch(napi_env env, const tw_gro *g, napi_value input, uint8_t *scratch) {
  napi_value packets, sizes, out;
  double super_packets = 0, merged_segments = 0;
  CHECK(env, napi_create_array_with_length(env, g->n_runs, &packets));
  CHECK(env, napi_create_array_with_length(env, g->n_runs, &sizes));
  for (size_t i = 0; i < g->n_runs; i++) {
    uint32_t mss;
    napi_value pkt = run_packet(env, g, i, input, scratch, &mss);
    if (pkt == NULL) return NULL;
    CHECK(env, napi_set_element(env, packets, (uint32_t)i, pkt));
    CHECK(env, napi_set_element(env, sizes, (uint32_t)i, num(env, mss)));
    if (mss > 0) {
      super_packets++;
      merged_segments += g->runs[i].parts;
    }
  }
  CHECK(env, napi_create_array_with_length(env, 4, &out));
  CHECK(env, napi_set_element(env, out, 0, packets));
  CHECK(env, napi_set_element(env, out, 1, sizes));
  CHECK(env, napi_set_element(env, out, 2, num(env, super_packets)));
  CHECK(env, napi_set_element(env, out, 3, num(env, merged_segments)));
  return out;
}

static napi_value coalesce(napi_env env, napi_callback_info info) {
  napi_value argv[1], v;
  uint32_t n;
  static tw_gro g; /* the JS thread only */
  if (!args(env, info, 1, 1, argv) || napi_get_array_length(env, argv[0], &n) != napi_ok || n > TW_GRO_BATCH_MAX) {
    napi_throw_type_error(env, NULL, "twill packet: expected an array of at most 64 Buffers");
    return NULL;
  }
  tw_gro_init(&g);
  for (uint32_t i = 0; i < n; i++) {
    uint8_t *p;
    size_t len;
    CHECK(env, napi_get_element(env, argv[0], i, &v));
    if (!buffer_arg(env, v, &p, &len)) return NULL;
    tw_gro_add(&g, p, len);
  }
  uint8_t *scratch = malloc(TW_GRO_PACKET_MAX);
  if (scratch == NULL) {
    napi_throw_error(env, NULL, "twill packet: out of memory");
    return NULL;
  }
  napi_value out = coalesce_batch(env, &g, argv[0], scratch);
  free(scratch);
  return out;
}

/* ---- segment.c ---- */

typedef size_t (*segment_fn)(const uint8_t *, size_t, uint32_t, uint8_t *, size_t, uint32_t *, size_t);

static napi_value segment_with(napi_env env, napi_callback_info info, segment_fn cut) {
  napi_value argv[2], list, seg, out;
  uint8_t *p;
  size_t len;
  uint32_t mss, lens[TW_TSO_SEGMENTS_MAX];
  if (!args(env, info, 2, 2, argv) || !buffer_arg(env, argv[0], &p, &len) || !u32_arg(env, argv[1], &mss)) return NULL;
  size_t cap = len + TW_TSO_SEGMENTS_MAX * 120; /* room for a copy of the headers per segment */
  uint8_t *buf = malloc(cap);
  if (buf == NULL) {
    napi_throw_error(env, NULL, "twill packet: out of memory");
    return NULL;
  }
  size_t n = cut(p, len, mss, buf, cap, lens, TW_TSO_SEGMENTS_MAX);
  if (n == 0) {
    free(buf);
    napi_get_null(env, &out);
    return out;
  }
  napi_create_array_with_length(env, n, &list);
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    void *data;
    if (napi_create_buffer_copy(env, lens[i], buf + at, &data, &seg) != napi_ok) break;
    napi_set_element(env, list, (uint32_t)i, seg);
    at += lens[i];
  }
  free(buf);
  return list;
}

/* tsoSegment(buf, mss) -> Buffer[] | null */
static napi_value tso_segment(napi_env env, napi_callback_info info) { return segment_with(env, info, tw_tso_segment); }
/* usoSegment(buf, size) -> Buffer[] | null */
static napi_value uso_segment(napi_env env, napi_callback_info info) { return segment_with(env, info, tw_uso_segment); }

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
#define FN(name, c) {name, NULL, c, NULL, NULL, NULL, napi_enumerable, NULL}
      FN("reasonNames", reason_names),   FN("checkHeader", check_header),
      FN("parse", parse),                FN("onesSum", ones_sum),
      FN("headerChecksumValid", checksum_valid), FN("writeHeaderChecksum", write_checksum),
      FN("decrementTtl", decrement_ttl), FN("tableBuild", table_build),
      FN("tableLookup", table_lookup),   FN("tableLookupMany", table_lookup_many),
      FN("tableSize", table_size),       FN("forwarder", forwarder),
      FN("drops", drops),                FN("outbound", outbound),
      FN("inbound", inbound),            FN("icmpAllowed", icmp_allowed),
      FN("icmpError", icmp_error),       FN("icmpFor", icmp_for),
      FN("coalesce", coalesce),
      FN("tsoSegment", tso_segment),
      FN("usoSegment", uso_segment),
#undef FN
  };
  CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
