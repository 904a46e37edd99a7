#include <config.h>

#include "response.h"

#include "common/log.h"
#include "common/utf8.h"

/* retry_after: seconds for the Retry-After header (0: none).  A disk
   budget frees room when the sweep removes expired entries, at most a
   minute apart; API.md has no status of its own for it, so it is "busy".  */
static const struct
{
  enum boxer_error_category category;
  int status;
  const char *code;
  int retry_after;
} status_table[] = {
  { BOXER_ERR_INTERNAL, 500, "internal", 0 },
  { BOXER_ERR_INVALID, 400, "invalid_request", 0 },
  { BOXER_ERR_FORBIDDEN, 403, "forbidden", 0 },
  { BOXER_ERR_NOT_FOUND, 404, "not_found", 0 },
  { BOXER_ERR_IMAGE_NOT_FOUND, 404, "image_not_found", 0 },
  { BOXER_ERR_RUN_NOT_FOUND, 404, "run_not_found", 0 },
  { BOXER_ERR_FILE_NOT_FOUND, 404, "file_not_found", 0 },
  { BOXER_ERR_METHOD, 405, "method_not_allowed", 0 },
  { BOXER_ERR_TOO_LARGE, 413, "payload_too_large", 0 },
  { BOXER_ERR_UNSUPPORTED_MEDIA, 415, "unsupported_media_type", 0 },
  { BOXER_ERR_REGISTRY, 502, "registry_error", 0 },
  { BOXER_ERR_BUSY, 503, "busy", 1 },
  { BOXER_ERR_RUNTIME, 503, "runtime_unavailable", 0 },
  { BOXER_ERR_NO_SPACE, 503, "busy", 60 },
  { BOXER_ERR_UNAUTHORIZED, 401, "unauthorized", 0 },
  { BOXER_ERR_TOO_MANY, 429, "too_many_requests", 1 },
  { BOXER_ERR_SESSION_NOT_FOUND, 404, "session_not_found", 0 },
};

static const struct
{
  int status;
  const char *reason;
} reasons[] = {
  { 200, "OK" },
  { 201, "Created" },
  { 204, "No Content" },
  { 400, "Bad Request" },
  { 401, "Unauthorized" },
  { 403, "Forbidden" },
  { 404, "Not Found" },
  { 405, "Method Not Allowed" },
  { 413, "Payload Too Large" },
  { 415, "Unsupported Media Type" },
  { 429, "Too Many Requests" },
  { 500, "Internal Server Error" },
  { 502, "Bad Gateway" },
  { 503, "Service Unavailable" },
};

int
boxer_http_status (enum boxer_error_category category, const char **code_out)
{
  for (size_t i = 0; i < sizeof status_table / sizeof status_table[0]; i++)
    if (status_table[i].category == category)
      {
        *code_out = status_table[i].code;
        return status_table[i].status;
      }
  *code_out = "internal";
  return 500;
}

const char *
boxer_http_reason (int status)
{
  for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
    if (reasons[i].status == status)
      return reasons[i].reason;
  return "Unknown";
}

void
boxer_reply_json (FCGX_Request *req, int status, json_object *body, const char *extra_headers)
{
  size_t len;
  const char *text = json_object_to_json_string_length (
    body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

  cleanup_free char *head = NULL;

  /* libfcgi's own printf knows no %zu: format the header with ours.  */
  head = xasprintf ("Status: %d %s\r\n"
                    "Content-Type: application/json; charset=utf-8\r\n"
                    "Content-Length: %zu\r\n"
                    "Cache-Control: no-store\r\n"
                    "%s\r\n",
                    status, boxer_http_reason (status), len + 1,
                    extra_headers ? extra_headers : "");
  FCGX_PutS (head, req->out);
  FCGX_PutStr (text, (int) len, req->out);
  FCGX_PutChar ('\n', req->out);
}

void
boxer_reply_text (FCGX_Request *req, int status, const char *content_type, const char *text,
                  size_t len)
{
  cleanup_free char *head = xasprintf ("Status: %d %s\r\n"
                                       "Content-Type: %s\r\n"
                                       "Content-Length: %zu\r\n"
                                       "Cache-Control: no-store\r\n"
                                       "\r\n",
                                       status, boxer_http_reason (status), content_type, len);

  FCGX_PutS (head, req->out);
  FCGX_PutStr (text, (int) len, req->out);
}

void
boxer_reply_fd (FCGX_Request *req, int status, const char *content_type, int fd, int64_t len)
{
  cleanup_free char *head = xasprintf ("Status: %d %s\r\n"
                                       "Content-Type: %s\r\n"
                                       "Content-Length: %lld\r\n"
                                       "Cache-Control: no-store\r\n"
                                       "X-Content-Type-Options: nosniff\r\n"
                                       "\r\n",
                                       status, boxer_http_reason (status), content_type,
                                       (long long) len);
  char chunk[65536];
  int64_t left = len;

  FCGX_PutS (head, req->out);
  while (left > 0)
    {
      ssize_t n = read (fd, chunk, left < (int64_t) sizeof chunk ? (size_t) left : sizeof chunk);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          /* The header is out: all that is left is to cut the body short,
             which the client sees as a short read.  */
          boxer_log_error ("reply: file ended %lld bytes early: %s", (long long) left,
                           n < 0 ? strerror (errno) : "end of file");
          FCGX_SetExitStatus (1, req->out);
          return;
        }
      if (FCGX_PutStr (chunk, (int) n, req->out) != (int) n)
        return;         /* the client went away */
      left -= n;
    }
}

