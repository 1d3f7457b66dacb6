/*
 * twill's udp data path in plain C: the packet functions a native pump will run, mirroring
 * the TypeScript reference in src/backend/udp/ (packet.ts, checksum.ts, peer-table.ts,
 * forward.ts, icmp.ts). No Node-API here: native/packet_napi.c exposes them to tests, and
 * fuzz_main.c runs them under sanitizers. Every function takes the buffer's length and reads
 * nothing outside it; none allocates except tw_table_build.
 *   packet.c      IPv4 header check and parse
 *   checksum.c    Internet checksum, TTL decrement with incremental checksum (RFC 1624)
 *   peer_table.c  immutable longest-prefix peer table
 *   forward.c     the forwarding decisions, both directions
 *   icmp.c        ICMP net unreachable / time exceeded
 *   coalesce.c    GRO: TCP segments merged into super-packets (its own header, coalesce.h)
 *   segment.c     TSO and USO: a TCP or UDP super-packet cut into packets
 */
#ifndef TWILL_PACKET_H
#define TWILL_PACKET_H

#include <stddef.h>
#include <stdint.h>

#define TW_IPV4_MIN_HEADER 20
#define TW_PROTO_ICMP 1

/* Verdicts: TW_PASS, or a drop reason. The reasons are DROP_REASONS of
 * src/backend/udp/counters.ts in the same order, shifted by one (tw_reason_name gives the name). */
enum tw_reason {
  TW_PASS = 0,
  TW_TRUNCATED,
  TW_NOT_IPV4,
  TW_BAD_HEADER,
  TW_BAD_CHECKSUM,
  TW_LENGTH_MISMATCH,
  TW_OVERSIZE,
  TW_UNKNOWN_PEER,
  TW_SPOOFED_SOURCE,
  TW_NOT_FOR_US,
  TW_TTL_EXPIRED,
  TW_NO_ROUTE,
  TW_OWN_SUBNET,
  TW_SEND_FAILED,     /* counted by the pump, never returned here */
  TW_TUN_WRITE_FAILED, /* likewise */
  TW_REASON_COUNT
};

/* The reason's name as counters.ts spells it ("pass" for TW_PASS), or NULL when out of range. */
const char *tw_reason_name(int reason);

/* ---- packet.c ---- */

typedef struct {
  uint32_t header_length; /* IHL x 4 */
  uint32_t total_length;
  uint32_t ttl;
  uint32_t protocol;
  uint32_t fragment_offset; /* in 8-byte units; non-zero: not the first fragment */
  uint32_t checksum;
  uint32_t src;
  uint32_t dst;
} tw_ipv4;

/* TW_PASS when pkt holds exactly one well-formed IPv4 packet, else TW_TRUNCATED,
 * TW_NOT_IPV4, TW_BAD_HEADER or TW_LENGTH_MISMATCH (packet.ts checkHeader). */
int tw_check_header(const uint8_t *pkt, size_t len);
/* tw_check_header, and on TW_PASS the fields into *out. */
int tw_parse_ipv4(const uint8_t *pkt, size_t len, tw_ipv4 *out);
/* Big-endian reads; the caller has checked that the bytes are there. */
uint32_t tw_read_be32(const uint8_t *p);
uint16_t tw_read_be16(const uint8_t *p);
void tw_write_be32(uint8_t *p, uint32_t v);
void tw_write_be16(uint8_t *p, uint16_t v);
/* Header length from IHL (meaningful after tw_check_header passed). */
size_t tw_header_length(const uint8_t *pkt);

/* ---- checksum.c ---- */

/* Ones'-complement sum of pkt[start, end) as 16-bit big-endian words, folded to 16 bits;
 * 0 when the range is not inside the buffer. */
uint32_t tw_ones_sum(const uint8_t *buf, size_t len, size_t start, size_t end);
/* The checksum to store in a field covering buf[start, end) (the field holding 0). */
uint16_t tw_internet_checksum(const uint8_t *buf, size_t len, size_t start, size_t end);
/* Recomputes the IPv4 header checksum; 0 (and nothing written) when the IHL does not fit. */
int tw_write_header_checksum(uint8_t *pkt, size_t len);
/* 1 when the header's checksum verifies; 0 also when header_len does not fit. */
int tw_header_checksum_valid(const uint8_t *pkt, size_t len, size_t header_len);
/* Decrements the TTL and patches the checksum incrementally; 0 (packet untouched) when the
 * TTL is <= 1 or the buffer holds no IPv4 header. */
