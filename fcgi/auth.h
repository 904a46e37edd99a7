/* Who is asking (API.md, "API keys").  With api_keys in the config, every
   route but the public ones needs "Authorization: Bearer <key>"; what a
   request makes belongs to its key, and other keys are answered as if it
   did not exist.  Without api_keys, nothing here refuses anything.  */
#ifndef BOXER_FCGI_AUTH_H
#define BOXER_FCGI_AUTH_H

#include <fcgiapp.h>

#include "http.h"

/* Longest Authorization header taken (a key is far shorter).  */
#define BOXER_AUTH_HEADER_MAX 4096

/* The key of the Authorization header value (NULL: no header) among
   cfg's keys: BOXER_ERR_UNAUTHORIZED for none, a malformed one or an
   unknown key; the key itself is never in the message.  Pure.  */
int boxer_auth_find (const struct boxer_config *cfg, const char *authorization,
                     const struct boxer_api_key **out, struct boxer_error **err);

/* The owner recorded with what this request makes: its key's name, or
   NULL without keys.  */
const char *boxer_auth_owner (const struct boxer_http *http);

/* Whether this request may see something recorded with owner (NULL: made
   without a key).  With keys configured only the owning key may; without,
   everyone.  */
bool boxer_auth_may_see (const struct boxer_server *srv, const struct boxer_http *http,
                         const char *owner);

/* Pulls and deletions of images: BOXER_ERR_FORBIDDEN unless the key has
   allow_images (or there are no keys).  what: "pull", "delete"...  */
int boxer_auth_check_images (const struct boxer_http *http, const char *what,
                             struct boxer_error **err);

#endif
