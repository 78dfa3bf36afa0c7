/*
 * faultproxy.c - a TCP proxy for the fault tests: it sits between libchub
 * and chubd and breaks chosen requests on purpose, the way a bad network or
 * an overloaded hub would, so the tests can show that nothing is lost.
 *
 *   chub_faultproxy --upstream 127.0.0.1:PORT --port-file FILE
 *                   [--control FILE] [--stats FILE] [--fault SPEC]...
 *
 * It listens on 127.0.0.1:0 and writes the bound port (decimal + newline)
 * to --port-file atomically when ready. Each accepted connection carries
 * one HTTP request: the proxy reads the request head, rewrites it to
 * `Connection: close` (so every request is a new connection and can be
 * counted and matched), then either injects a fault or forwards it.
 *
 * A fault SPEC is comma-separated key=value fields:
 *   kind=refuse              close at once (RST), nothing answered
 *   kind=reset,after=N       forward the head and N body bytes, then RST
 *   kind=stall,secs=S        hold the request S seconds, then forward it
 *   kind=slow,bps=B          forward both ways at B bytes per second
 *   kind=hold,secs=S         forward the request, then hold the hub's
 *                            answer S seconds (the work is done, the
 *                            client does not know yet)
 *   kind=status,code=C[,retry_after=S]
 *                            answer C (408, 429, 500, 502, 503, 504...)
 *                            itself with a JSON envelope; Retry-After on 429
 *   match=GLOB               fnmatch() against "METHOD /path" (default *)
 *   skip=K                   let the first K matching requests through
 *   count=N                  fire at most N times (default 1): bounded
 * Rules are tried in order; the first that matches and still has a count
 * fires. The control file, re-read whenever it changes (checked as each
 * connection arrives), holds one rule per line plus `upstream PORT` (chubd
 * restarted on a new port), `down` (refuse every connection: the hub is
 * gone) or `up`, and `gap N` (after each fault, let N requests through
 * untouched, so faults spread over a run instead of arriving in a burst);
 * its rules replace the current ones with fresh counts.
 * --stats FILE is rewritten (atomically) after every request with
 * `requests R` and `faults F` lines. Each request logs one line on stderr.
 *
 * One thread per connection (at most 64 at once): the proxy serves a test,
 * not a crowd, and threads keep each connection's logic straight-line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FP_MAX_RULES 32
#define FP_MAX_HEAD 65536
#define FP_MAX_CONNS 64
#define FP_IO_TIMEOUT_MS 60000 /* a connection idle this long is closed */

typedef enum fp_kind {
  FP_REFUSE,
  FP_RESET,
  FP_STALL,
  FP_SLOW,
  FP_STATUS,
  FP_HOLD
} fp_kind;

typedef struct fp_rule {
  fp_kind kind;
  char match[256];
  long after, secs, bps, code, retry_after;
  long skip, count;
  long seen, fired; /* matching requests so far, times fired */
} fp_rule;

/* Everything the proxy's threads share; the only mutable state, guarded by
 * mu (conns by its own condition). */
typedef struct fp_state {
  pthread_mutex_t mu;
  pthread_cond_t conn_cv;
  int conns;
  fp_rule rules[FP_MAX_RULES];
  int n_rules;
  int upstream_port;
  char upstream_host[64];
  bool down;
  long gap;         /* requests let through after each fault */
  long since_fault; /* requests let through since the last fault */
  const char *control;
  struct timespec control_mtime;
  off_t control_size;
  ino_t control_ino;
  const char *stats;
  long requests, faults;
} fp_state;

static fp_state fp = {.mu = PTHREAD_MUTEX_INITIALIZER,
                      .conn_cv = PTHREAD_COND_INITIALIZER};

/* ------------------------------------------------------------ log */

/* One line on stderr, stamped with seconds since the proxy started so a
 * failing scenario's log shows when each request came. */
static void fp_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fp_log(const char *fmt, ...) {
  static struct timespec start; /* set on first use, by the main thread */
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (start.tv_sec == 0 && start.tv_nsec == 0)
    start = now;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "faultproxy: %8.3f %s",
          (double)(now.tv_sec - start.tv_sec) +
              (double)(now.tv_nsec - start.tv_nsec) / 1e9,
          line);
}