int tw_decrement_ttl(uint8_t *pkt, size_t len);

/* ---- peer_table.c ---- */

typedef struct {
  uint32_t addr;      /* subnet address; host bits are ignored */
  uint32_t len;       /* prefix length, 0..32 */
  uint32_t public_ip; /* where the peer's datagrams go and come from */
} tw_peer;

typedef struct tw_peer_table tw_peer_table;

/* Builds an immutable table from peers[0..n): a later entry for the same subnet replaces an
 * earlier one, as PeerTable.set does. NULL when out of memory or a prefix length is > 32. */
tw_peer_table *tw_table_build(const tw_peer *peers, size_t n);
void tw_table_free(tw_peer_table *t);
/* Index into the build list of the longest prefix containing ip, or -1. */
int32_t tw_table_lookup(const tw_peer_table *t, uint32_t ip);
/* 1 when some peer in the table has this PublicIP. */
int tw_table_has_public_ip(const tw_peer_table *t, uint32_t ip);
/* The peer at a build index returned by tw_table_lookup. */
const tw_peer *tw_table_peer(const tw_peer_table *t, int32_t index);
/* Subnets in the table (replaced entries not counted). */
size_t tw_table_size(const tw_peer_table *t);

/* ---- forward.c ---- */

typedef struct {
  uint32_t own_addr; /* our lease subnet: the only inner destination accepted from peers */
  uint32_t own_mask;
  uint32_t mtu;      /* the TUN's: a larger datagram is dropped as oversize */
  uint64_t drops[TW_REASON_COUNT]; /* counted like TunnelCounters.drops */
} tw_forwarder;

void tw_forwarder_init(tw_forwarder *f, uint32_t own_addr, uint32_t own_len, uint32_t mtu);
/* A packet read from the TUN: TW_PASS with *peer set (TTL decremented), or a drop reason. */
int tw_outbound(tw_forwarder *f, const tw_peer_table *t, uint8_t *pkt, size_t len, int32_t *peer);
/* A datagram from `from`: TW_PASS when accepted (TTL decremented), or a drop reason. */
int tw_inbound(tw_forwarder *f, const tw_peer_table *t, uint8_t *pkt, size_t len, uint32_t from);

/* ---- icmp.c ---- */

#define TW_ICMP_DEST_UNREACHABLE 3
#define TW_ICMP_NET_UNREACHABLE 0
#define TW_ICMP_TIME_EXCEEDED 11
#define TW_ICMP_TTL_EXCEEDED_IN_TRANSIT 0
/* 20 + 8 + a 60-byte header + 8 quoted payload bytes. */
#define TW_ICMP_ERROR_MAX 96

/* May an ICMP error be sent about pkt? 0 also for a packet tw_check_header refuses. */
int tw_icmp_error_allowed(const uint8_t *pkt, size_t len);
/* Writes the ICMP error about `offender` from `source` into out (cap >= TW_ICMP_ERROR_MAX);
 * returns its length, or 0 when none may be sent. */
size_t tw_icmp_error(const uint8_t *offender, size_t len, uint8_t type, uint8_t code, uint32_t source,
                     uint8_t *out, size_t cap);
/* The error answering a drop: TW_NO_ROUTE -> net unreachable, TW_TTL_EXPIRED -> time
 * exceeded; 0 for any other reason. */
size_t tw_icmp_for(int reason, const uint8_t *offender, size_t len, uint32_t source, uint8_t *out, size_t cap);

/* ---- segment.c ---- */

/* More segments than this means a nonsense gso_size (segment.ts TSO_SEGMENTS_MAX). */
#define TW_TSO_SEGMENTS_MAX 128

/* Cuts a TCP/IPv4 super-packet into segments of mss payload bytes, back to back in out, their
 * lengths in lens. Returns the count; 0 when pkt is no whole unfragmented TCP/IPv4 packet, mss
 * is 0, or out (cap bytes) or lens (max entries) is too small. */
size_t tw_tso_segment(const uint8_t *pkt, size_t len, uint32_t mss, uint8_t *out, size_t cap, uint32_t *lens, size_t max);
/* The same for a UDP/IPv4 super-packet (USO): datagrams of `size` payload bytes each, the last
 * shorter; each with its IP id + k, lengths, header checksum and a full UDP checksum. */
size_t tw_uso_segment(const uint8_t *pkt, size_t len, uint32_t size, uint8_t *out, size_t cap, uint32_t *lens, size_t max);

#endif
