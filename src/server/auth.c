/*
 * auth.c - who is asking: API keys on /v1, page sessions on /ui, and the
 * endpoints about that (/v1/auth, /ui/login, /ui/logout, /ui/owners),
 * plus /v1/health, which needs no key.
 *
 * Every keyed request also takes a token from its key's bucket here, so a
 * refused key never costs a database write and the rate limit protects the
 * store. On a loopback listener the pages and /ui need no key (whoever can
 * reach 127.0.0.1 already runs on this machine) unless --pages-login says
 * the machine is shared.
 *
 * A page session is a random token in an HttpOnly, SameSite=Strict cookie;
 * the store keeps only its SHA-256, tied to the key that logged in, with an
 * expiry. Logging out or revoking the key ends it; stealing the cookie
 * gives a session, never the key. Requests that change something from a
 * page must come from a page of this hub (Origin, else Referer) with a
 * JSON body, which a foreign page cannot send without a CORS preflight
 * that chubd never grants.
 */
#include "server.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "keys.h"

#include <openssl/rand.h>

#define AUTH_COOKIE "chub_session"
#define AUTH_TOKEN_HEX 64

/* Looks up a presented key. 0 with *out filled, or 401 in rep. */
store_rc auth_key(store *st, keycache *kc, const char *key, store_key *out) {
  unsigned char hash[32];
  char prefix[KEYS_PREFIX_LEN + 1];
  keycache_token token;
  keys_hash(key, hash);
  if (keycache_get(kc, hash, out, &token) == 0)
    return STORE_OK;
  keys_prefix(key, prefix);
  store_rc rc = st->ops->key_find(st, prefix, hash, out);
  if (rc == STORE_OK)
    keycache_put(kc, hash, out, &token);
  return rc;
}

static unsigned auth_lookup(chubd_request *req, const char *key,
                            chubd_reply *rep) {
  if (!util_is_alnum_n(key, UTIL_KEY_LEN)) {
    reply_error(rep, 401,
                "invalid API key (expected 42 characters "
                "[A-Za-z0-9]); check your API key");
    return 401;
  }
  store_rc rc = auth_key(req->srv->st, req->srv->kc, key, &req->key);
  if (rc == STORE_NOTFOUND) {
    reply_error(rep, 401, "unknown or revoked API key; check your API key");
    return 401;
  }
  if (rc != STORE_OK) {
    reply_store(rep, rc, "API key");
    return rep->status;
  }
  req->has_key = 1;
  return 0;
}

static const char *auth_header_key(chubd_request *req) {
  const char *key = httpd_header(req, "x-api-key");
  if (key && *key)
    return key;
  const char *bearer = httpd_header(req, "authorization");
  if (bearer && strncasecmp(bearer, "Bearer ", 7) == 0) {
    bearer += 7;
    while (*bearer == ' ')
      bearer++;
    return bearer;
  }
  return NULL;
}

static unsigned auth_rate(chubd_request *req, chubd_reply *rep) {
  req->rate_limited = 1;
  if (ratelimit_take(req->srv->rl, req->key.id, util_mono_s(), &req->rl))
    return 0;
  reply_header(rep, "Retry-After", "%ld", req->rl.retry_after);
  reply_error(rep, 429,
              "rate limit of %g requests per second (burst %g) reached for "
              "this key; retry in %ld s",
              req->srv->cfg.rate, req->srv->cfg.burst, req->rl.retry_after);
  return 429;
}

/* The session a page's cookie names, into req->key; or 401. */
static unsigned auth_session(chubd_request *req, chubd_reply *rep) {
  char token[AUTH_TOKEN_HEX + 2];
  if (validate_cookie(httpd_header(req, "cookie"), AUTH_COOKIE, token,
                      sizeof token) < 0 ||
      strlen(token) != AUTH_TOKEN_HEX) {
    reply_error(rep, 401, "log in first: no session");
    return 401;
  }
  unsigned char hash[32];
  keys_hash(token, hash);
  store *st = req->srv->st;
  store_rc rc = st->ops->session_find(st, hash, util_now_ms(), &req->key);
  if (rc == STORE_NOTFOUND) {
    reply_error(rep, 401,
                "session ended (logged out, expired, or its key "
                "was revoked); log in again");
    return 401;
  }
  if (rc != STORE_OK) {
    reply_store(rep, rc, "session");
    return rep->status;
  }
  req->has_key = 1;
  return 0;
}

/* Whether a state-changing page request comes from a page of this hub:
 * its Origin (else its Referer) is this hub's own origin. */
