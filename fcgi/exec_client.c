#include <config.h>

#include "exec_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/log.h"

static int
connect_executor (const struct boxer_config *cfg, struct boxer_error **err)
{
  cleanup_free char *path = boxer_config_executor_socket (cfg);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  cleanup_close int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    return boxer_error_errno (err, errno, "socket");
  if (strlen (path) >= sizeof sa.sun_path)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "executor socket path too long");
  strcpy (sa.sun_path, path);
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    {
      /* The path is the operator's business, not the client's.  */
      boxer_log_error ("cannot reach the executor at %s: %s; is boxer-executor running?", path,
                       strerror (errno));
      return boxer_error_make (err, BOXER_ERR_RUNTIME,
                               "the sandbox executor is not running; retry in a moment");
    }
  return steal_fd (&fd);
}

/* Wait for the executor's next frame, or for the web server to hang up.  */
static int
wait_frame (int fd, int client_fd, size_t max, json_object **msg, int *fd_out,
            struct boxer_error **err)
{
  for (;;)
    {
      struct pollfd p[2] = {
        { .fd = fd, .events = POLLIN },
        /* The web server sends nothing more once the body is read: only
           its hang-up is of interest.  */
        { .fd = client_fd, .events = POLLRDHUP },
      };
      if (poll (p, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          return boxer_error_errno (err, errno, "poll");
        }
      if (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR))
        return boxer_error_make (err, BOXER_ERR_RUNTIME, "the client went away; run cancelled");
      if (p[0].revents)
        break;
    }
  if (boxer_proto_recv (fd, max, -1, msg, fd_out, err) < 0)
    {
      if ((*err)->category == BOXER_ERR_RUNTIME)
        {
          boxer_error_release (err);
          return boxer_error_make (err, BOXER_ERR_RUNTIME,
                                   "the sandbox executor stopped during the run; retry");
        }
      return -1;
    }
  return 0;
}

int
boxer_exec_hello (const struct boxer_config *cfg, struct boxer_proto_hello *out,
                  struct boxer_error **err)
{
  cleanup_close int fd = connect_executor (cfg, err);
  json_object *msg;
  int r;

  if (fd < 0)
    return -1;
  msg = boxer_proto_open ("hello", NULL);
  r = boxer_proto_send (fd, msg, -1, err);
  json_object_put (msg);
  if (r < 0 || wait_frame (fd, -1, 64 * 1024, &msg, NULL, err) < 0)
    return -1;
  r = boxer_proto_decode_hello (msg, out, err);
  json_object_put (msg);
  return r;
}

void
boxer_exec_report (const struct boxer_config *cfg, const struct boxer_proto_report *rep)
{
  cleanup_free char *path = boxer_config_executor_socket (cfg);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  cleanup_close int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  json_object *msg;

  /* Never waits: with the executor's backlog full (or it gone) the
     report is lost, and the request it counts is long answered.  */
  if (fd < 0 || strlen (path) >= sizeof sa.sun_path)
    return;
  strcpy (sa.sun_path, path);
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    return;
  msg = boxer_proto_encode_report (rep);
  boxer_proto_send (fd, msg, -1, NULL);
  json_object_put (msg);
}

int
boxer_exec_metrics (const struct boxer_config *cfg, char **text_out, struct boxer_error **err)
{
  cleanup_close int fd = connect_executor (cfg, err);
  const char *text;
  json_object *msg;
  int r;

  *text_out = NULL;
  if (fd < 0)
    return -1;
  msg = boxer_proto_open ("metrics", NULL);
  r = boxer_proto_send (fd, msg, -1, err);
  json_object_put (msg);
  if (r < 0 || wait_frame (fd, -1, BOXER_PROTO_METRICS_MAX + 64, &msg, NULL, err) < 0)
    return -1;
  r = boxer_proto_decode_metrics (msg, &text, err);
  if (r == 0)
    *text_out = xstrdup (text);
  json_object_put (msg);
  return r;
}

/* Open a run's connection and wait to be admitted: the connection, or -1.  */
static int
open_admitted (const struct boxer_config *cfg, const char *key, const struct boxer_image *image,
               enum boxer_network network, int client_fd, struct boxer_error **err)
{
  cleanup_close int fd = connect_executor (cfg, err);
  json_object *msg;
  int r;

