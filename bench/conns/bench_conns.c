/*
 * bench_conns.c - what an idle keep-alive client costs chubd in memory.
 *
 *   bench_conns PORT PID
 *
 * Opens 1, 100 and 1000 connections to chubd at 127.0.0.1:PORT, each
 * sending one GET /v1/health and reading its answer, then leaving the
 * connection open and silent (a client between uploads). After each step
 * it reads chubd's resident memory (VmRSS of PID) and prints it, beside
 * the same figure with no client, and the growth per connection. Prints
 * figures; asserts nothing.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static long bench_rss_kb(long pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", pid);
  FILE *f = fopen(path, "r");
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld", &kb) == 1)
      break;
  if (f)
    fclose(f);
  return kb;
}

/* One kept-alive client: connected, one request answered. -1 on failure. */
static int bench_client(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((unsigned short)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  static const char req[] =
      "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
    close(fd);
    return -1;
  }
  /* Read until the end of the (small, Content-Length) answer. */
  char buf[4096];
  size_t got = 0;
  struct pollfd p = {.fd = fd, .events = POLLIN};
  while (got < sizeof buf - 1 && poll(&p, 1, 5000) == 1) {
    ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
    if (n <= 0)
      break;
    got += (size_t)n;
    buf[got] = '\0';
    const char *body = strstr(buf, "\r\n\r\n");
    const char *cl = strstr(buf, "Content-Length: ");
    if (body && cl && got - (size_t)(body + 4 - buf) >= (size_t)atol(cl + 16))
      return fd;
  }
  close(fd);
  return -1;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: bench_conns PORT PID\n");
    return 2;
  }
  int port = atoi(argv[1]);
  long pid = atol(argv[2]);
  static int fds[1000];
  int open = 0;
  long base = bench_rss_kb(pid);
  printf("chubd VmRSS with no client: %ld KiB\n", base);
  static const int steps[] = {1, 100, 1000};
  for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
    while (open < steps[s]) {
      int fd = bench_client(port);
      if (fd < 0) {
        fprintf(stderr,
                "bench_conns: client %d could not connect or was not "
                "answered\n",
                open + 1);
        break;
      }
      fds[open++] = fd;
    }
    usleep(300000); /* let chubd settle */
    long rss = bench_rss_kb(pid);
    printf("%4d idle keep-alive clients: VmRSS %6ld KiB, %+7.1f KiB per "
           "connection (ceiling 64)\n",
           open, rss, open ? (double)(rss - base) / open : 0.0);
  }
  for (int i = 0; i < open; i++)
    close(fds[i]);
  return 0;
}