/* ------------------------------------------------------------ rules */

static int fp_rule_parse(const char *spec, fp_rule *r) {
  memset(r, 0, sizeof *r);
  strcpy(r->match, "*");
  r->count = 1;
  r->kind = (fp_kind)-1;
  char buf[512];
  snprintf(buf, sizeof buf, "%s", spec);
  char *save = NULL;
  for (char *f = strtok_r(buf, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
    while (*f == ' ' || *f == '\t')
      f++;
    char *eq = strchr(f, '=');
    if (!eq) {
      fp_log("rule field '%s' has no '=' in '%s'\n", f, spec);
      return -1;
    }
    *eq = '\0';
    const char *k = f, *v = eq + 1;
    if (!strcmp(k, "kind")) {
      static const char *names[] = {"refuse", "reset",  "stall",
                                    "slow",   "status", "hold"};
      for (int i = 0; i < 6; i++)
        if (!strcmp(v, names[i]))
          r->kind = (fp_kind)i;
    } else if (!strcmp(k, "match")) {
      snprintf(r->match, sizeof r->match, "%s", v);
    } else {
      char *end = NULL;
      long n = strtol(v, &end, 10);
      if (!*v || *end || n < 0) {
        fp_log("%s=%s is not a count in '%s'\n", k, v, spec);
        return -1;
      }
      if (!strcmp(k, "after"))
        r->after = n;
      else if (!strcmp(k, "secs"))
        r->secs = n;
      else if (!strcmp(k, "bps"))
        r->bps = n;
      else if (!strcmp(k, "code"))
        r->code = n;
      else if (!strcmp(k, "retry_after"))
        r->retry_after = n;
      else if (!strcmp(k, "skip"))
        r->skip = n;
      else if (!strcmp(k, "count"))
        r->count = n;
      else {
        fp_log("unknown field '%s' in '%s'\n", k, spec);
        return -1;
      }
    }
  }
  if ((int)r->kind < 0 || r->kind > FP_HOLD) {
    fprintf(stderr,
            "faultproxy: rule '%s' needs kind=refuse|reset|stall|"
            "slow|status\n",
            spec);
    return -1;
  }
  if ((r->kind == FP_STATUS && (r->code < 100 || r->code > 599)) ||
      (r->kind == FP_SLOW && r->bps == 0)) {
    fp_log("rule '%s' needs code=100..599 or bps>0\n", spec);
    return -1;
  }
  return 0;
}

/* Re-reads the control file when it changed. Called with fp.mu held. */
static void fp_control_reload(void) {
  struct stat st;
  if (!fp.control || stat(fp.control, &st) != 0)
    return;
  if (st.st_mtim.tv_sec == fp.control_mtime.tv_sec &&
      st.st_mtim.tv_nsec == fp.control_mtime.tv_nsec &&
      st.st_size == fp.control_size && st.st_ino == fp.control_ino)
    return;
  FILE *f = fopen(fp.control, "r");
  if (!f)
    return;
  fp.control_mtime = st.st_mtim;
  fp.control_size = st.st_size;
  fp.control_ino = st.st_ino;
  fp_rule rules[FP_MAX_RULES];
  int n = 0;
  bool down = false;
  long gap = 0;
  char line[600];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = '\0';
    if (!line[0] || line[0] == '#')
      continue;
    if (!strncmp(line, "upstream ", 9)) {
      fp.upstream_port = atoi(line + 9);
    } else if (!strcmp(line, "down")) {
      down = true;
    } else if (!strcmp(line, "up")) {
      down = false;
    } else if (!strncmp(line, "gap ", 4)) {
      gap = atol(line + 4);
    } else if (n < FP_MAX_RULES && fp_rule_parse(line, &rules[n]) == 0) {
      n++;
    }
  }
  fclose(f);
  memcpy(fp.rules, rules, sizeof rules[0] * (size_t)n);
  fp.n_rules = n;
  fp.down = down;
  fp.gap = gap;
  fp.since_fault = gap;
  fp_log("control %s: %d rules, upstream %d, %s\n", fp.control, n,
         fp.upstream_port, down ? "down" : "up");
}