  if (fd < 0)
    return -1;
  msg = boxer_proto_open_run (key, image->reference, image->digest, network);
  r = boxer_proto_send (fd, msg, -1, err);
  json_object_put (msg);
  if (r < 0 || wait_frame (fd, client_fd, 64 * 1024, &msg, NULL, err) < 0)
    return -1;
  r = boxer_proto_expect (msg, "admitted", err);
  json_object_put (msg);
  return r < 0 ? -1 : steal_fd (&fd);
}

/* A streamed run's or batch's "started" or "output" frame, given to sink:
   1 when msg was one, 0 when it is not, -1 when the sink refused it or it
   is malformed.  nruns: 0 for a run alone (no index), else the batch's.  */
static int
stream_frame (const struct boxer_config *cfg, json_object *msg, size_t nruns,
              const struct boxer_run_sink *sink, struct boxer_error **err)
{
  const char *type = boxer_proto_type (msg);
  cleanup_free char *data = NULL;
  size_t len;
  long index;
  int stream;

  if (sink == NULL || type == NULL)
    return 0;
  if (strcmp (type, "started") == 0)
    {
      if (sink->started (sink->data) < 0)
        return boxer_error_make (err, BOXER_ERR_RUNTIME, "the client went away; run cancelled");
      return 1;
    }
  if (strcmp (type, "output") != 0)
    return 0;
  if (boxer_proto_decode_output (msg, cfg, &index, &stream, &data, &len, err) < 0)
    return -1;
  if (nruns == 0 ? index != -1 : index < 0 || (size_t) index >= nruns)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "executor: output of a run not asked for");
  if (sink->output (sink->data, index, stream, data, len) < 0)
    return boxer_error_make (err, BOXER_ERR_RUNTIME, "the client went away; run cancelled");
  return 1;
}

/* The executor's next frame that is not a streamed one (those went to
   sink).  */
static int
next_frame (const struct boxer_config *cfg, int fd, int client_fd, size_t nruns,
            const struct boxer_run_sink *sink, json_object **msg, int *passed,
            struct boxer_error **err)
{
  for (;;)
    {
      int r;

      *passed = -1;
      if (wait_frame (fd, client_fd, boxer_proto_result_frame_max (cfg), msg, passed, err) < 0)
        return -1;
      r = stream_frame (cfg, *msg, nruns, sink, err);
      if (r == 0)
        return 0;
      json_object_put (*msg);
      *msg = NULL;
      if (*passed >= 0)
        {
          close (*passed);
          *passed = -1;
          return boxer_error_make (err, BOXER_ERR_INTERNAL,
                                   "executor: a descriptor with a streamed frame");
        }
      if (r < 0)
        return -1;
    }
}

int
boxer_exec_batch (const struct boxer_config *cfg, const char *id, const char *key,
                  const struct boxer_batch_request *batch, const struct boxer_image *image,
                  int client_fd, const struct boxer_run_sink *sink,
                  void (*on_run) (void *data, size_t index, struct boxer_run_result *res,
                                  const struct boxer_error *run_err),
                  void *data, struct boxer_error **err)
{
  cleanup_close int fd = open_admitted (cfg, key, image, batch->req.network,
                                        client_fd, err);
  cleanup_free bool *told = NULL;
  size_t left = batch->nruns;
  json_object *msg;
  int r;

  if (fd < 0)
    return -1;
  msg = boxer_proto_encode_batch (id, batch, image, sink != NULL);
  r = boxer_proto_send (fd, msg, -1, err);
  json_object_put (msg);
  if (r < 0)
    return -1;
  told = xmalloc0 (batch->nruns * sizeof *told);
  for (;;)
    {
      struct boxer_run_result res;
      cleanup_error struct boxer_error *run_err = NULL;
      size_t index;
      int passed = -1;

      memset (&res, 0, sizeof res);
      if (next_frame (cfg, fd, client_fd, batch->nruns, sink, &msg, &passed, err) < 0)
        return -1;
      if (passed >= 0)
        close (passed);
      r = boxer_proto_decode_batch_event (msg, cfg, batch->nruns, &index, &res, &run_err, err);
      json_object_put (msg);
      if (r < 0)
        return -1;
      if (r == 0)
        break;
      if (told[index])
        {
          boxer_run_result_release (&res);
          return boxer_error_make (err, BOXER_ERR_INTERNAL,
                                   "executor: run %zu of a batch reported twice", index);
        }
      told[index] = true;
      left--;
      on_run (data, index, r == 1 ? &res : NULL, run_err);
      boxer_run_result_release (&res);
    }
  if (left > 0)
    return boxer_error_make (err, BOXER_ERR_INTERNAL,
                             "executor: a batch ended with %zu runs not reported", left);
  return 0;
}

