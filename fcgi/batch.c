/* POST /batch: many runs of one image in one sandbox, answered in the
   order of the request's runs.  */
#include <config.h>

#include <time.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "auth.h"
#include "cache/registry.h"
#include "exec_client.h"
#include "executor/protocol.h"
#include "handlers.h"
#include "request.h"
#include "response.h"
#include "sse.h"

struct collected
{
  const char *batch_id;
  const struct boxer_image *image;
  json_object **results;        /* one per run, in the request's order */
  struct boxer_sse *sse;        /* streamed: each run's end as a "run" event too */
};

static void
collect (void *data, size_t index, struct boxer_run_result *res, const struct boxer_error *run_err)
{
  struct collected *c = data;
  json_object *o;

  if (res)
    {
      res->image = c->image->reference;
      res->image_digest = c->image->digest;
      o = boxer_run_result_to_json (res);
      res->image = res->image_digest = NULL;
    }
  else
    {
      /* Shaped as a result, so that clients can read every entry alike.  */
      struct boxer_run_result none = {
        .image = (char *) c->image->reference, .image_digest = (char *) c->image->digest,
        .exit_code = -1, .stdout_data = (char *) "", .stderr_data = (char *) "",
        .started_at = time (NULL), .finished_at = time (NULL),
      };
      json_object *e = json_object_new_object ();
      const char *code;

      boxer_http_status (run_err->category, &code);
      o = boxer_run_result_to_json (&none);
      json_object_object_add (e, "code", json_object_new_string (code));
      json_object_object_add (e, "message", json_object_new_string (run_err->msg));
      json_object_object_add (o, "error", e);
    }
  {
    char id[64];
    snprintf (id, sizeof id, "%s/%zu", c->batch_id, index);
    json_object_object_add (o, "id", json_object_new_string (id));
  }
  json_object_object_add (o, "index", json_object_new_int64 ((int64_t) index));
  json_object_put (c->results[index]);
  c->results[index] = o;
  /* A failed write leaves the client gone: the next frame's hook says so.  */
  if (c->sse && boxer_sse_output_end (c->sse, (long) index) == 0)
    boxer_sse_event (c->sse, "run", o);
}

int
boxer_handle_batch (struct boxer_server *srv, struct boxer_http *http, struct boxer_error **err)
{
  cleanup_image struct boxer_image *image = NULL;
  cleanup_free char *body = NULL;
  struct boxer_batch_request batch = { 0 };
  struct collected c = { 0 };
  cleanup_sse struct boxer_sse sse = { 0 };
  struct boxer_run_sink sink = boxer_sse_sink (&sse);
  bool streamed = boxer_sse_wanted (http->fcgi, "text/event-stream");
  char id[40];
  json_object *reply = NULL, *results;
  uint64_t bytes0;
  long long t0;
  size_t len;
  int r = -1;

  if (!boxer_http_content_type_is (http, "application/json"))
    return boxer_error_make (err, BOXER_ERR_UNSUPPORTED_MEDIA,
                             "POST /batch takes a JSON body; send Content-Type: application/json");
  if (boxer_http_read_body (http, srv->cfg->upload_limit_bytes, &body, &len, err) < 0)
    return -1;
  if (boxer_request_parse_batch (srv->cfg, http->key, body, len, &batch, err) < 0)
    return -1;
  for (size_t i = 0; i < batch.nruns; i++)
    if (boxer_files_check_owners (srv, http, &batch.runs[i], err) < 0)
      {
        boxer_error_wrap (err, "runs[%zu]", i);
        goto out;
      }
  t0 = boxer_now_ms ();
  bytes0 = boxer_registry_bytes_received ();
  r = boxer_cache_acquire (srv->cache, batch.req.image,
                           http->key == NULL || http->key->allow_images, &image, err);
  http->pull_ms = boxer_now_ms () - t0;
  http->pulled_bytes = (int64_t) (boxer_registry_bytes_received () - bytes0);
  if (r < 0 || (r = boxer_random_id (id, BOXER_BATCH_ID_PREFIX, BOXER_BATCH_ID_HEX, err)) < 0)
    goto out;

  c.batch_id = id;
  c.image = image;
  c.results = xmalloc0 (batch.nruns * sizeof *c.results);
  boxer_sse_init (&sse, http->fcgi, batch.nruns);
  c.sse = streamed ? &sse : NULL;
  t0 = boxer_now_ms ();
  r = boxer_exec_batch (srv->cfg, id, boxer_auth_owner (http), &batch, image, http->fcgi->ipcFd,
                        streamed ? &sink : NULL, collect, &c, err);
  if (r < 0)
    {
      if (sse.begun)
        r = boxer_sse_fail (&sse, http, err);
      goto out;
    }
  boxer_log_info ("batch %s image=%s runs=%zu parallelism=%lld ms=%lld", id, image->reference,
                  batch.nruns, (long long) batch.parallelism, boxer_now_ms () - t0);
  reply = json_object_new_object ();
  json_object_object_add (reply, "id", json_object_new_string (id));
  json_object_object_add (reply, "image", json_object_new_string (image->reference));
  json_object_object_add (reply, "image_digest", json_object_new_string (image->digest));
  results = json_object_new_array_ext ((int) batch.nruns);
  for (size_t i = 0; i < batch.nruns; i++)
    {
      json_object_array_add (results, c.results[i]);
      c.results[i] = NULL;
    }
  json_object_object_add (reply, "results", results);
  if (streamed)
    {
      if (sse.begun || boxer_sse_begin (&sse) == 0)
        boxer_sse_event (&sse, "result", reply);
    }
  else
    boxer_reply_json (http->fcgi, 200, reply, NULL);
  json_object_put (reply);
  http->status = 200;

out:
  for (size_t i = 0; c.results && i < batch.nruns; i++)
    json_object_put (c.results[i]);
  free (c.results);
  boxer_batch_request_release (&batch);
  return r < 0 ? -1 : 0;
}