void
boxer_reply_empty (FCGX_Request *req, int status)
{
  cleanup_free char *head = xasprintf ("Status: %d %s\r\n\r\n", status,
                                       boxer_http_reason (status));
  FCGX_PutS (head, req->out);
}

void
boxer_reply_error (FCGX_Request *req, const struct boxer_error *error, const char *request_id)
{
  boxer_reply_error_headers (req, error, request_id, NULL);
}

json_object *
boxer_error_body (const struct boxer_error *error, const char *request_id)
{
  const char *code;
  int status = boxer_http_status (error->category, &code);
  json_object *body = json_object_new_object ();
  json_object *e = json_object_new_object ();
  cleanup_free char *generic = NULL;
  const char *message = error->msg;

  if (status >= 500)
    boxer_log_error ("%s", error->msg);
  if (error->category == BOXER_ERR_INTERNAL)
    {
      generic = xasprintf ("internal error; the server log has the details under request id %s",
                           request_id);
      message = generic;
    }
  json_object_object_add (e, "code", json_object_new_string (code));
  json_object_object_add (e, "message", json_object_new_string (message));
  json_object_object_add (body, "error", e);
  return body;
}

void
boxer_reply_error_headers (FCGX_Request *req, const struct boxer_error *error,
                           const char *request_id, const char *extra_headers)
{
  const char *code;
  int status = boxer_http_status (error->category, &code);
  json_object *body = boxer_error_body (error, request_id);
  cleanup_free char *extra = xstrdup (extra_headers ? extra_headers : "");

  /* RFC 6750: a 401 names the scheme it wants.  */
  if (error->category == BOXER_ERR_UNAUTHORIZED)
    {
      char *more = xasprintf ("%sWWW-Authenticate: Bearer realm=\"boxer\"\r\n", extra);
      free (extra);
      extra = more;
    }
  for (size_t i = 0; i < sizeof status_table / sizeof status_table[0]; i++)
    if (status_table[i].category == error->category && status_table[i].retry_after > 0)
      {
        char *more = xasprintf ("%sRetry-After: %d\r\n", extra, status_table[i].retry_after);
        free (extra);
        extra = more;
      }
  boxer_reply_json (req, status, body, extra);
  json_object_put (body);
}

static json_object *
text (const char *data, size_t len)
{
  size_t clean_len;
  cleanup_free char *clean = boxer_utf8_sanitize (data ? data : "", data ? len : 0, &clean_len);
  return json_object_new_string_len (clean, (int) clean_len);
}

static json_object *
timestamp (long long t)
{
  char buf[32];
  boxer_format_time (buf, t);
  return json_object_new_string (buf);
}

json_object *
boxer_run_outputs_to_json (const struct boxer_run_result *res)
{
  json_object *a = json_object_new_array ();

  /* Paths were checked to be valid UTF-8 when they were captured.  */
  for (size_t i = 0; i < res->noutputs; i++)
    {
      json_object *f = json_object_new_object ();
      json_object_object_add (f, "path", json_object_new_string (res->outputs[i].path));
      json_object_object_add (f, "size", json_object_new_int64 (res->outputs[i].size));
      json_object_array_add (a, f);
    }
  return a;
}

json_object *
boxer_run_result_to_json (const struct boxer_run_result *res)
{
  json_object *o = json_object_new_object ();

  json_object_object_add (o, "id", json_object_new_string (res->id));
  json_object_object_add (o, "image", json_object_new_string (res->image));
  json_object_object_add (o, "image_digest", json_object_new_string (res->image_digest));
  json_object_object_add (o, "exit_code", json_object_new_int (res->exit_code));
  json_object_object_add (o, "signal", res->signal ? json_object_new_int (res->signal) : NULL);
  json_object_object_add (o, "timed_out", json_object_new_boolean (res->timed_out));
  json_object_object_add (o, "oom_killed", json_object_new_boolean (res->oom_killed));
  json_object_object_add (o, "stdout", text (res->stdout_data, res->stdout_len));
  json_object_object_add (o, "stderr", text (res->stderr_data, res->stderr_len));
  json_object_object_add (o, "stdout_truncated", json_object_new_boolean (res->stdout_truncated));
  json_object_object_add (o, "stderr_truncated", json_object_new_boolean (res->stderr_truncated));
  json_object_object_add (o, "wall_ms", json_object_new_int64 (res->wall_ms));
  json_object_object_add (o, "outputs", boxer_run_outputs_to_json (res));
  json_object_object_add (o, "outputs_truncated", json_object_new_boolean (res->outputs_truncated));
  json_object_object_add (o, "started_at", timestamp (res->started_at));
  json_object_object_add (o, "finished_at", timestamp (res->finished_at));
  return o;
}