int
boxer_exec_run (const struct boxer_config *cfg, const char *id, const char *key,
                const struct boxer_run_request *req, const struct boxer_image *image,
                int client_fd, const struct boxer_run_sink *sink,
                struct boxer_run_result *out, int *output_fd, struct boxer_error **err)
{
  cleanup_close int fd = -1;
  json_object *msg;
  int r, passed = -1;

  *output_fd = -1;
  memset (out, 0, sizeof *out);
  fd = open_admitted (cfg, key, image, req->network, client_fd, err);
  if (fd < 0)
    return -1;

  msg = boxer_proto_encode_run (id, req, image, sink != NULL);
  r = boxer_proto_send (fd, msg, -1, err);
  json_object_put (msg);
  if (r < 0)
    return -1;
  if (next_frame (cfg, fd, client_fd, 0, sink, &msg, &passed, err) < 0)
    return -1;
  r = boxer_proto_decode_result (msg, cfg, out, err);
  json_object_put (msg);
  if (r < 0)
    {
      if (passed >= 0)
        close (passed);
      return -1;
    }
  *output_fd = passed;
  out->image = xstrdup (req->image);
  out->image_digest = xstrdup (image->digest);
  return 0;
}

/* Sessions.  */

/* A session op's connection, admitted by the session's keeper.  */
static int
open_session (const struct boxer_config *cfg, const char *key, const char *op, const char *id,
              const char *digest, int client_fd, struct boxer_error **err)
{
  cleanup_close int fd = connect_executor (cfg, err);
  json_object *msg;
  int r;

  if (fd < 0)
    return -1;
  msg = boxer_proto_open_session (key, op, id, digest);
  r = boxer_proto_send (fd, msg, -1, err);
  json_object_put (msg);
  if (r < 0 || wait_frame (fd, client_fd, 64 * 1024, &msg, NULL, err) < 0)
    return -1;
  r = boxer_proto_expect (msg, "admitted", err);
  json_object_put (msg);
  return r < 0 ? -1 : steal_fd (&fd);
}

/* Send msg (consumed) with pass_fd, and take the answer (no descriptor).  */
static int
session_exchange (const struct boxer_config *cfg, int fd, int client_fd, json_object *msg,
                  int pass_fd, size_t max, json_object **answer, struct boxer_error **err)
{
  int r = boxer_proto_send (fd, msg, pass_fd, err);
  int passed = -1;

  json_object_put (msg);
  if (r < 0 || wait_frame (fd, client_fd, max, answer, &passed, err) < 0)
    return -1;
  if (passed >= 0)
    {
      close (passed);
      json_object_put (*answer);
      *answer = NULL;
      return boxer_error_make (err, BOXER_ERR_INTERNAL, "executor: a descriptor with an answer");
    }
  (void) cfg;
  return 0;
}

int
boxer_exec_session_create (const struct boxer_config *cfg, const char *key,
                           const struct boxer_session_request *s, const struct boxer_image *image,
                           int client_fd, struct boxer_session_info *out,
                           struct boxer_error **err)
{
  cleanup_close int fd = open_session (cfg, key, "create", NULL, image->digest, client_fd, err);
  json_object *answer = NULL;
  int r;

