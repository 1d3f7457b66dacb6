/*
 * The yardstick for the udp backend's speed, not part of twill: flannel's udp proxy
 * (backend/udp/proxy_amd64.c) reduced to one peer, built by node-gyp next to the addon and run
 * by `twill bench --cases flannel-udp` in place of the agents.
 *
 *   flannel_udp DEV PORT PEER_IP PEER_SUBNET/LEN
 *
 * As flannel does: one packet per read() and per sendto(), a poll() loop that alternates
 * tun_to_udp and udp_to_tun until both queues are empty, the TTL decremented on both paths.
 * Routing is one prefix (flannel scans a route table), and it answers nothing with ICMP.
 * Socket buffers are 4 MiB, as twill's, so that neither side is measured against drops.
 * The device is created here; the bench gives it its address, MTU and route.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static char buf[65536];
static struct sockaddr_in peer;
static uint32_t route_net, route_mask; /* network byte order */

/* RFC 1624 incremental checksum update, as flannel's decrement_ttl. */
static int decrement_ttl(unsigned char *ip) {
  if (ip[8] <= 1) return 0;
  ip[8]--;
  uint32_t sum = (uint32_t)((ip[10] << 8) | ip[11]) + 0x100;
  sum = (sum & 0xffff) + (sum >> 16);
  ip[10] = (unsigned char)(sum >> 8);
  ip[11] = (unsigned char)sum;
  return 1;
}

static int tun_to_udp(int tun, int sock) {
  ssize_t n = read(tun, buf, sizeof buf);
  if (n < 20) return n >= 0;
  uint32_t dst;
  memcpy(&dst, buf + 16, 4);
  if ((dst & route_mask) == route_net && decrement_ttl((unsigned char *)buf))
    sendto(sock, buf, (size_t)n, 0, (struct sockaddr *)&peer, sizeof peer);
  return 1;
}

static int udp_to_tun(int sock, int tun) {
  ssize_t n = recv(sock, buf, sizeof buf, 0);
  if (n < 20) return n >= 0;
  if (decrement_ttl((unsigned char *)buf) && write(tun, buf, (size_t)n) < 0) { /* dropped, as in flannel */ }
  return 1;
}

static int open_tun(const char *name) {
  struct ifreq ifr;
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -1;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  return ioctl(fd, TUNSETIFF, &ifr) < 0 ? -1 : fd;
}

int main(int argc, char **argv) {
  char subnet[32];
  if (argc != 5 || strlen(argv[4]) >= sizeof subnet) {
    fprintf(stderr, "usage: %s DEV PORT PEER_IP PEER_SUBNET/LEN\n", argv[0]);
    return 2;
  }
  strcpy(subnet, argv[4]);
  char *slash = strchr(subnet, '/');
  int len = slash ? atoi(slash + 1) : -1;
  if (slash) *slash = '\0';
  struct in_addr net;
  peer.sin_family = AF_INET;
  peer.sin_port = htons((uint16_t)atoi(argv[2]));
  if (len < 0 || len > 32 || inet_pton(AF_INET, subnet, &net) != 1 || inet_pton(AF_INET, argv[3], &peer.sin_addr) != 1) {
    fprintf(stderr, "bad peer address or subnet\n");
    return 2;
  }
  route_mask = len == 0 ? 0 : htonl(0xffffffffu << (32 - len));
  route_net = net.s_addr & route_mask;

  int tun = open_tun(argv[1]);
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = peer.sin_port};
  int size = 4 << 20;
  if (tun < 0 || sock < 0 || bind(sock, (struct sockaddr *)&local, sizeof local) < 0) {
    perror("flannel_udp");
    return 1;
  }
  setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  struct pollfd fds[2] = {{.fd = tun, .events = POLLIN}, {.fd = sock, .events = POLLIN}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) continue;
    int activity;
    do activity = tun_to_udp(tun, sock) + udp_to_tun(sock, tun);
    while (activity);
  }
}
