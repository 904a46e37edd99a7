/* Files in and out of runs at the HTTP boundary: POST /files, the
   multipart form of POST /run, GET /runs/{id}, its outputs, and the sweep
   of expired uploads and records.

   Multipart bodies are streamed: each chunk read from the FastCGI stream
   goes through fcgi/multipart.c straight into the upload store on disk, so
   no more than the 'request' part (itself bounded) is ever held in memory.
   The bytes of the files together may not exceed upload_limit_bytes
   (413).  */
#include <config.h>

#include "auth.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/paths.h"
#include "executor/files.h"
#include "executor/records.h"
#include "handlers.h"
#include "multipart.h"
#include "request.h"
#include "response.h"

/* A multipart body may exceed upload_limit_bytes by this much for its
   framing and the 'request' part; nginx lets as much through
   (contrib/render-config.py BODY_MARGIN).  */
#define BODY_MARGIN (1 << 20)

/* What one multipart body has uploaded so far.  */
struct upload
{
  struct boxer_server *srv;
  const char *owner;            /* the API key's name, or NULL */
  bool one_shot;                /* POST /run: parts are "request" or a destination */
  int64_t total;                /* bytes of files so far */
  struct boxer_upload *current; /* the file part being written, if any */
  char *current_dest;
  bool in_request;              /* inside the 'request' part */
  bool seen_request;
  struct boxer_buf request;     /* its JSON */
  struct boxer_file_info *files;
  char **dests;                 /* one_shot: each file's destination */
  size_t nfiles;
};

static void
upload_init (struct upload *u, struct boxer_server *srv, const struct boxer_http *http,
             bool one_shot)
{
  memset (u, 0, sizeof *u);
  u->srv = srv;
  u->owner = boxer_auth_owner (http);
  u->one_shot = one_shot;
  /* The JSON request is the only part held in memory; a POST /run JSON
     body has the same bound.  */
  boxer_buf_init (&u->request, srv->cfg->upload_limit_bytes);
}

/* Forget everything; with remove, the uploads are removed from the store
   too (a failed request, or a one-shot run that is over).  */
static void
upload_release (struct upload *u, bool remove)
{
  boxer_files_upload_free (u->current);
  u->current = NULL;
  free (u->current_dest);
  for (size_t i = 0; i < u->nfiles; i++)
    {
      if (remove)
        {
          cleanup_error struct boxer_error *err = NULL;
          if (boxer_files_remove (u->srv->cfg->home, u->files[i].id, &err) < 0)
            boxer_log_warning ("remove upload %s: %s", u->files[i].id, err->msg);
        }
      boxer_file_info_release (&u->files[i]);
      if (u->dests)
        free (u->dests[i]);
    }
  free (u->files);
  free (u->dests);
  boxer_buf_release (&u->request);
  memset (u, 0, sizeof *u);
}

static int
on_part_begin (void *data, const struct boxer_multipart_part *part, struct boxer_error **err)
{
  struct upload *u = data;
  const char *name = part->filename ? part->filename : part->name;
  cleanup_free char *dest = NULL;

  if (u->one_shot && strcmp (part->name, "request") == 0)
    {
      if (u->seen_request)
        return boxer_error_make (err, BOXER_ERR_INVALID,
                                 "the multipart body has two 'request' parts; send one");
      u->seen_request = u->in_request = true;
      return 0;
    }
  if (u->nfiles >= BOXER_RUN_MAX_FILES)
    return boxer_error_make (err, BOXER_ERR_INVALID, "at most %d files may be sent at once",
                             BOXER_RUN_MAX_FILES);
  if (u->one_shot)
    {
      /* The part's name is where the file goes in the container.  */
      if (boxer_paths_check_destination (part->name, strlen (part->name), "the part name",
                                         err) < 0)
        return boxer_error_wrap (err, "a multipart POST /run names each file part by its "
                                      "absolute path in the container");
      dest = xstrdup (part->name);
      if (part->filename == NULL)
        name = part->name;
    }
  if (boxer_files_upload_begin (u->srv->cfg->home, name, u->owner, &u->current, err) < 0)
    return -1;
  u->current_dest = steal_pointer (&dest);
  return 0;
}

