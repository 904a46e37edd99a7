/* Sessions (API.md, "Sessions"): POST /sessions, GET and DELETE
   /sessions/{id}, POST /sessions/{id}/exec, PUT and GET
   /sessions/{id}/files/{path}.  The executor's keeper of each session does
   the work (executor/session.h); a worker parses, checks and answers.  */
#include <config.h>

#include "common/log.h"
#include "common/paths.h"
#include "auth.h"
#include "cache/registry.h"
#include "exec_client.h"
#include "executor/expiry.h"
#include "executor/protocol.h"
#include "handlers.h"
#include "request.h"
#include "response.h"
#include "sse.h"

static json_object *
timestamp (int64_t t)
{
  char buf[32];

  boxer_format_time (buf, t);
  return json_object_new_string (buf);
}

static json_object *
limits_json (const struct boxer_limits *l)
{
  json_object *o = json_object_new_object ();

  json_object_object_add (o, "memory_mb", json_object_new_int64 (l->memory_mb));
  json_object_object_add (o, "cpu_cores", json_object_new_double (l->cpu_cores));
  json_object_object_add (o, "wall_clock_secs", json_object_new_int64 (l->wall_clock_secs));
  json_object_object_add (o, "pids_limit", json_object_new_int64 (l->pids_limit));
  json_object_object_add (o, "nofile", json_object_new_int64 (l->nofile));
  return o;
}

/* The Session object of API.md.  */
static json_object *
session_json (const struct boxer_session_info *s)
{
  json_object *o = json_object_new_object ();

  json_object_object_add (o, "id", json_object_new_string (s->id));
  json_object_object_add (o, "image", json_object_new_string (s->image));
  json_object_object_add (o, "image_digest", json_object_new_string (s->digest));
  json_object_object_add (o, "network", json_object_new_string (boxer_proto_network_name (s->network)));
  json_object_object_add (o, "limits", limits_json (&s->limits));
  json_object_object_add (o, "idle_timeout_secs", json_object_new_int64 (s->idle_timeout_secs));
  json_object_object_add (o, "ttl_secs", json_object_new_int64 (s->ttl_secs));
  json_object_object_add (o, "created_at", timestamp (s->created_at));
  json_object_object_add (o, "expires_at", timestamp (s->created_at + s->ttl_secs));
  json_object_object_add (o, "last_used_at", timestamp (s->last_used_at));
  json_object_object_add (o, "execs", json_object_new_int64 (s->execs));
  return o;
}

static int
reply_session (struct boxer_http *http, int status, struct boxer_session_info *s)
{
  json_object *body = session_json (s);

  boxer_reply_json (http->fcgi, status, body, NULL);
  json_object_put (body);
  boxer_session_info_release (s);
  http->status = status;
  return 0;
}

/* {id} of the path, checked before it goes anywhere.  */
static int
session_id (const struct boxer_http *http, const char **id, struct boxer_error **err)
{
  *id = http->params[0];
  if (!boxer_expiry_id_is_valid (*id, BOXER_SESSION_ID_PREFIX, BOXER_SESSION_ID_HEX))
    return boxer_error_make (err, BOXER_ERR_SESSION_NOT_FOUND,
                             "no session of that id; session ids are 's_' and 32 hex digits");
  return 0;
}

int
boxer_handle_session_create (struct boxer_server *srv, struct boxer_http *http,
                             struct boxer_error **err)
{
  cleanup_image struct boxer_image *image = NULL;
  cleanup_free char *body = NULL;
  struct boxer_session_request req = { 0 };
  struct boxer_session_info info;
  uint64_t bytes0;
  long long t0;
  size_t len;
  int r;

  if (srv->cfg->max_sessions == 0)
    return boxer_error_make (err, BOXER_ERR_FORBIDDEN,
                             "this server has sessions turned off (max_sessions is 0)");
  if (http->key && !http->key->allow_sessions)
    return boxer_error_make (err, BOXER_ERR_FORBIDDEN,
                             "this API key may not open sessions; ask the operator to set the "
                             "key's allow_sessions");
  if (!boxer_http_content_type_is (http, "application/json"))
    return boxer_error_make (err, BOXER_ERR_UNSUPPORTED_MEDIA,
                             "POST /sessions takes a JSON body; send Content-Type: "
                             "application/json");
  if (boxer_http_read_body (http, 1024 * 1024, &body, &len, err) < 0
      || boxer_request_parse_session (srv->cfg, http->key, body, len, &req, err) < 0)
    return -1;
  t0 = boxer_now_ms ();
  bytes0 = boxer_registry_bytes_received ();
  r = boxer_cache_acquire (srv->cache, req.req.image,
                           http->key == NULL || http->key->allow_images, &image, err);
  http->pull_ms = boxer_now_ms () - t0;
  http->pulled_bytes = (int64_t) (boxer_registry_bytes_received () - bytes0);
  if (r == 0)
    r = boxer_exec_session_create (srv->cfg, boxer_auth_owner (http), &req, image,
                                   http->fcgi->ipcFd, &info, err);
  if (r == 0)
    {
      /* The image as the client named it, as a run result says it.  */
      free (info.image);
      info.image = xstrdup (req.req.image);
    }
  boxer_run_request_release (&req.req);
  if (r < 0)
    return -1;
  boxer_log_info ("session %s created, image %s", info.id, info.image);
  return reply_session (http, 201, &info);
}