static void fp_stats_write(void) {
  if (!fp.stats)
    return;
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp", fp.stats);
  FILE *f = fopen(tmp, "w");
  if (!f)
    return;
  fprintf(f, "requests %ld\nfaults %ld\n", fp.requests, fp.faults);
  if (fclose(f) == 0)
    rename(tmp, fp.stats);
}

/* Picks the rule for a request line and counts it; returns a copy of the
 * rule in *out (or false when the request goes through untouched). */
static bool fp_decide(const char *reqline, fp_rule *out, bool *down,
                      int *port) {
  pthread_mutex_lock(&fp.mu);
  fp.requests++;
  *down = fp.down;
  *port = fp.upstream_port;
  bool hit = false;
  bool rest = fp.since_fault < fp.gap;
  if (rest)
    fp.since_fault++;
  for (int i = 0; i < fp.n_rules && !*down && !rest; i++) {
    fp_rule *r = &fp.rules[i];
    if (fnmatch(r->match, reqline, 0) != 0)
      continue;
    long nth = r->seen++;
    if (nth < r->skip || r->fired >= r->count)
      continue;
    r->fired++;
    *out = *r;
    hit = true;
    fp.since_fault = 0;
    break;
  }
  if (hit || *down)
    fp.faults++;
  fp_stats_write();
  pthread_mutex_unlock(&fp.mu);
  return hit;
}

/* ------------------------------------------------------------ sockets */

static void fp_rst_close(int fd) {
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
}

/* Waits for fd to become ready for `events`; false on timeout or error. */
static bool fp_wait(int fd, short events, int ms) {
  struct pollfd p = {.fd = fd, .events = events};
  int r;
  do
    r = poll(&p, 1, ms);
  while (r < 0 && errno == EINTR);
  return r > 0;
}

