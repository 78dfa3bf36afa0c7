/*
 * sec.c - helpers of chubd's security suite: raw sockets from a chosen
 * loopback source address, hand-built requests, and bounded waits.
 */
#include "sec.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SEC_DIAL_MS 3000

long sec_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sec_dial(const char *src, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  if (src) {
    struct sockaddr_in s = {0};
    s.sin_family = AF_INET;
    if (inet_pton(AF_INET, src, &s.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&s, sizeof s) != 0) {
      int e = errno;
      close(fd);
      errno = e ? e : EINVAL;
      return -1;
    }
  }
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    if (errno != EINPROGRESS) {
      int e = errno;
      close(fd);
      errno = e;
      return -1;
    }
    struct pollfd pfd = {fd, POLLOUT, 0};
    if (poll(&pfd, 1, SEC_DIAL_MS) <= 0) {
      close(fd);
      errno = ETIMEDOUT;
      return -1;
    }
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
      close(fd);
      errno = err;
      return -1;
    }
  }
  fcntl(fd, F_SETFL, fl);
  return fd;
}

sec_fate sec_watch(int fd, int ms, char *got, size_t n) {
  long deadline = sec_now_ms() + ms;
  size_t used = 0;
  if (got && n)
    got[0] = '\0';
  for (;;) {
    long left = deadline - sec_now_ms();
    if (left < 0)
      left = 0;
    struct pollfd pfd = {fd, POLLIN, 0};
    int r = poll(&pfd, 1, (int)(left > 100 ? 100 : left));
    if (r > 0) {
      char buf[4096];
      ssize_t k = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (k > 0) {
        if (got && used + 1 < n) {
          size_t c = (size_t)k < n - 1 - used ? (size_t)k : n - 1 - used;
          memcpy(got + used, buf, c);
          used += c;
          got[used] = '\0';
        }
        return SEC_ANSWERED;
      }
      if (k == 0 || (errno != EAGAIN && errno != EINTR))
        return SEC_CLOSED;
    }
    if (left == 0)
      return SEC_OPEN;
  }
}

int sec_is_closed(int fd) {
  struct pollfd pfd = {fd, POLLIN, 0};
  if (poll(&pfd, 1, 0) <= 0)
    return 0;
  char c;
  ssize_t k = recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
  return k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR);
}

void sec_answer_free(sec_answer *a) {
  free(a->head);
  free(a->body);
  memset(a, 0, sizeof *a);
}

/* Decodes a chunked body in place; returns 1 when the last chunk was seen,
 * with *out_len the decoded length. */
static int sec_dechunk(char *b, size_t len, size_t *out_len) {
  size_t r = 0, w = 0;
  for (;;) {
    char *eol = memmem(b + r, len - r, "\r\n", 2);
    if (!eol)
      return 0;
    size_t size = strtoul(b + r, NULL, 16);
    r = (size_t)(eol - b) + 2;
    if (size == 0) {
      *out_len = w;
      return 1;
    }
    if (r + size + 2 > len)
      return 0;
    memmove(b + w, b + r, size);
    w += size;
    r += size + 2;
  }
}

int sec_read_answer(int fd, int ms, sec_answer *a) {
  memset(a, 0, sizeof *a);
  size_t cap = 65536, len = 0;
  char *buf = malloc(cap + 1);
  long deadline = sec_now_ms() + ms;
  int closed = 0, done = 0;
  while (!done && !closed) {
    long left = deadline - sec_now_ms();
    if (left <= 0)
      break;
    struct pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, (int)(left > 100 ? 100 : left)) <= 0)
      continue;
    if (len + 16384 > cap) {
      cap *= 2;
      buf = realloc(buf, cap + 1);
    }
    ssize_t k = recv(fd, buf + len, cap - len, 0);
    if (k <= 0) {
      closed = 1;
      break;
    }
    len += (size_t)k;
    buf[len] = '\0';
    /* Complete yet? */
    char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end)
      continue;
    size_t hl = (size_t)(end - buf) + 4;
    char *head = strndup(buf, hl);
    char *cl = th_header(head, "Content-Length");
    char *te = th_header(head, "Transfer-Encoding");
    long st = len >= 12 ? strtol(buf + 9, NULL, 10) : 0;
    if (st == 304 || st == 204 || (st >= 100 && st < 200)) {
      done = 1;
    } else if (cl) {
      done = len - hl >= strtoull(cl, NULL, 10);
    } else if (te && strcasestr(te, "chunked")) {
      char *copy = malloc(len - hl + 1);
      memcpy(copy, buf + hl, len - hl);
      size_t dl;
      done = sec_dechunk(copy, len - hl, &dl);
      free(copy);
    }
    free(cl);
    free(te);
    free(head);
  }
  buf[len] = '\0';
  char *end = memmem(buf, len, "\r\n\r\n", 4);
  if (!end || len < 12 || strncmp(buf, "HTTP/1.", 7) != 0) {
    a->head = buf;
    return -1;
  }
  size_t hl = (size_t)(end - buf) + 4;
  a->head = strndup(buf, hl);
  a->status = strtol(buf + 9, NULL, 10);
  size_t bl = len - hl;
  a->body = malloc(bl + 1);
  memcpy(a->body, buf + hl, bl);
  a->body[bl] = '\0';
  a->body_len = bl;
  char *te = th_header(a->head, "Transfer-Encoding");
  if (te && strcasestr(te, "chunked")) {
    size_t dl = 0;
    if (sec_dechunk(a->body, bl, &dl)) {
      a->body_len = dl;
      a->body[dl] = '\0';
    } else if (!closed) {
      done = 0;
    }
  }
  free(te);
  free(buf);
  if (!done && !closed) {
    a->status = 0;
    return -1;
  }
  return 0;
}

