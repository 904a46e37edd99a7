#include <config.h>

#include "session.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "init_link.h"
#include "metrics.h"
#include "protocol.h"
#include "spec.h"

/* boxer-init ids of a session's file transfers: below its runs' id.  */
#define FILE_ID_FIRST 1u
#define FILE_ID_LAST 0xffffu
/* How long boxer-init may take over a file.  */
#define FILE_TIMEOUT_MS 60000
/* Execs of one session: each result's id is "<session id>/<n>", which
   must fit a result's id.  */
#define MAX_EXECS 9999

struct keeper
{
  struct boxer_executor *ex;
  const struct boxer_config *cfg;
  char id[40];
  struct boxer_warm_sandbox sb;
  bool claimed;
  struct boxer_init_link link;
  bool linked;
  struct boxer_session_request req;
  struct boxer_proto_image pimg;
  struct boxer_image image;     /* a view of pimg, for the execs */
  int hold_fd;                  /* the image's hold: kept while the session lives */
  int report_fd;                /* the loop's run reports */
  int64_t created_at, last_used_at, execs;
  long long created_ms, last_used_ms;
  uint32_t next_file_id;
  bool ended;                   /* deleted, or its sandbox died: no more ops */
  int deleting;                 /* the connection that deleted it, answered at the end */
};

static volatile sig_atomic_t stopping;

static void
on_stop (int sig)
{
  (void) sig;
  stopping = 1;
}

static void
send_error (int conn, const struct boxer_error *e)
{
  json_object *msg = boxer_proto_error (e);

  if (e->category == BOXER_ERR_INTERNAL)
    boxer_log_error ("session: %s", e->msg);
  boxer_proto_send (conn, msg, -1, NULL);
  json_object_put (msg);
}

static int
send_put (int conn, json_object *msg, struct boxer_error **err)
{
  int r = boxer_proto_send (conn, msg, -1, err);

  json_object_put (msg);
  return r;
}

static json_object *
info (const struct keeper *k)
{
  struct boxer_session_info s = {
    .image = k->req.req.image,
    .network = k->req.req.network,
    .limits = k->req.req.limits,
    .idle_timeout_secs = k->req.idle_timeout_secs,
    .ttl_secs = k->req.ttl_secs,
    .created_at = k->created_at,
    .last_used_at = k->last_used_at,
    .execs = k->execs,
  };

  memcpy (s.id, k->id, sizeof s.id);
  snprintf (s.digest, sizeof s.digest, "%s", k->pimg.digest);
  return boxer_proto_encode_session_info (&s);
}

/* Answer "admitted" and take the op's message (and a descriptor with it,
   or -1).  */
static int
take_message (const struct keeper *k, int conn, json_object **msg, int *fd,
              struct boxer_error **err)
{
  json_object *ok = boxer_proto_open ("admitted", NULL);

  json_object_object_del (ok, "version");
  if (send_put (conn, ok, err) < 0)
    return -1;
  return boxer_proto_recv (conn, boxer_proto_run_frame_max (k->cfg), BOXER_PROTO_FRAME_TIMEOUT_MS,
                           msg, fd, err);
}