static int auth_same_origin(chubd_request *req, chubd_reply *rep) {
  const char *host = httpd_header(req, "host");
  const char *origin = httpd_header(req, "origin");
  const char *referer = httpd_header(req, "referer");
  char own[320];
  if (host && strlen(host) < 256)
    snprintf(own, sizeof own, "%s://%s", req->srv->tls ? "https" : "http",
             host);
  size_t n = host ? strlen(own) : 0;
  /* Behind a proxy that ends TLS, the page's origin is --public-url's. */
  const char *pub = req->srv->public_origin;
  size_t pn = strlen(pub);
  int ok = 0;
  if (origin)
    ok = (host && strcasecmp(origin, own) == 0) ||
         (pn && strcasecmp(origin, pub) == 0);
  else if (referer)
    ok = (host && strncasecmp(referer, own, n) == 0 && referer[n] == '/') ||
         (pn && strncasecmp(referer, pub, pn) == 0 && referer[pn] == '/');
  if (!ok)
    reply_error(rep, 403,
                "cross-site request refused: changes from a page must come "
                "from this hub's own pages (Origin or Referer %s)",
                origin || referer ? "of another site" : "missing");
  return ok ? 0 : -1;
}

unsigned auth_identify(chubd_request *req, chubd_reply *rep) {
  int page_change = (req->r.ui || req->r.kind == ROUTE_UI_LOGIN ||
                     req->r.kind == ROUTE_UI_LOGOUT) &&
                    req->r.method != ROUTE_GET && req->r.method != ROUTE_HEAD;
  if (page_change && auth_same_origin(req, rep) < 0)
    return 403;
  switch (req->r.kind) {
  case ROUTE_HEALTH:
  case ROUTE_PROMETHEUS:
  case ROUTE_EVENTS:
  case ROUTE_PAGE:
  case ROUTE_UI_LOGIN:
  case ROUTE_UI_LOGOUT:
    return 0;
  default:
    break;
  }
  unsigned status;
  if (req->r.ui) {
    if (req->srv->open_pages) {
      req->owner = NULL; /* every model */
      return 0;
    }
    status = auth_session(req, rep);
  } else {
    const char *key = auth_header_key(req);
    if (req->r.kind == ROUTE_PF_PUT) {
      /* A Platform upload URL: the signature is the credential, and no
       * header is sent with it. */
      status = links_verify(req, rep);
      if (status || req->key.id == 0)
        return status;
      return auth_rate(req, rep);
    }
    int blob =
        req->r.kind == ROUTE_MODEL_BLOB || req->r.kind == ROUTE_DATASET_BLOB;
    if (!key && blob && httpd_query(req, "sig")) {
      status = links_verify(req, rep);
      if (status || req->key.id == 0)
        return status;
      return auth_rate(req, rep); /* the issuing key's bucket */
    }
    if (!key) {
      reply_error(rep, 401,
                  "API key required: send header x-api-key%s; "
                  "check your API key",
                  blob ? ", or use the signed download URL the model or "
                         "dataset gives"
                       : "");
      return 401;
    }
    status = auth_lookup(req, key, rep);
  }
  if (status)
    return status;
  req->owner = req->key.owner;
  return auth_rate(req, rep);
}

void auth_post(chubd_request *req, chubd_reply *rep) {
  json_t *data = json_pack("{s:s}", "uid", req->key.owner);
  reply_data(rep, 200, data, "authenticated");
}

void auth_health(chubd_request *req, chubd_reply *rep) {
  json_t *data = json_pack("{s:s, s:s}", "version", CHUBD_VERSION, "store",
                           req->srv->st->ops->name);
  reply_data(rep, 200, data, "ok");
}

/* The key from a login body: JSON {"key": "..."}. */
static int auth_login_key(chubd_request *req, char *out, size_t n,
                          chubd_reply *rep) {
  char err[VALIDATE_ERR];
  json_t *body;
  if (validate_json_object(req->body, req->body_len, &body, err) < 0) {
    reply_error(rep, 400, "%s", err);
    return -1;
  }
  json_t *key = json_object_get(body, "key");
  int ok = json_is_string(key) && json_string_length(key) < n;
  if (ok)
    snprintf(out, n, "%s", json_string_value(key));
  json_decref(body);
  if (!ok) {
    reply_error(rep, 400, "missing field \"key\" (a string)");
    return -1;
  }
  return 0;
}