static int fp_send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    if (!fp_wait(fd, POLLOUT, FP_IO_TIMEOUT_MS))
      return -1;
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Sends n bytes at about bps bytes per second (bps 0: at once). */
static int fp_send_paced(int fd, const char *p, size_t n, long bps) {
  if (bps <= 0)
    return fp_send_all(fd, p, n);
  size_t slice = (size_t)(bps / 10 > 0 ? bps / 10 : 1);
  while (n > 0) {
    size_t k = n < slice ? n : slice;
    if (fp_send_all(fd, p, k) != 0)
      return -1;
    p += k;
    n -= k;
    struct timespec ts = {0, (long)(1e9 * (double)k / (double)bps)};
    while (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    nanosleep(&ts, NULL);
  }
  return 0;
}

static int fp_connect_upstream(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, fp.upstream_host, &a.sin_addr);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

/* ------------------------------------------------------------ requests */

/* The request head as read: the bytes up to and including the blank line,
 * any body bytes read past it, and what the head says. */
typedef struct fp_head {
  char buf[FP_MAX_HEAD + 1];
  size_t len;          /* bytes in buf */
  size_t head_len;     /* up to and including "\r\n\r\n" */
  char reqline[512];   /* "METHOD /path" */
  long content_length; /* -1 when absent */
  bool chunked, expect_continue;
} fp_head;

static int fp_read_head(int fd, fp_head *h) {
  h->len = 0;
  for (;;) {
    char *end = h->len >= 4 ? memmem(h->buf, h->len, "\r\n\r\n", 4) : NULL;
    if (end) {
      h->head_len = (size_t)(end - h->buf) + 4;
      break;
    }
    if (h->len == FP_MAX_HEAD || !fp_wait(fd, POLLIN, FP_IO_TIMEOUT_MS))
      return -1;
    ssize_t r = recv(fd, h->buf + h->len, FP_MAX_HEAD - h->len, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    h->len += (size_t)r;
  }
  h->buf[h->len] = '\0';
  /* request line: METHOD SP TARGET SP VERSION */
  char method[16] = "", target[480] = "";
  if (sscanf(h->buf, "%15s %479s", method, target) != 2)
    return -1;
  char *q = strchr(target, '?');
  if (q)
    *q = '\0';
  snprintf(h->reqline, sizeof h->reqline, "%s %s", method, target);
  h->content_length = -1;
  h->chunked = h->expect_continue = false;
  const char *line = strstr(h->buf, "\r\n") + 2;
  while (line < h->buf + h->head_len - 2) {
    const char *eol = strstr(line, "\r\n");
    if (!strncasecmp(line, "content-length:", 15))
      h->content_length = atol(line + 15);
    else if (!strncasecmp(line, "transfer-encoding:", 18) &&
             strcasestr(line, "chunked") && strcasestr(line, "chunked") < eol)
      h->chunked = true;
    else if (!strncasecmp(line, "expect:", 7) &&
             strcasestr(line, "100-continue") &&
             strcasestr(line, "100-continue") < eol)
      h->expect_continue = true;
    line = eol + 2;
  }
  return 0;
}

/* The head with every Connection/Keep-Alive header replaced by
 * "Connection: close", into out (size FP_MAX_HEAD + 64). */
static size_t fp_rewrite_head(const fp_head *h, char *out) {
  size_t n = 0;
  const char *line = h->buf;
  const char *stop = h->buf + h->head_len - 2; /* before the blank line */
  bool first = true;
  while (line < stop) {
    const char *eol = strstr(line, "\r\n") + 2;
    bool drop = !first && (!strncasecmp(line, "connection:", 11) ||
                           !strncasecmp(line, "keep-alive:", 11) ||
                           !strncasecmp(line, "proxy-connection:", 17));
    if (!drop) {
      memcpy(out + n, line, (size_t)(eol - line));
      n += (size_t)(eol - line);
    }
    first = false;
    line = eol;
  }
  n += (size_t)sprintf(out + n, "Connection: close\r\n\r\n");
  return n;
}

static const char *fp_reason(long code) {
  switch (code) {
  case 408:
    return "Request Timeout";
  case 429:
    return "Too Many Requests";
  case 500:
    return "Internal Server Error";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return "Injected";
  }
}

/* Reads and drops the rest of the request body so the client sees the
 * injected answer rather than a reset (bounded by the I/O timeout). */
static void fp_drain_body(int fd, const fp_head *h) {
  size_t have = h->len - h->head_len;
  if (h->expect_continue)
    return; /* the client waits for 100 and sends no body after a final */
  char buf[16384];
  if (h->chunked) {
    /* until the last-chunk marker arrives */
    char tail[8] = "";
    for (int i = 0; i < 100000; i++) {
      if (!fp_wait(fd, POLLIN, 2000))
        return;
      ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r <= 0)
        return;
      if (r >= 5)
        memcpy(tail, buf + r - 5, 5);
      if (!memcmp(tail, "0\r\n\r\n", 5))
        return;
    }
    return;
  }
  long left =
      h->content_length > (long)have ? h->content_length - (long)have : 0;
  while (left > 0) {
    if (!fp_wait(fd, POLLIN, 5000))
      return;
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r <= 0)
      return;
    left -= r;
  }
}

static void fp_answer(int fd, const fp_head *h, const fp_rule *r) {
  fp_drain_body(fd, h);
  char body[256], resp[768];
  snprintf(body, sizeof body,
           "{\"success\": false, \"message\": \"injected %ld by the fault "
           "proxy\"}",
           r->code);
  char extra[128] = "";
  if (r->code == 429)
    snprintf(extra, sizeof extra,
             "Retry-After: %ld\r\nX-RateLimit-Limit: 1\r\n"
             "X-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: %ld\r\n",
             r->retry_after, (long)time(NULL) + r->retry_after);
  int n = snprintf(resp, sizeof resp,
                   "HTTP/1.1 %ld %s\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\n%sConnection: close\r\n\r\n%s",
                   r->code, fp_reason(r->code), strlen(body), extra, body);
  fp_send_all(fd, resp, (size_t)n);
  shutdown(fd, SHUT_WR);
  /* let the client read the answer before the socket goes */
  char sink[4096];
  while (fp_wait(fd, POLLIN, 1000) && recv(fd, sink, sizeof sink, 0) > 0) {
  }
  close(fd);
}