static int
create (struct keeper *k, int conn, const char *digest, struct boxer_error **err)
{
  json_object *msg = NULL;
  int r;

  r = take_message (k, conn, &msg, &k->hold_fd, err);
  if (r == 0)
    r = boxer_proto_decode_session_create (msg, k->cfg, &k->req, &k->pimg, err);
  json_object_put (msg);
  if (r < 0)
    return -1;
  if (strcmp (k->pimg.digest, digest) != 0)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "protocol: a session's image is not the one its open frame named");
  k->image = (struct boxer_image) { .reference = k->req.req.image, .digest = k->pimg.digest,
                                    .env = k->pimg.env, .entrypoint = k->pimg.entrypoint,
                                    .cmd = k->pimg.cmd, .workdir = k->pimg.workdir };
  if (boxer_executor_warm_claim (k->ex, digest, k->req.req.network, NULL, &k->sb, err) < 0)
    return -1;
  k->claimed = true;
  {
    long long t0 = boxer_now_ms ();
    if (boxer_executor_warm_boot (k->ex, &k->sb, &k->req.req.limits, err) < 0)
      {
        if (!k->sb.boot_oom)
          return -1;
        boxer_error_release (err);
        return boxer_error_make (err, BOXER_ERR_INVALID,
                                 "limits.memory_mb of %" PRId64 " is too little for the "
                                 "session's sandbox to boot; ask for more, as the programs "
                                 "need room too",
                                 k->req.req.limits.memory_mb);
      }
    /* Booted on the request path, like a batch's sandbox.  */
    boxer_run_report_send (k->report_fd, &(struct boxer_run_report) {
      .pid = (int32_t) getpid (), .more = 1, .kind = BOXER_REPORT_TIMINGS,
      .boot_ms = (int32_t) (boxer_now_ms () - t0), .setup_ms = -1, .run_ms = -1,
      .teardown_ms = -1 });
  }
  boxer_init_link_init (&k->link, k->sb.to_init, k->sb.from_init);
  k->sb.to_init = k->sb.from_init = -1;
  k->linked = true;
  /* The session's limits bound all of it, every exec and what they leave.  */
  if (boxer_executor_warm_set_limits (k->ex, &k->sb, &k->req.req.limits, err) < 0)
    return -1;
  k->created_at = k->last_used_at = time (NULL);
  k->created_ms = k->last_used_ms = boxer_now_ms ();
  boxer_log_info ("session %s: image %s, sandbox %s, idle %" PRId64 " s, ttl %" PRId64 " s",
                  k->id, k->req.req.image, k->sb.id, k->req.idle_timeout_secs, k->req.ttl_secs);
  return send_put (conn, info (k), err);
}

/* The exec's request completed from the session's: its env over the
   session's, its workdir or the session's, the session's limits with its
   wall clock.  */
static void
complete_exec (const struct keeper *k, struct boxer_run_request *req)
{
  char **env = boxer_spec_merge_env (k->req.req.env, req->env);
  int64_t wall = req->limits.wall_clock_secs;

  boxer_strv_free (req->env);
  req->env = env;
  if (req->workdir == NULL && k->req.req.workdir)
    req->workdir = xstrdup (k->req.req.workdir);
  req->image = xstrdup (k->req.req.image);
  req->limits = k->req.req.limits;
  if (wall > 0)
    req->limits.wall_clock_secs = wall;
  req->network = BOXER_NETWORK_NONE;
}

static int
op_exec (struct keeper *k, int conn, struct boxer_error **err)
{
  struct boxer_run_request req = { 0 };
  struct boxer_run_result res;
  json_object *msg = NULL;
  bool stream = false, gone = false;
  int extra = -1, r;

  r = take_message (k, conn, &msg, &extra, err);
  if (extra >= 0)
    close (extra);
  if (r == 0)
    r = boxer_proto_decode_session_exec (msg, k->cfg, &req, &stream, err);
  json_object_put (msg);
  if (r < 0)
    {
      boxer_run_request_release (&req);
      return -1;
    }
  if (k->execs >= MAX_EXECS)
    {
      boxer_run_request_release (&req);
      return boxer_error_make (err, BOXER_ERR_INVALID,
                               "a session runs at most %d commands; create another", MAX_EXECS);
    }
  complete_exec (k, &req);
  {
    struct boxer_proto_stream to_worker = {
      .fd = conn,
      .wall_ms = req.limits.wall_clock_secs * 1000,
      .deadline_ms = boxer_now_ms () + BOXER_PROTO_STREAM_SETUP_MS,
    };
    struct boxer_run_sink sink = boxer_proto_stream_sink (&to_worker);
    struct boxer_run_job job = { .id = k->id, .req = &req, .image = &k->image,
                                 .cancel_fd = conn, .sink = stream ? &sink : NULL };

    k->execs++;
    r = boxer_executor_session_exec (k->ex, &k->sb, &k->link, &job, &res, &gone, err);
  }
  boxer_run_request_release (&req);
  /* An OOM kill is the exec's result, and the session's end.  */
  k->ended = gone;
  /* Each exec is a run.  */
  boxer_run_report_send (k->report_fd, &(struct boxer_run_report) {
    .pid = (int32_t) getpid (), .more = 1, .kind = r < 0 ? BOXER_REPORT_FAILED : BOXER_REPORT_RUN,
    .outcome = r < 0 ? 0 : (int32_t) boxer_run_outcome (&res),
    .boot_ms = -1, .setup_ms = -1, .run_ms = r < 0 ? -1 : (int32_t) res.wall_ms,
    .teardown_ms = -1 });
  if (r < 0)
    return -1;
  {
    /* MAX_EXECS keeps it within a result's id.  */
    cleanup_free char *rid = xasprintf ("%s/%" PRId64, k->id, k->execs);
    memcpy (res.id, rid, strlen (rid) < sizeof res.id ? strlen (rid) + 1 : sizeof res.id);
    res.id[sizeof res.id - 1] = '\0';
  }
  msg = boxer_proto_encode_result (&res);
  json_object_object_add (msg, "image", json_object_new_string (k->req.req.image));
  json_object_object_add (msg, "image_digest", json_object_new_string (k->pimg.digest));
  boxer_run_result_release (&res);
  return send_put (conn, msg, err);
}

