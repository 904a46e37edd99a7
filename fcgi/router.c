#include <config.h>

#include "router.h"

#include <strings.h>

#include "auth.h"
#include "common/buf.h"
#include "handlers.h"
#include "response.h"

struct route
{
  const char *method;
  const char *pattern;
  boxer_handler_fn handler;
  bool public;          /* answered without an API key */
};

/* One line per endpoint; see boxer_router_match () for the patterns.  */
static const struct route routes[] = {
  { "POST", "/run", boxer_handle_run, false },
  { "POST", "/batch", boxer_handle_batch, false },
  { "GET", "/health", boxer_handle_health, true },
  { "GET", "/metrics", boxer_handle_metrics, true },
  { "POST", "/files", boxer_handle_files_upload, false },
  { "GET", "/runs/{}", boxer_handle_run_get, false },
  { "GET", "/runs/{}/outputs", boxer_handle_run_outputs, false },
  { "GET", "/runs/{}/outputs/{*}", boxer_handle_run_output, false },
  { "GET", "/images", boxer_handle_images_list, false },
  { "POST", "/images/pull", boxer_handle_images_pull, false },
  { "DELETE", "/images/{*}", boxer_handle_images_delete, false },
  { "POST", "/sessions", boxer_handle_session_create, false },
  { "GET", "/sessions/{}", boxer_handle_session_get, false },
  { "DELETE", "/sessions/{}", boxer_handle_session_delete, false },
  { "POST", "/sessions/{}/exec", boxer_handle_session_exec, false },
  { "PUT", "/sessions/{}/files/{*}", boxer_handle_session_put_file, false },
  { "GET", "/sessions/{}/files/{*}", boxer_handle_session_get_file, false },
};

/* Read what is left of the body, and drop it, before a refusal is
   answered: a web server still sending it to a worker that has answered
   and ended the request may take the closed stream for a dead worker (a
   502 instead of our 413).  The web server bounds the body it passes on
   (nginx: client_max_body_size), so this ends.  */
static void
drain_body (struct boxer_http *http)
{
  char chunk[65536];

  while (FCGX_GetStr (chunk, sizeof chunk, http->fcgi->in) > 0)
    ;
}

int
boxer_http_read_body (struct boxer_http *http, size_t limit, char **out, size_t *len_out,
                      struct boxer_error **err)
{
  const char *cl = FCGX_GetParam ("CONTENT_LENGTH", http->fcgi->envp);
  /* Released on every return, the early refusals included.  */
  cleanup_buf struct boxer_buf body = { 0 };
  char chunk[65536];
  int n;

  if (cl && *cl)
    {
      char *end;
      unsigned long long declared = strtoull (cl, &end, 10);
      if (*end != '\0')
        return boxer_error_make (err, BOXER_ERR_INVALID, "Content-Length is not a number");
      if (declared > limit)
        {
          drain_body (http);
          return boxer_error_make (err, BOXER_ERR_TOO_LARGE,
                                   "request body of %llu bytes is over the limit of %zu bytes",
                                   declared, limit);
        }
    }

  boxer_buf_init (&body, limit);
  while ((n = FCGX_GetStr (chunk, sizeof chunk, http->fcgi->in)) > 0)
    if (boxer_buf_append (&body, chunk, n, err) < 0)
      {
        drain_body (http);
        return boxer_error_wrap (err, "request body");
      }
  *out = boxer_buf_steal (&body, len_out);
  return 0;
}

bool
boxer_http_content_type_is (const struct boxer_http *http, const char *mime)
{
  const char *ct = http->content_type;
  size_t n = strlen (mime);

  return ct && strncasecmp (ct, mime, n) == 0
         && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t');
}

static int
hex_value (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

char *
boxer_http_decode (const char *s, size_t len, struct boxer_error **err)
{
  cleanup_free char *out = xmalloc (len + 1);
  size_t o = 0;

  for (size_t i = 0; i < len; i++)
    {
      if (s[i] != '%')
        {
          out[o++] = s[i];
          continue;
        }
      {
        int hi = i + 2 < len ? hex_value (s[i + 1]) : -1;
        int lo = i + 2 < len ? hex_value (s[i + 2]) : -1;
        /* An encoded NUL would cut the string short later.  */
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
          goto bad;
        out[o++] = (char) (hi * 16 + lo);
        i += 2;
      }
    }
  out[o] = '\0';
  return steal_pointer (&out);

bad:
  boxer_error_make (err, BOXER_ERR_INVALID, "the request path has a bad percent-escape");
  return NULL;
}

int
boxer_router_match (const char *pattern, const char *path, char **params, size_t *nparams,
                    struct boxer_error **err)
{
  const char *p = pattern, *s = path;
  size_t n = 0;

  while (*p)
    {
      size_t len;

      if (strcmp (p, "{*}") == 0)
        len = strlen (s);
      else if (strncmp (p, "{}", 2) == 0)
        len = strcspn (s, "/");
      else
        {
          if (*p != *s)
            goto no;
          p++, s++;
          continue;
        }
      if (len == 0 || n == BOXER_HTTP_MAX_PARAMS)
        goto no;
      params[n] = boxer_http_decode (s, len, err);
      if (params[n] == NULL)
        {
          for (size_t i = 0; i < n; i++)
            free (params[i]);
          *nparams = 0;
          return -1;
        }
      n++;
      s += len;
      p += p[1] == '*' ? 3 : 2;
    }
  if (*s == '\0')
    {
      *nparams = n;
      return 1;
    }
no:
  for (size_t i = 0; i < n; i++)
    free (params[i]);
  *nparams = 0;
  return 0;
}

static void
release_params (struct boxer_http *http)
{
  for (size_t i = 0; i < http->nparams; i++)
    free (http->params[i]);
  http->nparams = 0;
}

void
boxer_router_dispatch (struct boxer_server *srv, struct boxer_http *http)
{
  cleanup_error struct boxer_error *err = NULL;
  char allow[128] = "";
  bool path_known = false;

  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
    {
      int m = boxer_router_match (routes[i].pattern, http->path, http->params, &http->nparams,
                                  &err);
      if (m < 0)
        goto fail;
      if (m == 0)
        continue;
      path_known = true;
      if (strcmp (routes[i].method, http->method) == 0)
        {
          int r;
          if (!routes[i].public && srv->cfg->n_api_keys > 0
              && boxer_auth_find (srv->cfg, FCGX_GetParam ("HTTP_AUTHORIZATION", http->fcgi->envp),
                                  &http->key, &err) < 0)
            {
              release_params (http);
              goto fail;
            }
          r = routes[i].handler (srv, http, &err);
          release_params (http);
          if (r == 0)
            return;
          goto fail;
        }
      release_params (http);
      if (!strstr (allow, routes[i].method))
        snprintf (allow + strlen (allow), sizeof allow - strlen (allow), "%s%s",
                  allow[0] ? ", " : "", routes[i].method);
    }

  if (path_known)
    {
      cleanup_free char *header = xasprintf ("Allow: %s\r\n", allow);
      cleanup_free char *method = boxer_quote (http->method, strlen (http->method), 16);
      boxer_error_make (&err, BOXER_ERR_METHOD, "%s is not allowed on this path; use %s", method,
                        allow);
      http->status = boxer_http_status (err->category, &http->error_code);
      boxer_reply_error_headers (http->fcgi, err, http->request_id, header);
      return;
    }
  boxer_error_make (&err, BOXER_ERR_NOT_FOUND, "no such endpoint; see the API reference");

fail:
  http->status = boxer_http_status (err->category, &http->error_code);
  boxer_reply_error (http->fcgi, err, http->request_id);
}
