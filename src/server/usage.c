/*
 * usage.c - POST /v1/events: anonymous usage events, no key needed.
 *
 * Checked against hub-api.md's limits (25 events, 25 flat params each,
 * known names, bounded sizes) and stored one row per event for whoever
 * runs the hub. Anyone may send them, so they are bounded twice: a token
 * bucket per client address, and a number of rows per client id per day.
 */
#include "server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

/* A bucket id for the client's address: IPv4 whole, IPv6 by its /64 (one
 * host usually holds a whole /64). Never 0. */
static int64_t usage_address_id(const chubd_request *req) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const struct sockaddr *sa = ci ? ci->client_addr : NULL;
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
  const unsigned char *b = NULL;
  size_t n = 0;
  if (sa && sa->sa_family == AF_INET) {
    b = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)
            ->sin_addr;
    n = 4;
  } else if (sa && sa->sa_family == AF_INET6) {
    b = (const unsigned char *)&((const struct sockaddr_in6 *)(const void *)sa)
            ->sin6_addr;
    n = 8;
  }
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 0x100000001b3ull;
  return (int64_t)(h >> 1) | 1;
}

/* The per-address token bucket; 0, or 429 in rep. */
static unsigned usage_rate(chubd_request *req, chubd_reply *rep) {
  req->rate_limited = 1;
  if (ratelimit_take(req->srv->events_rl, usage_address_id(req), util_mono_s(),
                     &req->rl))
    return 0;
  reply_header(rep, "Retry-After", "%ld", req->rl.retry_after);
  reply_error(rep, 429,
              "usage events are limited to %g requests per second per "
              "address; retry in %ld s",
              req->srv->cfg.events_rate, req->rl.retry_after);
  return 429;
}

void usage_post(chubd_request *req, chubd_reply *rep) {
  if (usage_rate(req, rep))
    return;
  char err[VALIDATE_ERR];
  json_t *body;
  if (validate_json_object(req->body, req->body_len, &body, err) < 0 ||
      validate_events(body, err) < 0) {
    if (body)
      json_decref(body);
    reply_error(rep, 400, "%s", err);
    return;
  }
  json_t *events = json_object_get(body, "events");
  char *text = json_dumps(events, JSON_COMPACT | JSON_REAL_PRECISION(17));
  size_t n = json_array_size(events);
  store *st = req->srv->st;
  const char *client = json_string_value(json_object_get(body, "client_id"));
  store_rc rc = text ? st->ops->events_add(st, client, text, util_now_ms(),
                                           req->srv->cfg.events_per_day)
                     : STORE_ERROR;
  free(text);
  if (rc == STORE_LIMIT) {
    int64_t now = util_now_ms();
    reply_header(rep, "Retry-After", "%lld",
                 (long long)((86400000 - now % 86400000) / 1000 + 1));
    reply_error(rep, 429,
                "client %.64s reached its %lld usage events for today (UTC); "
                "nothing stored",
                client, (long long)req->srv->cfg.events_per_day);
    json_decref(body);
    return;
  }
  json_decref(body);
  if (rc != STORE_OK) {
    reply_store(rep, rc, "events");
    return;
  }
  reply_data(rep, 200, json_pack("{s:I}", "events", (json_int_t)n),
             "events stored");
}