/* The next event of boxer-init for id (others are stale), by deadline.  */
static int
next_for (struct keeper *k, uint32_t id, long long deadline, int conn,
          struct boxer_init_event *ev, struct boxer_error **err)
{
  for (;;)
    {
      bool cancelled = false;
      int r = boxer_init_link_next (&k->link, deadline, conn, &cancelled, ev, err);
      if (r < 0)
        return -1;
      if (r == 0)
        return cancelled ? boxer_error_make (err, BOXER_ERR_RUNTIME, "cancelled")
                         : boxer_error_make (err, BOXER_ERR_INTERNAL,
                                             "boxer-init took too long over a session's file");
      if (ev->id == id)
        return 0;
    }
}

static uint32_t
file_id (struct keeper *k)
{
  uint32_t id = k->next_file_id;

  k->next_file_id = id >= FILE_ID_LAST ? FILE_ID_FIRST : id + 1;
  return id;
}

static int
op_put (struct keeper *k, int conn, struct boxer_error **err)
{
  cleanup_free char *data = NULL;
  json_object *msg = NULL;
  struct boxer_init_event ev;
  const char *path;
  uint32_t id = file_id (k);
  size_t len;
  int extra = -1, r;

  r = take_message (k, conn, &msg, &extra, err);
  if (extra >= 0)
    close (extra);
  if (r == 0)
    r = boxer_proto_decode_session_file (msg, k->cfg, "session_put", &path, &data, &len, err);
  if (r == 0)
    r = boxer_init_link_queue_data (&k->link, id, BOXER_RUN_UID, BOXER_RUN_GID, 0644, data, len,
                                    path, err);
  if (r == 0)
    r = next_for (k, id, boxer_now_ms () + FILE_TIMEOUT_MS, conn, &ev, err);
  if (r == 0 && ev.type == BOXER_INIT_ERROR)
    {
      cleanup_free char *why = boxer_init_event_message (&ev);
      r = boxer_error_make (err, BOXER_ERR_INVALID, "cannot write '%s' in the session: %s; "
                            "a file's directories must not be files, and /proc, /sys, /dev and "
                            "/output are not the session's", path, why);
    }
  json_object_put (msg);
  if (r < 0)
    return -1;
  return send_put (conn, boxer_proto_encode_session_file ("session_done", NULL, NULL, 0), err);
}

