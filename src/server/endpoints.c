/*
 * endpoints.c - the table of chubd's endpoints (see endpoints.h).
 *
 * Rows are looked up by route kind and method with a linear scan: the
 * table is a few dozen rows, read once per request.
 */
#include "endpoints.h"

#include <stddef.h>

#include "server.h"

#define GET (ROUTE_GET | ROUTE_HEAD)
#define NONE ENDPOINT_BODY_NONE
#define JSON ENDPOINT_BODY_JSON
#define UPLOAD ENDPOINT_BODY_UPLOAD
#define SYNC ENDPOINT_SYNC

static const endpoint endpoints[] = {
    /* who is asking */
    {ROUTE_AUTH, ROUTE_POST, -1, NONE, SYNC, NULL, auth_post},
    {ROUTE_HEALTH, GET, -1, NONE, SYNC, NULL, auth_health},
    {ROUTE_UI_LOGIN, ROUTE_POST, -1, JSON, SYNC, NULL, auth_ui_login},
    {ROUTE_UI_LOGOUT, ROUTE_POST, -1, NONE, SYNC, NULL, auth_ui_logout},
    {ROUTE_UI_OWNERS, GET, -1, NONE, SYNC, NULL, auth_ui_owners},
    /* models */
    {ROUTE_MODELS, GET, -1, NONE, SYNC, NULL, models_list},
    {ROUTE_MODELS, ROUTE_POST, 0, JSON, SYNC, NULL, models_create},
    {ROUTE_MODELS, ROUTE_POST, 1, JSON, SYNC, NULL, models_create_ui},
    {ROUTE_MODEL, GET, -1, NONE, SYNC, NULL, models_get},
    {ROUTE_MODEL, ROUTE_POST, 0, JSON, ENDPOINT_DEFERRED, NULL, NULL},
    {ROUTE_MODEL, ROUTE_PATCH, 0, JSON, SYNC, NULL, models_patch},
    {ROUTE_MODEL, ROUTE_DELETE, 0, NONE, SYNC, NULL, models_delete},
    {ROUTE_MODEL_RESET, ROUTE_POST, -1, JSON, SYNC, NULL, models_reset},
    {ROUTE_MODEL_EXPORT, ROUTE_POST, -1, NONE, SYNC, NULL, models_not_run},
    {ROUTE_GET_EXPORT, ROUTE_POST, -1, JSON, SYNC, NULL, models_not_run},
    {ROUTE_PREDICT, ROUTE_POST, -1, NONE, SYNC, NULL, models_not_run},
    /* metrics and weights */
    {ROUTE_MODEL_METRICS, GET, -1, NONE, SYNC, NULL, metrics_get},
    {ROUTE_MODEL_UPLOAD, ROUTE_POST, 0, UPLOAD, SYNC, weights_upload_begin,
     weights_upload_finish},
    {ROUTE_MODEL_WEIGHTS, GET, -1, NONE, SYNC, NULL, weights_get},
    {ROUTE_MODEL_BLOB, GET, -1, NONE, SYNC, NULL, weights_get},
    /* datasets */
    {ROUTE_DATASETS, GET, -1, NONE, SYNC, NULL, datasets_list},
    {ROUTE_DATASETS, ROUTE_POST, 0, JSON, SYNC, NULL, datasets_create},
    {ROUTE_DATASET, GET, -1, NONE, SYNC, NULL, datasets_get},
    {ROUTE_DATASET, ROUTE_PATCH, 0, JSON, SYNC, NULL, datasets_patch},
    {ROUTE_DATASET, ROUTE_DELETE, 0, NONE, SYNC, NULL, datasets_delete},
    {ROUTE_DATASET_UPLOAD, ROUTE_POST, 0, UPLOAD, SYNC, datasets_upload_begin,
     datasets_upload_finish},
    {ROUTE_DATASET_BLOB, GET, -1, NONE, SYNC, NULL, datasets_download},
    /* Ultralytics Platform runs, projects */
    {ROUTE_PF_METRICS, ROUTE_POST, -1, JSON, SYNC, NULL, platform_metrics},
    {ROUTE_PF_UPLOAD, ROUTE_POST, -1, JSON, SYNC, NULL, platform_upload},
    {ROUTE_PF_PUT, ROUTE_PUT, -1, UPLOAD, SYNC, platform_put_begin,
     platform_put_finish},
    {ROUTE_PF_MODEL, GET, -1, NONE, SYNC, NULL, platform_model_download},
    {ROUTE_PF_DATASET, GET, -1, NONE, SYNC, NULL, platform_dataset_export},
    {ROUTE_MODEL_STOP, ROUTE_POST, -1, NONE, SYNC, NULL, platform_stop},
    {ROUTE_MODEL_CONSOLE, GET, -1, NONE, SYNC, NULL, platform_console},
    {ROUTE_MODEL_RUN, GET, -1, NONE, SYNC, NULL, platform_run},
    {ROUTE_MODEL_SYSTEM, GET, -1, NONE, SYNC, NULL, system_list},
    {ROUTE_PROJECTS, GET, -1, NONE, SYNC, NULL, projects_list},
    {ROUTE_PROJECTS, ROUTE_POST, 0, JSON, SYNC, NULL, projects_create},
    {ROUTE_PROJECT, GET, -1, NONE, SYNC, NULL, projects_get},
    {ROUTE_PROJECT, ROUTE_PATCH, 0, JSON, SYNC, NULL, projects_patch},
    {ROUTE_PROJECT, ROUTE_DELETE, 0, NONE, SYNC, NULL, projects_delete},
    /* the rest of the hub */
    {ROUTE_HEARTBEAT, ROUTE_POST, -1, JSON, SYNC, NULL, heartbeat_post},
    {ROUTE_EVENTS, ROUTE_POST, -1, JSON, SYNC, NULL, usage_post},
    {ROUTE_PAGE, GET, -1, NONE, SYNC, NULL, pages_get},
    {ROUTE_PROMETHEUS, GET, -1, NONE, SYNC, NULL, prom_get},
};

const endpoint *endpoint_find(const route *r) {
  for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++) {
    const endpoint *e = &endpoints[i];
    if (e->kind == r->kind && (e->methods & r->method) &&
        (e->ui < 0 || e->ui == r->ui))
      return e;
  }
  return NULL;
}
