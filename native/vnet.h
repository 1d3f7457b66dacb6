/*
 * The virtio_net_hdr that carries a TCP/IPv4 super-packet into a TUN opened with
 * IFF_VNET_HDR: shared by the JS-driven write path (tun_write.c) and the pump (pump/).
 */
#ifndef TWILL_VNET_H
#define TWILL_VNET_H

#include <linux/virtio_net.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Fills h for a TCP/IPv4 super-packet cut at mss; 0 when the packet is too short to be one
 * (the kernel would reject it anyway). The caller left the pseudo-header sum in the TCP
 * checksum field: the kernel completes it from csum_start on. */
static inline int tw_vnet_tcp4(struct virtio_net_hdr *h, const uint8_t *pkt, size_t len, uint32_t mss) {
  memset(h, 0, sizeof *h);
  if (len < 20) return 0;
  size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
  if (ihl < 20 || len < ihl + 20) return 0;
  size_t thl = (size_t)(pkt[ihl + 12] >> 4) * 4;
  if (thl < 20 || len < ihl + thl) return 0;
  h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  h->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
  h->hdr_len = (uint16_t)(ihl + thl); /* native byte order: a legacy virtio header, as tun reads it */
  h->gso_size = (uint16_t)mss;
  h->csum_start = (uint16_t)ihl;
  h->csum_offset = 16; /* offsetof(struct tcphdr, check) */
  return 1;
}

#endif