/* Pumps bytes both ways until the server closes. `reset_after` >= 0 cuts
 * both sides with RST once that many body bytes went upstream. */
static void fp_pump(int cfd, int ufd, size_t body_sent, long reset_after,
                    long bps, long hold_secs, const char *reqline) {
  char buf[16384];
  bool client_open = true;
  for (;;) {
    struct pollfd p[2] = {{.fd = cfd, .events = client_open ? POLLIN : 0},
                          {.fd = ufd, .events = POLLIN}};
    int r = poll(p, 2, FP_IO_TIMEOUT_MS);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      size_t want = sizeof buf;
      if (reset_after >= 0 && (long)body_sent + (long)want > reset_after)
        want = (size_t)(reset_after - (long)body_sent);
      ssize_t n = want ? recv(cfd, buf, want, 0) : 0;
      if (n > 0) {
        if (fp_send_paced(ufd, buf, (size_t)n, bps) != 0)
          break;
        body_sent += (size_t)n;
      } else if (n == 0 && want > 0) {
        client_open = false; /* the client finished sending */
        shutdown(ufd, SHUT_WR);
      }
      if (reset_after >= 0 && (long)body_sent >= reset_after) {
        fp_rst_close(ufd);
        fp_rst_close(cfd);
        return;
      }
      if (n < 0 && errno != EINTR)
        break;
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = recv(ufd, buf, sizeof buf, 0);
      if (n <= 0)
        break; /* the server answered and closed */
      /* hold the final answer (not a "100 Continue") once */
      if (hold_secs > 0 && !(n >= 10 && !memcmp(buf + 9, "1", 1))) {
        fp_log("%s -> answer held %ld s\n", reqline, hold_secs);
        sleep((unsigned)hold_secs);
        hold_secs = 0;
      }
      if (fp_send_paced(cfd, buf, (size_t)n, bps) != 0)
        break;
    }
  }
  close(ufd);
  shutdown(cfd, SHUT_WR);
  close(cfd);
}

static void fp_serve(int cfd) {
  fp_head *h = malloc(sizeof *h);
  char *out = malloc(FP_MAX_HEAD + 64);
  if (!h || !out || fp_read_head(cfd, h) != 0) {
    close(cfd);
    free(h);
    free(out);
    return;
  }
  pthread_mutex_lock(&fp.mu);
  fp_control_reload();
  pthread_mutex_unlock(&fp.mu);
  fp_rule r;
  bool down = false;
  int port = 0;
  bool hit = fp_decide(h->reqline, &r, &down, &port);
  if (down || (hit && r.kind == FP_REFUSE)) {
    fp_log("%s -> refused%s\n", h->reqline, down ? " (down)" : "");
    fp_rst_close(cfd);
    free(h);
    free(out);
    return;
  }
  if (hit && r.kind == FP_STATUS) {
    fp_log("%s -> answered %ld\n", h->reqline, r.code);
    fp_answer(cfd, h, &r);
    free(h);
    free(out);
    return;
  }
  if (hit && r.kind == FP_STALL) {
    fp_log("%s -> stalled %ld s\n", h->reqline, r.secs);
    sleep((unsigned)r.secs);
  }
  int ufd = fp_connect_upstream(port);
  if (ufd < 0) {
    fp_log("%s -> upstream %d not reachable\n", h->reqline, port);
    fp_rst_close(cfd);
    free(h);
    free(out);
    return;
  }
  long bps = hit && r.kind == FP_SLOW ? r.bps : 0;
  long reset_after = hit && r.kind == FP_RESET ? r.after : -1;
  long hold_secs = hit && r.kind == FP_HOLD ? r.secs : 0;
  size_t head_n = fp_rewrite_head(h, out);
  size_t extra = h->len - h->head_len; /* body bytes read with the head */
  if (reset_after >= 0 && (long)extra > reset_after)
    extra = (size_t)reset_after;
  if (!hit)
    fp_log("%s -> passed\n", h->reqline);
  else if (r.kind == FP_SLOW || r.kind == FP_RESET)
    fp_log("%s -> %s\n", h->reqline,
           r.kind == FP_SLOW ? "slow" : "reset mid-body");
  if (fp_send_paced(ufd, out, head_n, bps) != 0 ||
      fp_send_paced(ufd, h->buf + h->head_len, extra, bps) != 0) {
    fp_rst_close(ufd);
    fp_rst_close(cfd);
  } else if (reset_after >= 0 && (long)extra >= reset_after &&
             (h->content_length < 0 || reset_after < h->content_length)) {
    fp_rst_close(ufd);
    fp_rst_close(cfd);
  } else {
    fp_pump(cfd, ufd, extra, reset_after, bps, hold_secs, h->reqline);
  }
  free(h);
  free(out);
}