static int
op_get (struct keeper *k, int conn, struct boxer_error **err)
{
  struct boxer_init_writer w = { 0 };
  struct boxer_init_event ev;
  json_object *msg = NULL;
  cleanup_free char *ignored = NULL;
  char *data = NULL;
  size_t len = 0, ignored_len, size = 0;
  const char *path;
  uint32_t id = file_id (k);
  long long deadline = boxer_now_ms () + FILE_TIMEOUT_MS;
  int extra = -1, r;

  r = take_message (k, conn, &msg, &extra, err);
  if (extra >= 0)
    close (extra);
  if (r == 0)
    r = boxer_proto_decode_session_file (msg, k->cfg, "session_get", &path, &ignored,
                                         &ignored_len, err);
  if (r < 0)
    goto out;
  boxer_init_frame_start (&w, BOXER_INIT_READ, id);
  boxer_init_put_str (&w, path, strlen (path));
  boxer_init_put_u64 (&w, (uint64_t) k->cfg->upload_limit_bytes);
  if ((r = boxer_init_link_queue (&k->link, &w, err)) < 0)
    goto out;
  for (;;)
    {
      struct boxer_init_reader rd;
      if ((r = next_for (k, id, deadline, conn, &ev, err)) < 0)
        goto out;
      boxer_init_reader_init (&rd, ev.payload, ev.len);
      if (ev.type == BOXER_INIT_ERROR)
        {
          cleanup_free char *why = boxer_init_event_message (&ev);
          boxer_log_info ("session %s: read '%s': %s", k->id, path, why);
          r = boxer_error_make (err, BOXER_ERR_FILE_NOT_FOUND,
                                "no file '%s' in the session (links are not followed)", path);
          goto out;
        }
      if (ev.type == BOXER_INIT_OUTPUT)
        {
          cleanup_free char *name = NULL;
          uint64_t n;
          if (!boxer_init_get_str (&rd, BOXER_INIT_PATH_MAX, &name) || !boxer_init_get_u64 (&rd, &n)
              || n > (uint64_t) k->cfg->upload_limit_bytes)
            {
              r = boxer_error_make (err, BOXER_ERR_INTERNAL, "boxer-init sent a malformed OUTPUT");
              goto out;
            }
          size = (size_t) n;
          free (data);
          data = xmalloc (size + 1);
          len = 0;
        }
      else if (ev.type == BOXER_INIT_OUTPUT_DATA && data && ev.len <= size - len)
        {
          memcpy (data + len, ev.payload, ev.len);
          len += ev.len;
        }
      else if (ev.type == BOXER_INIT_OUTPUT_END)
        {
          uint32_t flags = 0;
          boxer_init_get_u32 (&rd, &flags);
          if (flags & BOXER_INIT_OUTPUTS_TRUNCATED)
            r = boxer_error_make (err, BOXER_ERR_TOO_LARGE,
                                  "'%s' is larger than upload_limit_bytes (%" PRId64 "); read it "
                                  "in parts with an exec", path, k->cfg->upload_limit_bytes);
          else if (data == NULL || len != size)
            r = boxer_error_make (err, BOXER_ERR_FILE_NOT_FOUND, "no file '%s' in the session",
                                  path);
          else
            r = send_put (conn, boxer_proto_encode_session_file ("session_file", NULL, data, len),
                          err);
          goto out;
        }
    }
out:
  free (data);
  json_object_put (msg);
  return r;
}

/* Serve one connection of op.  True: the session ends after it.  */
static bool
serve (struct keeper *k, const char *op, int conn)
{
  cleanup_error struct boxer_error *err = NULL;
  int r = -1;

  if (strcmp (op, "exec") == 0)
    r = op_exec (k, conn, &err);
  else if (strcmp (op, "put") == 0)
    r = op_put (k, conn, &err);
  else if (strcmp (op, "get") == 0)
    r = op_get (k, conn, &err);
  else
    {
      json_object *msg = NULL;
      int extra = -1;
      r = take_message (k, conn, &msg, &extra, &err);
      if (extra >= 0)
        close (extra);
      if (r == 0 && boxer_proto_expect (msg, strcmp (op, "info") == 0 ? "session_info"
                                                                         : "session_delete",
                                        &err) < 0)
        r = -1;
      json_object_put (msg);
      if (r == 0 && strcmp (op, "info") == 0)
        r = send_put (conn, info (k), &err);
      else if (r == 0)
        {
          /* Answered once the session is gone, by boxer_session_keep ().  */
          boxer_log_info ("session %s: deleted", k->id);
          k->ended = true;
          k->deleting = dup (conn);
        }
    }
  if (r < 0 && err && err->category == BOXER_ERR_RUNTIME)
    boxer_log_info ("session %s: %s", k->id, err->msg);
  else if (r < 0 && err)
    send_error (conn, err);
  k->last_used_at = time (NULL);
  k->last_used_ms = boxer_now_ms ();
  return k->ended;
}

/* The session ended and the loop was told (the end of our side of the
   socket): it closes its own, sending nothing more; until then whatever
   connection it still sent hears that the session is no more.  */
