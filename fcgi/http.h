/* What a handler sees of an HTTP request, and the helpers every handler
   uses to read it.  */
#ifndef BOXER_FCGI_HTTP_H
#define BOXER_FCGI_HTTP_H

#include <fcgiapp.h>
#include <stdbool.h>

#include "cache/cache.h"
#include "executor/executor.h"

#define BOXER_HTTP_MAX_PARAMS 4

struct boxer_server
{
  const struct boxer_config *cfg;
  struct boxer_cache *cache;
};

struct boxer_http
{
  FCGX_Request *fcgi;
  const char *method;
  char *path;               /* raw (still percent-encoded), query removed */
  const char *query;        /* after '?', or "" */
  const char *content_type; /* may be NULL */
  char request_id[24];
  int status;               /* what was answered, for the access log and metrics */
  const char *error_code;   /* the API error code answered, or NULL */
  int64_t pull_ms;          /* POST /run: how long finding the image took; -1: not looked */
  int64_t pulled_bytes;     /* received from registries for this request */
  /* The parts of the path that matched the route's {} and {*}, percent-decoded.  */
  char *params[BOXER_HTTP_MAX_PARAMS];
  size_t nparams;
  /* The API key the request authenticated with; NULL when the config has
     none (or the route is public).  */
  const struct boxer_api_key *key;
};

/* Read the whole body, refusing more than limit bytes (BOXER_ERR_TOO_LARGE)
   before holding them.  */
int boxer_http_read_body (struct boxer_http *http, size_t limit, char **out, size_t *len_out,
                          struct boxer_error **err);

/* Whether the request's Content-Type is mime (case-insensitive, parameters
   such as charset allowed).  */
bool boxer_http_content_type_is (const struct boxer_http *http, const char *mime);

/* Percent-decode one path segment; NULL (BOXER_ERR_INVALID) for bad escapes
   or an encoded NUL.  */
char *boxer_http_decode (const char *s, size_t len, struct boxer_error **err);

#endif