static int
on_part_data (void *data, const char *buf, size_t len, struct boxer_error **err)
{
  struct upload *u = data;
  int64_t limit = u->srv->cfg->upload_limit_bytes;

  if (u->in_request)
    {
      if (boxer_buf_append (&u->request, buf, len, NULL) < 0)
        return boxer_error_make (err, BOXER_ERR_TOO_LARGE,
                                 "the 'request' part is larger than the limit of %lld bytes",
                                 (long long) limit);
      return 0;
    }
  u->total += (int64_t) len;
  if (u->total > limit)
    return boxer_error_make (err, BOXER_ERR_TOO_LARGE,
                             "the uploaded files are larger than the limit of %lld bytes in "
                             "total",
                             (long long) limit);
  return boxer_files_upload_write (u->current, buf, len, err);
}

static int
on_part_end (void *data, struct boxer_error **err)
{
  struct upload *u = data;
  struct boxer_file_info info;

  if (u->in_request)
    {
      u->in_request = false;
      return 0;
    }
  if (boxer_files_upload_commit (u->current, &info, err) < 0)
    return -1;
  boxer_files_upload_free (u->current);
  u->current = NULL;
  u->files = xrealloc (u->files, (u->nfiles + 1) * sizeof *u->files);
  u->dests = xrealloc (u->dests, (u->nfiles + 1) * sizeof *u->dests);
  u->files[u->nfiles] = info;
  u->dests[u->nfiles] = steal_pointer (&u->current_dest);
  u->nfiles++;
  return 0;
}

static const struct boxer_multipart_callbacks upload_callbacks = {
  on_part_begin,
  on_part_data,
  on_part_end,
};

/* Read and drop what is left of the body.  Answering while nginx still
   sends it would reset the connection under our answer.  */
static void
drain_body (struct boxer_http *http)
{
  char chunk[65536];
  while (FCGX_GetStr (chunk, sizeof chunk, http->fcgi->in) > 0)
    ;
}

/* Stream the multipart body of the request into u.  On failure everything
   u uploaded is removed and the rest of the body is drained.  */
static int
receive (struct boxer_http *http, struct upload *u, struct boxer_error **err)
{
  const char *cl = FCGX_GetParam ("CONTENT_LENGTH", http->fcgi->envp);
  int64_t max_body = u->srv->cfg->upload_limit_bytes + BODY_MARGIN;
  cleanup_free char *boundary = NULL;
  cleanup_multipart struct boxer_multipart *mp = NULL;
  char chunk[65536];
  int64_t total = 0;
  int n;

  if (boxer_multipart_boundary (http->content_type, &boundary, err) < 0)
    goto fail;
  if (cl && *cl)
    {
      char *end;
      unsigned long long declared = strtoull (cl, &end, 10);
      if (*end != '\0')
        {
          boxer_error_make (err, BOXER_ERR_INVALID, "Content-Length is not a number");
          goto fail;
        }
      if (declared > (unsigned long long) max_body)
        {
          boxer_error_make (err, BOXER_ERR_TOO_LARGE,
                            "request body of %llu bytes is over the upload limit of %lld bytes",
                            declared, (long long) u->srv->cfg->upload_limit_bytes);
          goto fail;
        }
    }

  /* Disk first: nothing is read into a store that cannot hold it.  */
  {
    int64_t incoming = u->srv->cfg->upload_limit_bytes;
    if (cl && *cl && strtoll (cl, NULL, 10) < incoming)
      incoming = strtoll (cl, NULL, 10);
    if (boxer_files_admit (u->srv->cfg, incoming, err) < 0)
      goto fail;
  }
  mp = boxer_multipart_new (boundary, &upload_callbacks, u);
  while ((n = FCGX_GetStr (chunk, sizeof chunk, http->fcgi->in)) > 0)
    {
      total += n;
      if (total > max_body)
        {
          boxer_error_make (err, BOXER_ERR_TOO_LARGE,
                            "request body is over the upload limit of %lld bytes",
                            (long long) u->srv->cfg->upload_limit_bytes);
          goto fail;
        }
      if (boxer_multipart_feed (mp, chunk, (size_t) n, err) < 0)
        goto fail;
    }
  if (boxer_multipart_finish (mp, err) < 0)
    goto fail;
  return 0;

fail:
  drain_body (http);
  upload_release (u, true);
  return -1;
}

int
boxer_handle_files_upload (struct boxer_server *srv, struct boxer_http *http,
                           struct boxer_error **err)
{
  struct upload u;
  json_object *body, *list;

  upload_init (&u, srv, http, false);
  if (receive (http, &u, err) < 0)
    return -1;
  if (u.nfiles == 0)
    {
      upload_release (&u, true);
      return boxer_error_make (err, BOXER_ERR_INVALID,
                               "POST /files needs at least one file part in its "
                               "multipart/form-data body");
    }

