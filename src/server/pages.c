/*
 * pages.c - the pages a person opens: /, /models/{id}, /login and
 * /static/NAME, served from the assets embedded in the binary (web/).
 *
 * The pages themselves need no key; the data they show comes from the /ui
 * endpoints, which auth.c guards. Assets carry an ETag so that a browser
 * polling a live page revalidates instead of downloading them again.
 */
#include "server.h"

#include <string.h>

#ifdef CHUBD_HAVE_WEB
#include "web/web.h"

void pages_get(chubd_request *req, chubd_reply *rep) {
  const chubd_asset *a = chubd_web_asset(req->r.asset);
  if (!a) {
    reply_error(rep, 404, "no such page: %s", req->r.asset);
    return;
  }
  if (a->etag) {
    reply_header(rep, "ETag", "%s", a->etag);
    const char *inm = httpd_header(req, "if-none-match");
    if (inm && strstr(inm, a->etag)) {
      rep->status = 304;
      return;
    }
  }
  reply_header(rep, "Cache-Control", "no-cache");
  rep->status = 200;
  rep->ctype = a->content_type;
  rep->static_body = a->data;
  rep->len = a->len;
}

#else

void pages_get(chubd_request *req, chubd_reply *rep) {
  reply_error(rep, 404,
              "no such page: %s (this chubd was built without its pages)",
              req->r.asset);
}

#endif
