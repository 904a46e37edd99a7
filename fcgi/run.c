/* POST /run and GET /health.  */
#include <config.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "auth.h"
#include "cache/registry.h"
#include "exec_client.h"
#include "executor/records.h"
#include "handlers.h"
#include "request.h"
#include "response.h"
#include "sse.h"

int
boxer_handle_run (struct boxer_server *srv, struct boxer_http *http, struct boxer_error **err)
{
  cleanup_free char *body = NULL;
  struct boxer_run_request req = { 0 };
  size_t len;
  int r;

  /* One-shot upload and run: fcgi/files.c.  */
  if (boxer_http_content_type_is (http, "multipart/form-data"))
    return boxer_handle_run_multipart (srv, http, err);
  if (!boxer_http_content_type_is (http, "application/json"))
    return boxer_error_make (err, BOXER_ERR_UNSUPPORTED_MEDIA,
                             "POST /run takes a JSON body; send Content-Type: application/json "
                             "(or multipart/form-data with a 'request' part and files)");
  if (boxer_http_read_body (http, srv->cfg->upload_limit_bytes, &body, &len, err) < 0)
    return -1;
  if (boxer_request_parse_run (srv->cfg, http->key, body, len, &req, err) < 0)
    return -1;

  r = boxer_run_answer (srv, http, &req, err);
  boxer_run_request_release (&req);
  return r;
}

/* Run req and answer with its result, kept as the record id.  */
static int
run_and_record (struct boxer_server *srv, struct boxer_http *http,
                const struct boxer_run_request *req, char id[static 40],
                struct boxer_error **err)
{
  cleanup_image struct boxer_image *image = NULL;
  cleanup_close int output_fd = -1;
  struct boxer_run_result res;
  cleanup_sse struct boxer_sse sse = { 0 };
  struct boxer_run_sink sink = boxer_sse_sink (&sse);
  bool streamed = boxer_sse_wanted (http->fcgi, "text/event-stream");
  json_object *reply;
  long long t0;
  uint64_t bytes0;
  int r;

  /* Pulled as the pull policy says (if the key may pull), and held (never
     collected) until image is freed, after the run.  */
  t0 = boxer_now_ms ();
  bytes0 = boxer_registry_bytes_received ();
  r = boxer_cache_acquire (srv->cache, req->image, http->key == NULL || http->key->allow_images,
                           &image, err);
  http->pull_ms = boxer_now_ms () - t0;
  http->pulled_bytes = (int64_t) (boxer_registry_bytes_received () - bytes0);
  if (r < 0)
    return -1;
  if (boxer_random_id (id, BOXER_RECORD_ID_PREFIX, BOXER_RECORD_ID_HEX, err) < 0)
    return -1;
  boxer_sse_init (&sse, http->fcgi, 1);
  if (boxer_exec_run (srv->cfg, id, boxer_auth_owner (http), req, image, http->fcgi->ipcFd,
                      streamed ? &sink : NULL, &res, &output_fd, err) < 0)
    return sse.begun ? boxer_sse_fail (&sse, http, err) : -1;
  /* What the run wrote is read here, by the worker, never by the
     executor.  */
  if (boxer_records_capture (srv->cfg, id, output_fd, &res, err) < 0)
    {
      boxer_run_result_release (&res);
      return sse.begun ? boxer_sse_fail (&sse, http, err) : -1;
    }

  boxer_log_info ("run %s image=%s exit=%d timed_out=%d oom=%d wall_ms=%lld peak_mem=%lld", res.id,
                  res.image, res.exit_code, res.timed_out, res.oom_killed, (long long) res.wall_ms,
                  (long long) res.memory_peak_bytes);
  reply = boxer_run_result_to_json (&res);
  /* GET /runs/{id} answers with the same, from any worker.  */
  boxer_files_record_run (srv, http, &res, reply);
  boxer_run_result_release (&res);
  boxer_sse_answer (&sse, streamed, reply);
  json_object_put (reply);
  http->status = 200;
  return 0;
}

int
boxer_run_answer (struct boxer_server *srv, struct boxer_http *http,
                  const struct boxer_run_request *req, struct boxer_error **err)
{
  struct boxer_expiry_charge charge;
  char id[40] = "";
  int r;

  if (boxer_files_check_owners (srv, http, req, err) < 0)
    return -1;
  /* A run whose record could not be kept is refused before it starts.  */
  if (boxer_records_admit (srv->cfg, &charge, err) < 0)
    return -1;
  r = run_and_record (srv, http, req, id, err);
  boxer_records_settle (srv->cfg, id[0] ? id : NULL, &charge);
  return r;
}

int
boxer_handle_metrics (struct boxer_server *srv, struct boxer_http *http, struct boxer_error **err)
{
  cleanup_free char *text = NULL;

  if (boxer_exec_metrics (srv->cfg, &text, err) < 0)
    return -1;
  boxer_reply_text (http->fcgi, 200, "text/plain; version=0.0.4; charset=utf-8", text,
                    strlen (text));
  http->status = 200;
  return 0;
}

int
boxer_handle_health (struct boxer_server *srv, struct boxer_http *http, struct boxer_error **err)
{
  struct boxer_proto_hello hello;
  json_object *body;

  if (boxer_exec_hello (srv->cfg, &hello, err) < 0)
    return -1;
  body = json_object_new_object ();
  json_object_object_add (body, "status", json_object_new_string ("ok"));
  json_object_object_add (body, "runsc_version", json_object_new_string (hello.runsc_version));
  json_object_object_add (body, "platform", json_object_new_string (hello.platform));
  json_object_object_add (body, "cgroup", json_object_new_string (hello.cgroup));
  json_object_object_add (body, "sessions", json_object_new_int64 (hello.sessions));
  if (srv->cfg->n_warm_pool > 0)
    {
      json_object *pool = json_object_new_array ();
      for (size_t i = 0; i < hello.n_warm_pool; i++)
        {
          json_object *e = json_object_new_object ();
          json_object_object_add (e, "image", json_object_new_string (hello.warm_pool[i].image));
          json_object_object_add (e, "network",
                                  json_object_new_string (hello.warm_pool[i].network));
          json_object_object_add (e, "size", json_object_new_int64 (hello.warm_pool[i].size));
          json_object_object_add (e, "ready", json_object_new_int64 (hello.warm_pool[i].ready));
          json_object_array_add (pool, e);
        }
      json_object_object_add (body, "warm_pool", pool);
    }
  boxer_proto_hello_release (&hello);
  boxer_reply_json (http->fcgi, 200, body, NULL);
  json_object_put (body);
  http->status = 200;
  return 0;
}