int
boxer_handle_session_get (struct boxer_server *srv, struct boxer_http *http,
                          struct boxer_error **err)
{
  struct boxer_session_info info;
  const char *id;

  if (session_id (http, &id, err) < 0
      || boxer_exec_session_simple (srv->cfg, boxer_auth_owner (http), id, http->fcgi->ipcFd,
                                    &info, err) < 0)
    return -1;
  return reply_session (http, 200, &info);
}

int
boxer_handle_session_delete (struct boxer_server *srv, struct boxer_http *http,
                             struct boxer_error **err)
{
  const char *id;

  if (session_id (http, &id, err) < 0
      || boxer_exec_session_simple (srv->cfg, boxer_auth_owner (http), id, http->fcgi->ipcFd,
                                    NULL, err) < 0)
    return -1;
  boxer_reply_empty (http->fcgi, 204);
  http->status = 204;
  return 0;
}

int
boxer_handle_session_exec (struct boxer_server *srv, struct boxer_http *http,
                           struct boxer_error **err)
{
  cleanup_free char *body = NULL;
  cleanup_sse struct boxer_sse sse = { 0 };
  struct boxer_run_sink sink = boxer_sse_sink (&sse);
  bool streamed = boxer_sse_wanted (http->fcgi, "text/event-stream");
  struct boxer_run_request req = { 0 };
  struct boxer_run_result res;
  json_object *reply;
  const char *id;
  size_t len;
  int r;

  if (session_id (http, &id, err) < 0)
    return -1;
  if (!boxer_http_content_type_is (http, "application/json"))
    return boxer_error_make (err, BOXER_ERR_UNSUPPORTED_MEDIA,
                             "an exec takes a JSON body; send Content-Type: application/json");
  if (boxer_http_read_body (http, srv->cfg->upload_limit_bytes, &body, &len, err) < 0
      || boxer_request_parse_exec (srv->cfg, http->key, body, len, &req, err) < 0)
    return -1;
  boxer_sse_init (&sse, http->fcgi, 1);
  r = boxer_exec_session_exec (srv->cfg, boxer_auth_owner (http), id, &req, http->fcgi->ipcFd,
                               streamed ? &sink : NULL, &res, err);
  boxer_run_request_release (&req);
  if (r < 0)
    return sse.begun ? boxer_sse_fail (&sse, http, err) : -1;
  reply = boxer_run_result_to_json (&res);
  boxer_run_result_release (&res);
  boxer_sse_answer (&sse, streamed, reply);
  json_object_put (reply);
  http->status = 200;
  return 0;
}

/* {path} of a files route as the sandbox's absolute path (caller frees),
   checked as an upload's destination is.  */
static char *
file_path (const struct boxer_http *http, struct boxer_error **err)
{
  char *path = xasprintf ("/%s", http->params[1]);

  if (boxer_paths_check_destination (path, strlen (path), "the file's path", err) < 0)
    {
      free (path);
      return NULL;
    }
  return path;
}

int
boxer_handle_session_put_file (struct boxer_server *srv, struct boxer_http *http,
                               struct boxer_error **err)
{
  cleanup_free char *body = NULL;
  cleanup_free char *path = NULL;
  const char *id;
  size_t len;

  if (session_id (http, &id, err) < 0 || (path = file_path (http, err)) == NULL
      || boxer_http_read_body (http, srv->cfg->upload_limit_bytes, &body, &len, err) < 0
      || boxer_exec_session_put (srv->cfg, boxer_auth_owner (http), id, path, body, len,
                                 http->fcgi->ipcFd, err) < 0)
    return -1;
  boxer_reply_empty (http->fcgi, 204);
  http->status = 204;
  return 0;
}

int
boxer_handle_session_get_file (struct boxer_server *srv, struct boxer_http *http,
                               struct boxer_error **err)
{
  cleanup_free char *path = NULL;
  cleanup_free char *data = NULL;
  const char *id;
  size_t len;

  if (session_id (http, &id, err) < 0 || (path = file_path (http, err)) == NULL
      || boxer_exec_session_get (srv->cfg, boxer_auth_owner (http), id, path, http->fcgi->ipcFd,
                                 &data, &len, err) < 0)
    return -1;
  boxer_reply_text (http->fcgi, 200, "application/octet-stream", data ? data : "", len);
  http->status = 200;
  return 0;
}