  body = json_object_new_object ();
  list = json_object_new_array ();
  for (size_t i = 0; i < u.nfiles; i++)
    {
      json_object *f = json_object_new_object ();
      json_object_object_add (f, "id", json_object_new_string (u.files[i].id));
      json_object_object_add (f, "name", json_object_new_string (u.files[i].name));
      json_object_object_add (f, "size", json_object_new_int64 (u.files[i].size));
      json_object_object_add (f, "sha256", json_object_new_string (u.files[i].sha256));
      json_object_array_add (list, f);
      boxer_log_info ("upload %s %lld bytes", u.files[i].id, (long long) u.files[i].size);
    }
  json_object_object_add (body, "files", list);
  upload_release (&u, false);
  boxer_reply_json (http->fcgi, 201, body, NULL);
  json_object_put (body);
  http->status = 201;
  return 0;
}

int
boxer_handle_run_multipart (struct boxer_server *srv, struct boxer_http *http,
                            struct boxer_error **err)
{
  struct boxer_run_request req = { 0 };
  struct upload u;
  size_t n0;
  int r = -1;

  upload_init (&u, srv, http, true);
  if (receive (http, &u, err) < 0)
    return -1;
  if (!u.seen_request)
    {
      boxer_error_make (err, BOXER_ERR_INVALID,
                        "a multipart POST /run needs a part named 'request' holding the JSON "
                        "request");
      goto out;
    }
  if (boxer_request_parse_run (srv->cfg, http->key, u.request.data, u.request.len, &req, err) < 0)
    {
      boxer_error_wrap (err, "the 'request' part");
      goto out;
    }

  /* The parts' files join those the request names by id.  */
  n0 = req.nfiles;
  req.files = xrealloc (req.files, (n0 + u.nfiles + 1) * sizeof *req.files);
  for (size_t i = 0; i < u.nfiles; i++)
    {
      req.files[n0 + i].id = xstrdup (u.files[i].id);
      req.files[n0 + i].path = xstrdup (u.dests[i]);
    }
  req.nfiles = n0 + u.nfiles;
  if (boxer_request_check_files (&req, err) < 0)
    goto out;

  r = boxer_run_answer (srv, http, &req, err);

out:
  boxer_run_request_release (&req);
  /* One-shot: the uploads served this run only.  */
  upload_release (&u, true);
  return r;
}

/* The record is the reply plus, with API keys, "owner": the key's name,
   which read_record () checks and takes out again.  */
void
boxer_files_record_run (struct boxer_server *srv, const struct boxer_http *http,
                        const struct boxer_run_result *res, json_object *reply)
{
  cleanup_error struct boxer_error *err = NULL;
  const char *owner = boxer_auth_owner (http);
  const char *text;
  size_t len;

  if (owner)
    json_object_object_add (reply, "owner", json_object_new_string (owner));
  text = json_object_to_json_string_length (
    reply, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
  if (boxer_records_commit (srv->cfg->home, res->id, text, len, &err) < 0)
    {
      boxer_log_error ("record of run %s: %s", res->id, err->msg);
      boxer_records_discard (srv->cfg->home, res->id);
    }
  json_object_object_del (reply, "owner");
}

int
boxer_files_check_owners (struct boxer_server *srv, const struct boxer_http *http,
                          const struct boxer_run_request *req, struct boxer_error **err)
{
  if (srv->cfg->n_api_keys == 0)
    return 0;
  for (size_t i = 0; i < req->nfiles; i++)
    {
      cleanup_free char *owner = NULL;
      if (boxer_files_owner (srv->cfg->home, req->files[i].id, srv->cfg->files_ttl_secs, &owner,
                             err) < 0)
        return -1;
      /* Another key's upload is answered as if it did not exist.  */
      if (!boxer_auth_may_see (srv, http, owner))
        return boxer_files_not_found (req->files[i].id, srv->cfg->files_ttl_secs, err);
    }
  return 0;
}

static void
json_putp (json_object **o)
{
  json_object_put (*o);
}

/* Whether the record o may be shown to this request; another key's run
   is answered as an unknown one.  */
static bool
record_visible (struct boxer_server *srv, struct boxer_http *http, json_object *o,
                struct boxer_error **err)
{
  json_object *owner = NULL;

  if (json_object_object_get_ex (o, "owner", &owner)
      && !json_object_is_type (owner, json_type_string))
    owner = NULL;
  if (boxer_auth_may_see (srv, http, owner ? json_object_get_string (owner) : NULL))
    return true;
  boxer_records_not_found (http->params[0], srv->cfg->runs_ttl_secs, err);
  return false;
}

/* The result.json of the run in the path (params[0]), parsed, if the
   request may see it.  */
static json_object *
read_record (struct boxer_server *srv, struct boxer_http *http, struct boxer_error **err)
{
  cleanup_free char *text = NULL;
  size_t len;
  json_object *o;

  if (boxer_records_read (srv->cfg->home, http->params[0], srv->cfg->runs_ttl_secs, &text, &len,
                          err) < 0)
    return NULL;
  o = json_tokener_parse (text);
  if (o == NULL)
    {
      boxer_error_make (err, BOXER_ERR_INTERNAL, "run record %s is damaged", http->params[0]);
      return NULL;
    }
  if (!record_visible (srv, http, o, err))
    {
      json_object_put (o);
      return NULL;
    }
  json_object_object_del (o, "owner");
  return o;
}

int
boxer_handle_run_get (struct boxer_server *srv, struct boxer_http *http,
                      struct boxer_error **err)
{
  __attribute__ ((cleanup (json_putp))) json_object *o = read_record (srv, http, err);

  if (o == NULL)
    return -1;
  boxer_reply_json (http->fcgi, 200, o, NULL);
  http->status = 200;
  return 0;
}

int
boxer_handle_run_outputs (struct boxer_server *srv, struct boxer_http *http,
                          struct boxer_error **err)
{
  __attribute__ ((cleanup (json_putp))) json_object *o = read_record (srv, http, err);
  __attribute__ ((cleanup (json_putp))) json_object *body = NULL;
  json_object *outputs = NULL;

  if (o == NULL)
    return -1;
  if (!json_object_object_get_ex (o, "outputs", &outputs)
      || !json_object_is_type (outputs, json_type_array))
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "run record %s has no outputs",
                             http->params[0]);
  body = json_object_new_object ();
  json_object_object_add (body, "outputs", json_object_get (outputs));
  boxer_reply_json (http->fcgi, 200, body, NULL);
  http->status = 200;
  return 0;
}

