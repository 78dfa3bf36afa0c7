/*
 * upload.h - one streamed multipart/form-data upload: the file part goes
 * to a temporary file under DATA/tmp while it is hashed, so memory stays
 * flat whatever its size; small form fields are handed to the caller one
 * by one, whole. Weights (weights.c) and datasets (datasets.c) are both
 * uploaded through it and differ only in which fields they take and what
 * a finished file becomes.
 */
#ifndef CHUBD_UPLOAD_H
#define CHUBD_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "validate.h"

struct chubd_request;
struct chubd_reply;

typedef struct upload upload;

/* Room each upload keeps for its caller's own state (the fields read so
 * far), zeroed at the start; see upload_state. */
#define UPLOAD_STATE_MAX 256

/* Called for each whole form field with the upload's state; returns 0, or
 * -1 with a message for the 400 answer in err. */
typedef int (*upload_field_fn)(void *state, const char *name, const char *value,
                               char err[VALIDATE_ERR]);
/* Whether a part is the file (given its field name and file name, which
 * may be NULL). */
typedef int (*upload_is_file_fn)(const char *name, const char *filename);

/* Checks the request (Content-Type, declared size against `max`) and
 * opens the upload as req->upload. Returns 0, or the status of the error
 * written to rep. */
unsigned upload_begin(struct chubd_request *req, struct chubd_reply *rep,
                      uint64_t max, upload_is_file_fn is_file,
                      upload_field_fn field);

/* The same for a body that is the file itself (a PUT of
 * application/octet-stream), to be named `filename`. */
unsigned upload_begin_raw(struct chubd_request *req, struct chubd_reply *rep,
                          uint64_t max, const char *filename);

/* The caller's state of this upload (UPLOAD_STATE_MAX bytes, aligned for
 * any type). */
void *upload_state(upload *up);

/* Feeds body bytes; returns 0, or an error status written to rep. */
unsigned upload_data(struct chubd_request *req, const char *data, size_t size,
                     struct chubd_reply *rep);

/* Ends the body: 0 with the file's SHA-256 (checked against x-chub-sha256
 * when sent) in sha, or the status of the error in rep. A file of 0 bytes
 * or no file part at all is an error naming `what`. */
unsigned upload_finish(struct chubd_request *req, struct chubd_reply *rep,
                       const char *what, char sha[65]);

/* The finished file: its size, its name's suffix (".pt" unless another
 * plain one), its name as sent ("" when none), and its open fd and path,
 * whose ownership upload_take_file hands over (the caller then closes and
 * removes or commits them). */
uint64_t upload_size(const upload *up);
const char *upload_suffix(const upload *up);
const char *upload_filename(const upload *up);
int upload_take_file(upload *up, char *path, size_t n);

/* Drops an unfinished upload and its temporary file. */
void upload_free(upload *up);

#endif
