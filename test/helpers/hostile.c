/*
 * A hostile program for the confinement tests (test/integration/pod-confine.test.ts),
 * built static by the tests and shipped in a test image. Each mode tries one attack and
 * prints what happened on one line; the tests decide what must have happened.
 *
 *   hostile handle PATH                      (on the host) print PATH's file handle: TYPE HEX
 *   hostile open MOUNTFILE TYPE HEX          open_by_handle_at ("shocker"): print the file or the errno
 *   hostile mknod PATH MAJOR MINOR           mknod a block device: "mknod ok" or the errno
 *   hostile forks N                          fork up to N sleeping children: "forked K errno E"
 *   hostile probe IF MAC SRCIP tcp|udp PORT  raw IPv4 packet to 127.0.0.1:PORT out of IF to MAC;
 *                                            tcp: "answer" on a SYN-ACK/RST from 127.0.0.1:PORT, else "no answer"
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int errno_out(const char *what) {
  printf("%s: %s\n", what, strerrorname_np(errno) ? strerrorname_np(errno) : strerror(errno));
  return 1;
}

static int do_handle(const char *p) {
  struct file_handle *h = malloc(sizeof(*h) + MAX_HANDLE_SZ);
  int mount_id;
  h->handle_bytes = MAX_HANDLE_SZ;
  if (name_to_handle_at(AT_FDCWD, p, h, &mount_id, 0) < 0) return errno_out("name_to_handle_at");
  printf("%d ", h->handle_type);
  for (unsigned i = 0; i < h->handle_bytes; i++) printf("%02x", h->f_handle[i]);
  printf("\n");
  return 0;
}

static int do_open(const char *mountfile, const char *type, const char *hex) {
  size_t n = strlen(hex) / 2;
  struct file_handle *h = malloc(sizeof(*h) + n);
  h->handle_bytes = n;
  h->handle_type = atoi(type);
  for (size_t i = 0; i < n; i++) sscanf(hex + 2 * i, "%2hhx", &h->f_handle[i]);
  int mfd = open(mountfile, O_RDONLY);
  if (mfd < 0) return errno_out("open");
  int fd = open_by_handle_at(mfd, h, O_RDONLY);
  if (fd < 0) return errno_out("open_by_handle_at");
  char buf[256];
  ssize_t r = read(fd, buf, sizeof(buf) - 1);
  buf[r > 0 ? r : 0] = 0;
  printf("read: %s\n", buf);
  return 0;
}

static int do_mknod(const char *p, const char *maj, const char *min) {
  if (mknod(p, S_IFBLK | 0600, makedev(atoi(maj), atoi(min))) < 0) return errno_out("mknod");
  printf("mknod ok\n");
  unlink(p);
  return 0;
}

/* Children block on a pipe until the parent closes it, so the loop ends cleanly. */
static int do_forks(const char *count) {
  int n = atoi(count), k = 0, p[2], err = 0;
  if (pipe(p) < 0) return errno_out("pipe");
  for (; k < n; k++) {
    pid_t pid = fork();
    if (pid == 0) { char c; close(p[1]); (void)!read(p[0], &c, 1); _exit(0); }
    if (pid < 0) { err = errno; break; }
  }
  close(p[1]);
  while (wait(NULL) > 0) {}
  printf("forked %d errno %s\n", k, err ? strerrorname_np(err) : "none");
  return 0;
}

static unsigned short csum(const void *data, size_t len, unsigned long sum) {
  const unsigned short *w = data;
  for (; len > 1; len -= 2) sum += *w++;
  if (len) sum += *(const unsigned char *)w;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (unsigned short)~sum;
}