  memset (out, 0, sizeof *out);
  if (fd < 0)
    return -1;
  /* The image's hold goes with it: the keeper keeps the image in the
     store for the session's life.  */
  if (session_exchange (cfg, fd, client_fd, boxer_proto_encode_session_create (s, image),
                        boxer_image_hold_fd (image), 64 * 1024, &answer, err) < 0)
    return -1;
  r = boxer_proto_decode_session_info (answer, cfg, out, err);
  json_object_put (answer);
  return r;
}

int
boxer_exec_session_exec (const struct boxer_config *cfg, const char *key, const char *id,
                         const struct boxer_run_request *req, int client_fd,
                         const struct boxer_run_sink *sink, struct boxer_run_result *out,
                         struct boxer_error **err)
{
  cleanup_close int fd = open_session (cfg, key, "exec", id, NULL, client_fd, err);
  json_object *msg = NULL, *v;
  int r, passed = -1;

  memset (out, 0, sizeof *out);
  if (fd < 0)
    return -1;
  msg = boxer_proto_encode_session_exec (req, sink != NULL);
  r = boxer_proto_send (fd, msg, -1, err);
  json_object_put (msg);
  if (r < 0 || next_frame (cfg, fd, client_fd, 0, sink, &msg, &passed, err) < 0)
    return -1;
  if (passed >= 0)
    close (passed);
  r = boxer_proto_decode_result (msg, cfg, out, err);
  if (r == 0)
    {
      out->image = xstrdup (json_object_object_get_ex (msg, "image", &v)
                              ? json_object_get_string (v) : "");
      out->image_digest = xstrdup (json_object_object_get_ex (msg, "image_digest", &v)
                                     ? json_object_get_string (v) : "");
    }
  json_object_put (msg);
  return r;
}

int
boxer_exec_session_put (const struct boxer_config *cfg, const char *key, const char *id,
                        const char *path, const char *data, size_t len, int client_fd,
                        struct boxer_error **err)
{
  cleanup_close int fd = open_session (cfg, key, "put", id, NULL, client_fd, err);
  json_object *answer = NULL;
  int r;

  if (fd < 0)
    return -1;
  if (session_exchange (cfg, fd, client_fd,
                        boxer_proto_encode_session_file ("session_put", path, data, len), -1,
                        64 * 1024, &answer, err) < 0)
    return -1;
  r = boxer_proto_expect (answer, "session_done", err);
  json_object_put (answer);
  return r;
}

int
boxer_exec_session_get (const struct boxer_config *cfg, const char *key, const char *id,
                        const char *path, int client_fd, char **data_out, size_t *len_out,
                        struct boxer_error **err)
{
  cleanup_close int fd = open_session (cfg, key, "get", id, NULL, client_fd, err);
  json_object *answer = NULL;
  int r;

  *data_out = NULL;
  *len_out = 0;
  if (fd < 0)
    return -1;
  if (session_exchange (cfg, fd, client_fd,
                        boxer_proto_encode_session_file ("session_get", path, NULL, 0), -1,
                        boxer_proto_run_frame_max (cfg), &answer, err) < 0)
    return -1;
  r = boxer_proto_expect (answer, "session_file", err);
  if (r == 0)
    r = boxer_proto_decode_session_file (answer, cfg, "session_file", NULL, data_out, len_out,
                                         err);
  json_object_put (answer);
  return r;
}

/* info (out set) or delete (out NULL).  */
int
boxer_exec_session_simple (const struct boxer_config *cfg, const char *key, const char *id,
                           int client_fd, struct boxer_session_info *out,
                           struct boxer_error **err)
{
  cleanup_close int fd = open_session (cfg, key, out ? "info" : "delete", id, NULL, client_fd,
                                       err);
  json_object *answer = NULL, *msg;
  int r;

  if (out)
    memset (out, 0, sizeof *out);
  if (fd < 0)
    return -1;
  msg = json_object_new_object ();
  json_object_object_add (msg, "type",
                          json_object_new_string (out ? "session_info" : "session_delete"));
  if (session_exchange (cfg, fd, client_fd, msg, -1, 64 * 1024, &answer, err) < 0)
    return -1;
  r = out ? boxer_proto_decode_session_info (answer, cfg, out, err)
          : boxer_proto_expect (answer, "session_done", err);
  json_object_put (answer);
  return r;
}
