/*
 * links.c - the download URLs chubd hands out, and the check of one that
 * comes back.
 *
 * A URL is absolute under the hub's public root and names one blob of
 * one model, with a file name that is unique per blob and ends in the
 * uploaded file's suffix, because Ultralytics names its local copy after
 * that segment, reuses a file of that name without asking again, and
 * loads only names ending in .pt:
 *
 *   ROOT/v1/models/ID/weights/SHA256/ID-ROLE-SHA8.pt?expires=T&kid=K&sig=S
 *   ROOT/v1/datasets/ID/download/SHA256/SLUG-SHA8.zip?expires=T&kid=K&sig=S
 *
 * and one upload URL, for Ultralytics Platform's two-step weights upload
 * (platform.c), signed for PUT rather than GET:
 *
 *   ROOT/api/webhooks/models/ID/upload/{best.pt|last.pt}?expires=T&kid=K&sig=S
 *
 * S signs the method, the path, T and K (sign.h). K is the id of the key
 * the URL was issued to (0 for a page on a loopback listener, where no
 * key is used), looked up on every use so that a revoked key's URLs die
 * with it.
 */
#include "server.h"

#include <stdio.h>
#include <string.h>

static int links_host_ok(const char *host) {
  size_t n = strlen(host);
  if (n == 0 || n > 255)
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)host[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':' ||
          c == '[' || c == ']'))
      return 0;
  }
  return 1;
}

void links_root(const chubd_request *req, char *out, size_t n) {
  const chubd_config *cfg = &req->srv->cfg;
  if (atomic_load(&req->srv->public_url_ready) && cfg->public_url[0]) {
    snprintf(out, n, "%s", cfg->public_url);
    return;
  }
  /* A wildcard listener has no one name: answer with the one the client
   * used, when it is a plain host[:port]. */
  const char *host = httpd_header(req, "host");
  snprintf(out, n, "http://%s",
           host && links_host_ok(host) ? host : "127.0.0.1");
}

static void links_path(char *out, size_t n, route_kind kind, const char *id,
                       const char *sha, const char *name) {
  if (kind == ROUTE_PF_PUT) {
    snprintf(out, n, "/api/webhooks/models/%s/upload/%s", id, name);
    return;
  }
  snprintf(out, n,
           kind == ROUTE_DATASET_BLOB ? "/v1/datasets/%s/download/%s/%s"
                                      : "/v1/models/%s/weights/%s/%s",
           id, sha, name);
}

/* ROOT + path + the signed query, into out. */
static void links_sign_as(const chubd_request *req, const char *method,
                          const char *path, char *out, size_t n) {
  char root[600], sig[SIGN_HEX_LEN + 1];
  int64_t kid = req->has_key ? req->key.id : 0;
  int64_t expires = util_now_ms() / 1000 + req->srv->cfg.url_ttl_s;
  sign_compute(req->srv->url_secret, method, path, expires, kid, sig);
  links_root(req, root, sizeof root);
  snprintf(out, n, "%s%s?expires=%lld&kid=%lld&sig=%s", root, path,
           (long long)expires, (long long)kid, sig);
}

static void links_sign(const chubd_request *req, const char *path, char *out,
                       size_t n) {
  links_sign_as(req, "GET", path, out, n);
}

void links_upload(const chubd_request *req, const char *id, const char *file,
                  char *out, size_t n) {
  char path[400];
  links_path(path, sizeof path, ROUTE_PF_PUT, id, NULL, file);
  links_sign_as(req, "PUT", path, out, n);
}

void links_weights(const chubd_request *req, const char *id,
                   const store_checkpoint *c, const char *role, char *out,
                   size_t n) {
  char name[ROUTE_NAME_MAX + 1], path[400];
  snprintf(name, sizeof name, "%s-%s-%.8s%s", id, role, c->sha256,
           c->suffix[0] ? c->suffix : ".pt");
  links_path(path, sizeof path, ROUTE_MODEL_BLOB, id, c->sha256, name);
  links_sign(req, path, out, n);
}

void links_dataset(const chubd_request *req, const store_dataset *d,
                   const char *slug, char *out, size_t n) {
  char name[ROUTE_NAME_MAX + 1], path[400];
  snprintf(name, sizeof name, "%.64s-%.8s.zip", slug, d->sha256);
  links_path(path, sizeof path, ROUTE_DATASET_BLOB, d->id, d->sha256, name);
  links_sign(req, path, out, n);
}

/* msg says "download URL"; an upload URL is refused in the same words
 * about an upload URL. */
static unsigned links_refuse(const chubd_request *req, chubd_reply *rep,
                             const char *msg) {
  int put = req->r.kind == ROUTE_PF_PUT;
  if (put && strncmp(msg, "download URL", 12) == 0)
    reply_error(rep, 403, "upload URL%s", msg + 12);
  else
    reply_error(rep, 403, "%s", msg);
  return 403;
}

unsigned links_verify(chubd_request *req, chubd_reply *rep) {
  const char *sig = httpd_query(req, "sig");
  const char *exp_s = httpd_query(req, "expires");
  const char *kid_s = httpd_query(req, "kid");
  long long expires, kid;
  if (!sig || !exp_s || !kid_s)
    return links_refuse(req, rep,
                        "download URL is incomplete: it needs expires, "
                        "kid and sig; read the model again for a "
                        "fresh URL");
  if (validate_uint(exp_s, INT64_MAX / 2, &expires) < 0 ||
      validate_uint(kid_s, INT64_MAX / 2, &kid) < 0)
    return links_refuse(req, rep,
                        "download URL is malformed: expires and kid "
                        "must be integers");
  char path[400];
  links_path(path, sizeof path, req->r.kind, req->r.id, req->r.weights,
             req->r.name);
  const char *method = req->r.kind == ROUTE_PF_PUT ? "PUT" : "GET";
  if (!sign_check(req->srv->url_secret, method, path, expires, kid, sig))
    return links_refuse(req, rep,
                        "download URL signature does not match: the "
                        "URL was altered, or issued by another hub");
  int64_t now = util_now_ms() / 1000;
  if (now > expires) {
    char t[32];
    util_rfc3339(expires * 1000, t);
    reply_error(rep, 403, "%s URL expired at %s; %s",
                req->r.kind == ROUTE_PF_PUT ? "upload" : "download", t,
                req->r.kind == ROUTE_PF_PUT
                    ? "ask /api/webhooks/models/upload for a fresh URL"
                    : "read the model again for a fresh URL");
    return 403;
  }
  if (kid == 0) {
    /* Issued to a page of a loopback listener: good only while this hub
     * still serves its pages to loopback without a key. */
    if (!req->srv->open_pages)
      return links_refuse(req, rep,
                          "download URL was issued without a key, "
                          "which this hub no longer accepts");
    req->owner = NULL;
    return 0;
  }
  store *st = req->srv->st;
  store_rc rc = st->ops->key_get(st, kid, &req->key);
  if (rc == STORE_NOTFOUND || (rc == STORE_OK && req->key.revoked_ms != 0))
    return links_refuse(req, rep,
                        "the API key this download URL was issued to "
                        "was revoked; the URL no longer works");
  if (rc != STORE_OK) {
    reply_store(rep, rc, "API key");
    return rep->status;
  }
  req->owner = req->key.owner;
  return 0;
}