int
boxer_handle_run_output (struct boxer_server *srv, struct boxer_http *http,
                         struct boxer_error **err)
{
  const char *path = http->params[1];
  __attribute__ ((cleanup (json_putp))) json_object *o = NULL;
  cleanup_close int fd = -1;
  int64_t size;

  /* Checked before anything is opened; the open is confined beneath the
     record's outputs directory all the same.  */
  if (boxer_paths_check_relative (path, strlen (path), "the output path", err) < 0)
    return -1;
  /* Whose run it is, before anything of it is opened.  */
  if (srv->cfg->n_api_keys > 0 && (o = read_record (srv, http, err)) == NULL)
    return -1;
  if (boxer_records_open_output (srv->cfg->home, http->params[0], srv->cfg->runs_ttl_secs, path,
                                 &fd, &size, err) < 0)
    return -1;
  boxer_reply_fd (http->fcgi, 200, "application/octet-stream", fd, size);
  http->status = 200;
  return 0;
}

void
boxer_files_housekeeping (struct boxer_server *srv)
{
  static long long last_ms = -1;
  const struct boxer_config *cfg = srv->cfg;
  int64_t every = 60;
  long long now = boxer_now_ms ();
  cleanup_error struct boxer_error *err = NULL;

  /* Often enough that nothing outlives its time to live by much more than
     that, even with short ones.  */
  if (cfg->runs_ttl_secs < every)
    every = cfg->runs_ttl_secs;
  if (cfg->files_ttl_secs < every)
    every = cfg->files_ttl_secs;
  if (last_ms >= 0 && now - last_ms < every * 1000)
    return;
  last_ms = now;

  if (boxer_files_sweep (cfg->home, cfg->files_ttl_secs, &err) < 0)
    {
      boxer_log_warning ("sweep uploads: %s", err->msg);
      boxer_error_release (&err);
    }
  if (boxer_records_sweep (cfg->home, cfg->runs_ttl_secs, &err) < 0)
    {
      boxer_log_warning ("sweep run records: %s", err->msg);
      boxer_error_release (&err);
    }
  /* The budgets' ledgers learn here what expired, so that no admission
     has to walk for it.  */
  if (boxer_files_remeasure (cfg, &err) < 0)
    {
      boxer_log_warning ("measure uploads for files_budget_bytes: %s", err->msg);
      boxer_error_release (&err);
    }
  if (boxer_records_remeasure (cfg, &err) < 0)
    boxer_log_warning ("measure run records for runs_budget_bytes: %s", err->msg);
}