static int do_probe(const char *ifname, const char *mac, const char *src, const char *proto, const char *port) {
  int tcp = strcmp(proto, "tcp") == 0;
  int s = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
  if (s < 0) return errno_out("socket");
  struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP), .sll_ifindex = if_nametoindex(ifname), .sll_halen = 6 };
  sscanf(mac, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &to.sll_addr[0], &to.sll_addr[1], &to.sll_addr[2], &to.sll_addr[3], &to.sll_addr[4], &to.sll_addr[5]);
  unsigned char pkt[128] = {0};
  struct iphdr *ip = (struct iphdr *)pkt;
  size_t l4 = tcp ? sizeof(struct tcphdr) : sizeof(struct udphdr) + 6;
  ip->version = 4; ip->ihl = 5; ip->ttl = 64; ip->id = htons(4242);
  ip->protocol = tcp ? IPPROTO_TCP : IPPROTO_UDP;
  ip->tot_len = htons(sizeof(*ip) + l4);
  inet_pton(AF_INET, src, &ip->saddr);
  inet_pton(AF_INET, "127.0.0.1", &ip->daddr);
  ip->check = csum(ip, sizeof(*ip), 0);
  unsigned short sport = 40000 + (getpid() % 20000), dport = atoi(port);
  struct { unsigned int s, d; unsigned char z, p; unsigned short len; } pseudo = { ip->saddr, ip->daddr, 0, ip->protocol, htons(l4) };
  unsigned char *l4p = pkt + sizeof(*ip);
  if (tcp) {
    struct tcphdr *t = (struct tcphdr *)l4p;
    t->source = htons(sport); t->dest = htons(dport); t->seq = htonl(12345); t->doff = 5; t->syn = 1; t->window = htons(1024);
  } else {
    struct udphdr *u = (struct udphdr *)l4p;
    u->source = htons(sport); u->dest = htons(dport); u->len = htons(l4);
    memcpy(l4p + sizeof(*u), "probe\n", 6);
  }
  unsigned char sumbuf[sizeof(pseudo) + 64];
  memcpy(sumbuf, &pseudo, sizeof(pseudo));
  memcpy(sumbuf + sizeof(pseudo), l4p, l4);
  unsigned short c = csum(sumbuf, sizeof(pseudo) + l4, 0);
  if (tcp) ((struct tcphdr *)l4p)->check = c; else ((struct udphdr *)l4p)->check = c ? c : 0xffff;
  for (int i = 0; i < 3; i++) {
    if (sendto(s, pkt, sizeof(*ip) + l4, 0, (struct sockaddr *)&to, sizeof(to)) < 0) return errno_out("sendto");
    usleep(100000);
  }
  if (!tcp) { printf("sent\n"); return 0; }
  /* Wait up to 2 s for a segment from 127.0.0.1:PORT to our source port. */
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    long left = 2000 - ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
    if (left <= 0) break;
    struct pollfd pfd = { .fd = s, .events = POLLIN };
    if (poll(&pfd, 1, (int)left) <= 0) continue;
    unsigned char buf[2048];
    ssize_t r = recv(s, buf, sizeof(buf), 0);
    if (r < (ssize_t)(sizeof(struct iphdr) + sizeof(struct tcphdr))) continue;
    struct iphdr *rip = (struct iphdr *)buf;
    struct tcphdr *rt = (struct tcphdr *)(buf + rip->ihl * 4);
    if (rip->protocol == IPPROTO_TCP && rip->saddr == htonl(INADDR_LOOPBACK) && ntohs(rt->source) == dport && ntohs(rt->dest) == sport) {
      printf("answer %s\n", rt->syn && rt->ack ? "syn-ack" : rt->rst ? "rst" : "other");
      return 0;
    }
  }
  printf("no answer\n");
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc == 3 && !strcmp(argv[1], "handle")) return do_handle(argv[2]);
  if (argc == 5 && !strcmp(argv[1], "open")) return do_open(argv[2], argv[3], argv[4]);
  if (argc == 5 && !strcmp(argv[1], "mknod")) return do_mknod(argv[2], argv[3], argv[4]);
  if (argc == 3 && !strcmp(argv[1], "forks")) return do_forks(argv[2]);
  if (argc == 7 && !strcmp(argv[1], "probe")) return do_probe(argv[2], argv[3], argv[4], argv[5], argv[6]);
  fprintf(stderr, "usage: see the comment at the top of hostile.c\n");
  return 2;
}