static void
refuse_pending (const struct keeper *k, int ctl)
{
  struct boxer_error gone = { .category = BOXER_ERR_SESSION_NOT_FOUND };
  long long until = boxer_now_ms () + 10000;

  gone.msg = xasprintf ("session %s has ended", k->id);
  while (boxer_now_ms () < until)
    {
      json_object *msg = NULL;
      int conn = -1;
      struct pollfd p = { .fd = ctl, .events = POLLIN };
      if (poll (&p, 1, 1000) < 0 && errno != EINTR)
        break;
      if (p.revents == 0)
        continue;
      if (boxer_proto_recv (ctl, BOXER_PROTO_OPEN_MAX, 1000, &msg, &conn, NULL) < 0)
        break;  /* the loop closed its side */
      json_object_put (msg);
      if (conn >= 0)
        {
          send_error (conn, &gone);
          close (conn);
        }
    }
  free (gone.msg);
}

static void
keep (struct keeper *k, int ctl)
{
  while (!stopping)
    {
      long long now = boxer_now_ms ();
      long long idle_end = k->last_used_ms + k->req.idle_timeout_secs * 1000;
      long long ttl_end = k->created_ms + k->req.ttl_secs * 1000;
      long long end = idle_end < ttl_end ? idle_end : ttl_end;
      struct pollfd p[2] = {
        { .fd = ctl, .events = POLLIN },
        { .fd = k->link.from_fd, .events = POLLIN },
      };

      if (now >= end)
        {
          boxer_log_info ("session %s: %s", k->id, end == ttl_end ? "past its ttl_secs"
                                                                  : "idle for idle_timeout_secs");
          return;
        }
      if (poll (p, 2, (int) (end - now < 60000 ? end - now : 60000)) < 0)
        continue;       /* EINTR: a stop, looked at above */
      if (p[1].revents)
        {
          /* Nothing was asked of boxer-init: its end, or a stray event.  */
          cleanup_error struct boxer_error *err = NULL;
          struct boxer_init_event ev;
          bool cancelled;
          if (boxer_init_link_next (&k->link, boxer_now_ms (), -1, &cancelled, &ev, &err) < 0)
            {
              boxer_log_info ("session %s: its sandbox is gone", k->id);
              return;
            }
        }
      if (p[0].revents)
        {
          cleanup_error struct boxer_error *err = NULL;
          json_object *msg = NULL;
          const char *op;
          int conn = -1;
          bool end_now;
          if (boxer_proto_recv (ctl, BOXER_PROTO_OPEN_MAX, 1000, &msg, &conn, &err) < 0)
            return;     /* the loop is gone */
          op = json_object_get_string (json_object_object_get (msg, "op"));
          end_now = conn >= 0 && op ? serve (k, op, conn) : false;
          json_object_put (msg);
          if (conn >= 0)
            close (conn);
          if (end_now)
            return;
        }
    }
}

int
boxer_session_keep (struct boxer_executor *ex, const struct boxer_config *cfg, const char *id,
                    const char *digest, int conn, int ctl, int report_fd)
{
  cleanup_error struct boxer_error *err = NULL;
  struct keeper k = { .ex = ex, .cfg = cfg, .hold_fd = -1, .report_fd = report_fd,
                      .next_file_id = FILE_ID_FIRST, .deleting = -1 };
  struct sigaction sa = { .sa_handler = on_stop };

  /* No SA_RESTART: a stop ends the wait in poll ().  */
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  snprintf (k.id, sizeof k.id, "%s", id);
  boxer_log_set_request_id (id);
  if (create (&k, conn, digest, &err) < 0)
    {
      if (err->category != BOXER_ERR_RUNTIME)
        send_error (conn, err);
      close (conn);
    }
  else
    {
      close (conn);
      keep (&k, ctl);
    }
  /* The sandbox goes first, then the loop hears the end, then whoever
     deleted it: once its 204 is out, the session holds nothing and its
     place in max_sessions is free.  */
  if (k.linked)
    boxer_init_link_release (&k.link);
  if (k.claimed)
    boxer_executor_warm_destroy (ex, &k.sb);
  if (k.hold_fd >= 0)
    close (k.hold_fd);
  shutdown (ctl, SHUT_WR);
  if (k.deleting >= 0)
    {
      send_put (k.deleting, boxer_proto_encode_session_file ("session_done", NULL, NULL, 0), NULL);
      close (k.deleting);
    }
  refuse_pending (&k, ctl);
  boxer_run_request_release (&k.req.req);
  free (k.pimg.digest);
  boxer_strv_free (k.pimg.env);
  boxer_strv_free (k.pimg.entrypoint);
  boxer_strv_free (k.pimg.cmd);
  free (k.pimg.workdir);
  close (ctl);
  return 0;
}