void auth_ui_login(chubd_request *req, chubd_reply *rep) {
  char key[128];
  if (auth_login_key(req, key, sizeof key, rep) < 0)
    return;
  if (auth_lookup(req, key, rep) != 0)
    return;
  unsigned char raw[32], hash[32];
  char token[AUTH_TOKEN_HEX + 1];
  if (RAND_bytes(raw, sizeof raw) != 1) {
    reply_error(rep, 503, "cannot make a session: no randomness");
    return;
  }
  util_hex(raw, sizeof raw, token);
  keys_hash(token, hash);
  int64_t now = util_now_ms();
  int64_t ttl = req->srv->cfg.session_ttl_s;
  store *st = req->srv->st;
  store_rc rc =
      st->ops->session_add(st, hash, req->key.id, now, now + ttl * 1000);
  if (rc != STORE_OK) {
    reply_store(rep, rc, "session");
    return;
  }
  reply_header(rep, "Set-Cookie",
               AUTH_COOKIE "=%s; HttpOnly; SameSite=Strict; Path=/; "
                           "Max-Age=%lld%s",
               token, (long long)ttl,
               req->srv->secure_cookies ? "; Secure" : "");
  reply_data(rep, 200, json_pack("{s:s}", "uid", req->key.owner), "logged in");
}

void auth_ui_logout(chubd_request *req, chubd_reply *rep) {
  char token[AUTH_TOKEN_HEX + 2];
  if (validate_cookie(httpd_header(req, "cookie"), AUTH_COOKIE, token,
                      sizeof token) == 0 &&
      strlen(token) == AUTH_TOKEN_HEX) {
    unsigned char hash[32];
    keys_hash(token, hash);
    store *st = req->srv->st;
    store_rc rc = st->ops->session_drop(st, hash);
    if (rc != STORE_OK) {
      reply_store(rep, rc, "session");
      return;
    }
  }
  reply_header(rep, "Set-Cookie",
               AUTH_COOKIE "=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0%s",
               req->srv->secure_cookies ? "; Secure" : "");
  reply_data(rep, 200, NULL, "logged out");
}

#define AUTH_OWNERS_MAX 1000

typedef struct auth_owners_ctx {
  const char *named;
  json_t *list; /* distinct owners, in key order, at most AUTH_OWNERS_MAX */
  int named_found;
} auth_owners_ctx;

static int auth_owners_row(void *ud, const store_key *k) {
  auth_owners_ctx *ctx = ud;
  if (k->revoked_ms != 0)
    return 0;
  if (ctx->named && strcmp(ctx->named, k->owner) == 0)
    ctx->named_found = 1;
  size_t i;
  json_t *v;
  json_array_foreach(ctx->list, i, v) {
    if (strcmp(json_string_value(v), k->owner) == 0)
      return 0;
  }
  if (json_array_size(ctx->list) < AUTH_OWNERS_MAX)
    json_array_append_new(ctx->list, json_string(k->owner));
  return 0;
}

static int auth_owners_list(chubd_server *srv, const char *named,
                            auth_owners_ctx *ctx) {
  ctx->named = named;
  ctx->list = json_array();
  ctx->named_found = 0;
  if (srv->st->ops->key_list(srv->st, auth_owners_row, ctx) != STORE_OK) {
    json_decref(ctx->list);
    ctx->list = NULL;
    return -1;
  }
  return 0;
}

int auth_owners(chubd_server *srv, const char *named,
                char first[STORE_OWNER_MAX + 1]) {
  auth_owners_ctx ctx;
  if (auth_owners_list(srv, named && *named ? named : NULL, &ctx) < 0)
    return -1;
  int count =
      named && *named ? ctx.named_found : (int)json_array_size(ctx.list);
  first[0] = '\0';
  if (json_array_size(ctx.list) > 0)
    snprintf(first, STORE_OWNER_MAX + 1, "%s",
             json_string_value(json_array_get(ctx.list, 0)));
  json_decref(ctx.list);
  return count;
}

void auth_ui_owners(chubd_request *req, chubd_reply *rep) {
  if (req->has_key) {
    reply_data(rep, 200,
               json_pack("{s:[s], s:s}", "owners", req->key.owner, "you",
                         req->key.owner),
               "");
    return;
  }
  auth_owners_ctx ctx;
  if (auth_owners_list(req->srv, NULL, &ctx) < 0) {
    reply_error(rep, 500, "database error (see the chubd log)");
    return;
  }
  reply_data(rep, 200, json_pack("{s:o, s:n}", "owners", ctx.list, "you"), "");
}