int sec_exchange(const char *src, int port, const void *req, size_t len, int ms,
                 sec_answer *a) {
  memset(a, 0, sizeof *a);
  int fd = sec_dial(src, port);
  if (fd < 0) {
    fprintf(stderr, "sec: connect from %s to port %d: %s\n",
            src ? src : "(any)", port, strerror(errno));
    return -1;
  }
  sv_send(fd, req, len);
  int rc = sec_read_answer(fd, ms, a);
  close(fd);
  return rc;
}

int sec_get_from(const char *src, int port, const char *path, int ms,
                 sec_answer *a) {
  char *req = th_fmt("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Connection: close\r\n\r\n",
                     path, port);
  int rc = sec_exchange(src, port, req, strlen(req), ms, a);
  free(req);
  return rc;
}

char *sec_health_request(int port) {
  return th_fmt("GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", port);
}

/* Appends n bytes to a growing buffer. */
static void sec_put(char **b, size_t *len, size_t *cap, const void *d,
                    size_t n) {
  if (*len + n + 1 > *cap) {
    while (*len + n + 1 > *cap)
      *cap = *cap ? *cap * 2 : 4096;
    *b = realloc(*b, *cap);
  }
  memcpy(*b + *len, d, n);
  *len += n;
  (*b)[*len] = '\0';
}

static void sec_puts(char **b, size_t *len, size_t *cap, const char *s) {
  sec_put(b, len, cap, s, strlen(s));
}

char *sec_multipart(const char *boundary, const char *const fields[],
                    int n_files, const char *file_field, const char *file_name,
                    const void *data, size_t len, const char *close_tail,
                    size_t *out_len) {
  char *b = NULL;
  size_t used = 0, cap = 0;
  for (int i = 0; fields && fields[i]; i += 2) {
    char *part = th_fmt("--%s\r\nContent-Disposition: form-data; "
                        "name=\"%s\"\r\n\r\n%s\r\n",
                        boundary, fields[i], fields[i + 1]);
    sec_puts(&b, &used, &cap, part);
    free(part);
  }
  for (int f = 0; f < n_files; f++) {
    char *part = th_fmt("%s--%s\r\nContent-Disposition: form-data; "
                        "name=\"%s\"; filename=\"%s\"\r\n"
                        "Content-Type: application/octet-stream\r\n\r\n",
                        f ? "\r\n" : "", boundary, file_field, file_name);
    sec_puts(&b, &used, &cap, part);
    free(part);
    sec_put(&b, &used, &cap, data, len);
  }
  /* The tail may name the boundary once. */
  char *tail = th_fmt(close_tail, boundary);
  sec_puts(&b, &used, &cap, tail);
  free(tail);
  if (!b)
    b = calloc(1, 1);
  *out_len = used;
  return b;
}

void sec_post_raw(int port, const char *path, const char *key,
                  const char *content_type, const void *body, size_t len,
                  sec_answer *a) {
  char *key_h = key ? th_fmt("x-api-key: %s\r\n", key) : strdup("");
  char *head = th_fmt("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s"
                      "Content-Type: %s\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      path, port, key_h, content_type, len);
  size_t hl = strlen(head);
  char *req = malloc(hl + len + 1);
  memcpy(req, head, hl);
  if (len)
    memcpy(req + hl, body, len);
  int rc = sec_exchange(NULL, port, req, hl + len, 10000, a);
  free(req);
  free(head);
  free(key_h);
  if (rc != 0)
    fail_msg("POST %s: no complete answer within 10 s (got: %.200s)", path,
             a->head ? a->head : "");
}

int sec_tmp_files(const char *data_dir) {
  char *dir = th_fmt("%s/blobs/.incoming", data_dir);
  DIR *d = opendir(dir);
  int n = 0;
  /* chubd makes the directory at start: without it, this would count
   * nothing and prove nothing. */
  if (!d)
    fail_msg("no directory %s for uploads in progress", dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.')
        continue;
      char *path = th_fmt("%s/%s", dir, e->d_name);
      struct stat sb;
      if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
        fprintf(stderr, "sec: %s remains (%lld bytes)\n", path,
                (long long)sb.st_size);
        n++;
      }
      free(path);
    }
    closedir(d);
  }
  free(dir);
  return n;
}

int sec_tmp_empty(const char *data_dir, int ms) {
  long deadline = sec_now_ms() + ms;
  int n;
  for (;;) {
    n = sec_tmp_files(data_dir);
    if (n == 0 || sec_now_ms() >= deadline)
      return n;
    sv_sleep_ms(100);
  }
}

int sec_exited_within(pid_t pid, int ms) {
  long deadline = sec_now_ms() + ms;
  for (;;) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        si.si_pid == pid)
      return 1;
    if (sec_now_ms() >= deadline)
      return 0;
    sv_sleep_ms(20);
  }
}

char *sec_set_cookies(const char *headers) {
  char *out = NULL;
  size_t used = 0, cap = 0;
  const char *s = headers;
  while (s && *s) {
    const char *eol = strstr(s, "\r\n");
    size_t n = eol ? (size_t)(eol - s) : strlen(s);
    if (n > 11 && strncasecmp(s, "Set-Cookie:", 11) == 0) {
      const char *v = s + 11;
      while (*v == ' ')
        v++;
      sec_put(&out, &used, &cap, v, n - (size_t)(v - s));
      sec_puts(&out, &used, &cap, "\n");
    }
    s = eol ? eol + 2 : NULL;
  }
  return out;
}

int sec_is_hex(const char *s, size_t n) {
  if (!s || strlen(s) != n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
      return 0;
  return 1;
}