static void *fp_conn_thread(void *arg) {
  int cfd = (int)(intptr_t)arg;
  fp_serve(cfd);
  pthread_mutex_lock(&fp.mu);
  fp.conns--;
  pthread_cond_signal(&fp.conn_cv);
  pthread_mutex_unlock(&fp.mu);
  return NULL;
}

/* ------------------------------------------------------------ main */

static int fp_usage(void) {
  fprintf(stderr,
          "usage: chub_faultproxy --upstream HOST:PORT --port-file FILE\n"
          "       [--control FILE] [--stats FILE] [--fault SPEC]...\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *port_file = NULL;
  snprintf(fp.upstream_host, sizeof fp.upstream_host, "127.0.0.1");
  for (int i = 1; i < argc; i += 2) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v)
      return fp_usage();
    if (!strcmp(a, "--upstream")) {
      const char *colon = strrchr(v, ':');
      if (!colon)
        return fp_usage();
      snprintf(fp.upstream_host, sizeof fp.upstream_host, "%.*s",
               (int)(colon - v), v);
      fp.upstream_port = atoi(colon + 1);
    } else if (!strcmp(a, "--port-file")) {
      port_file = v;
    } else if (!strcmp(a, "--control")) {
      fp.control = v;
    } else if (!strcmp(a, "--stats")) {
      fp.stats = v;
    } else if (!strcmp(a, "--fault")) {
      if (fp.n_rules == FP_MAX_RULES ||
          fp_rule_parse(v, &fp.rules[fp.n_rules]) != 0)
        return fp_usage();
      fp.n_rules++;
    } else {
      return fp_usage();
    }
  }
  if (!port_file)
    return fp_usage();
  signal(SIGPIPE, SIG_IGN);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(lfd, 128) != 0 ||
      getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) {
    perror("faultproxy: cannot listen on 127.0.0.1");
    return 1;
  }
  pthread_mutex_lock(&fp.mu);
  fp_control_reload();
  fp_stats_write();
  pthread_mutex_unlock(&fp.mu);
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
  FILE *pf = fopen(tmp, "w");
  if (!pf || fprintf(pf, "%d\n", ntohs(a.sin_port)) < 0 || fclose(pf) != 0 ||
      rename(tmp, port_file) != 0) {
    perror("faultproxy: cannot write the port file");
    return 1;
  }
  fp_log("listening on 127.0.0.1:%d, upstream %s:%d\n", ntohs(a.sin_port),
         fp.upstream_host, fp.upstream_port);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  for (;;) {
    int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      perror("faultproxy: accept");
      return 1;
    }
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_mutex_lock(&fp.mu);
    while (fp.conns >= FP_MAX_CONNS)
      pthread_cond_wait(&fp.conn_cv, &fp.mu);
    fp.conns++;
    pthread_mutex_unlock(&fp.mu);
    pthread_t t;
    if (pthread_create(&t, &attr, fp_conn_thread, (void *)(intptr_t)cfd) != 0) {
      close(cfd);
      pthread_mutex_lock(&fp.mu);
      fp.conns--;
      pthread_mutex_unlock(&fp.mu);
    }
  }
}
