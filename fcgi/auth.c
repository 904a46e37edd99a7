#include <config.h>

#include "auth.h"

#include <strings.h>

int
boxer_auth_find (const struct boxer_config *cfg, const char *authorization,
                 const struct boxer_api_key **out, struct boxer_error **err)
{
  const char *token;
  size_t len;

  *out = NULL;
  if (authorization == NULL || *authorization == '\0')
    return boxer_error_make (err, BOXER_ERR_UNAUTHORIZED,
                             "this server needs an API key: send 'Authorization: Bearer <key>'");
  len = strlen (authorization);
  if (len > BOXER_AUTH_HEADER_MAX || strncasecmp (authorization, "Bearer ", 7) != 0)
    return boxer_error_make (err, BOXER_ERR_UNAUTHORIZED,
                             "the Authorization header must be 'Bearer <key>'");
  token = authorization + 7;
  token += strspn (token, " ");
  len = strlen (token);
  while (len > 0 && token[len - 1] == ' ')
    len--;
  if (len == 0)
    return boxer_error_make (err, BOXER_ERR_UNAUTHORIZED,
                             "the Authorization header must be 'Bearer <key>'");
  *out = boxer_config_find_key (cfg, token, len);
  if (*out == NULL)
    return boxer_error_make (err, BOXER_ERR_UNAUTHORIZED,
                             "unknown API key; check the key, or ask the operator for one");
  return 0;
}

const char *
boxer_auth_owner (const struct boxer_http *http)
{
  return http->key ? http->key->name : NULL;
}

bool
boxer_auth_may_see (const struct boxer_server *srv, const struct boxer_http *http,
                    const char *owner)
{
  if (srv->cfg->n_api_keys == 0)
    return true;
  /* What was made before keys were configured belongs to no key.  */
  return http->key && owner && strcmp (owner, http->key->name) == 0;
}

int
boxer_auth_check_images (const struct boxer_http *http, const char *what,
                         struct boxer_error **err)
{
  if (http->key == NULL || http->key->allow_images)
    return 0;
  return boxer_error_make (err, BOXER_ERR_FORBIDDEN,
                           "this API key may not %s images; ask the operator to set "
                           "allow_images for it",
                           what);
}
