/* Boxer's one error contract.

   A function that can fail returns int (negative on failure) or a pointer
   (NULL on failure) and takes `struct boxer_error **err` last.  Creating an
   error returns -1, so a failure path fits one line:

     if (fd < 0)
       return boxer_error_errno (err, errno, "open '%s'", path);

   Callers add context on the way up with boxer_error_wrap ().  The category
   says what kind of failure it is; fcgi/ alone maps it to an HTTP status
   and error code.  Messages of categories other than BOXER_ERR_INTERNAL are
   shown to clients, so they must name only what the client sent, never a
   host path.  Internal messages are logged and replaced on the wire.  */
#ifndef BOXER_COMMON_ERROR_H
#define BOXER_COMMON_ERROR_H

#include "util.h"

enum boxer_error_category
{
  BOXER_ERR_INTERNAL = 0,
  BOXER_ERR_INVALID,            /* 400 invalid_request */
  BOXER_ERR_FORBIDDEN,          /* 403 forbidden */
  BOXER_ERR_NOT_FOUND,          /* 404 not_found */
  BOXER_ERR_IMAGE_NOT_FOUND,    /* 404 image_not_found */
  BOXER_ERR_RUN_NOT_FOUND,      /* 404 run_not_found */
  BOXER_ERR_FILE_NOT_FOUND,     /* 404 file_not_found */
  BOXER_ERR_METHOD,             /* 405 method_not_allowed */
  BOXER_ERR_TOO_LARGE,          /* 413 payload_too_large */
  BOXER_ERR_UNSUPPORTED_MEDIA,  /* 415 unsupported_media_type */
  BOXER_ERR_REGISTRY,           /* 502 registry_error */
  BOXER_ERR_BUSY,               /* 503 busy */
  BOXER_ERR_RUNTIME,            /* 503 runtime_unavailable */
  BOXER_ERR_NO_SPACE,           /* 503 busy: a disk budget or floor (Retry-After: 60) */
  BOXER_ERR_UNAUTHORIZED,       /* 401 unauthorized (WWW-Authenticate: Bearer) */
  BOXER_ERR_TOO_MANY,           /* 429 too_many_requests: the key's own bound (Retry-After: 1) */
  BOXER_ERR_SESSION_NOT_FOUND,  /* 404 session_not_found */
};

struct boxer_error
{
  enum boxer_error_category category;
  int errnum;                   /* errno when the error came from one, else 0 */
  char *msg;
};

int boxer_error_make (struct boxer_error **err, enum boxer_error_category category,
                      const char *fmt, ...) BOXER_PRINTF (3, 4);
/* An internal error whose message ends with strerror (errnum).  */
int boxer_error_errno (struct boxer_error **err, int errnum, const char *fmt, ...)
  BOXER_PRINTF (3, 4);
/* Prefix the message with "context: ", keeping category and errno.  */
int boxer_error_wrap (struct boxer_error **err, const char *fmt, ...) BOXER_PRINTF (2, 3);

void boxer_error_free (struct boxer_error *err);
/* Free *err and set it to NULL; safe on NULL.  */
void boxer_error_release (struct boxer_error **err);

#define cleanup_error __attribute__ ((cleanup (boxer_error_release)))

#endif
