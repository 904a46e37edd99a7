/* The protocol between boxer-fcgi workers and boxer-executor: the one
   place both sides include, so neither can drift from the other.

   Transport: a unix stream socket.  A frame is a 4-byte big-endian length
   followed by that many bytes of one JSON object; a frame may carry one
   file descriptor (SCM_RIGHTS) with its first byte.  Every frame is
   bounded, and the executor decodes what a worker sends as hostile: types,
   lengths and values are checked again here, whatever the worker checked.

   A connection carries one exchange:

     worker                         executor
     {"type": "hello"}         ->
                               <-   {"type": "hello", runsc_version, ...}

     {"type": "run"}           ->                    (the "open" frame)
                               <-   {"type": "admitted"}  when a slot is free,
                                    or {"type": "error", "category": "busy"}
     {"type": "run", id,       ->   + the fd of the run record's outputs
      request, image}                 directory
                               <-   {"type": "result", ...} or {"type": "error"}

     {"type": "report", status, ...}  ->   (no answer: counted for /metrics)

     {"type": "metrics"}       ->
                               <-   {"type": "metrics", "text": ...}

   A worker that closes its end (its client went away) cancels the run,
   queued or running.  The executor closing its end (it died) is
   BOXER_ERR_RUNTIME for the worker.  */
#ifndef BOXER_EXECUTOR_PROTOCOL_H
#define BOXER_EXECUTOR_PROTOCOL_H

#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"
#include "common/error.h"
#include "executor.h"

#define BOXER_PROTO_VERSION 1
/* The first frame of a connection, which the executor's main loop reads
   before admitting anything: small.  */
#define BOXER_PROTO_OPEN_MAX 1024
/* Any frame, whatever the config: json-c parses at most INT_MAX bytes.  A
   run's stdin and a result's stdout and stderr travel as base64, so the
   config holds output_limit_bytes to 512 MiB (two streams fit), and a
   stdin past about 1.5 GiB is refused as too large.  The frames of a run
   are bounded much closer by the config (below).  */
#define BOXER_PROTO_FRAME_MAX ((size_t) INT_MAX)
/* How long the executor waits for the rest of a frame once it began.  */
#define BOXER_PROTO_FRAME_TIMEOUT_MS 30000

/* Reading one frame, possibly over many calls on a non-blocking fd.  */
struct boxer_proto_reader
{
  size_t max;           /* largest body accepted */
  unsigned char head[4];
  size_t have;          /* bytes of head + body read so far */
  size_t len;           /* body length, once the head is in */
  char *body;
  int fd_received;      /* a passed fd, or -1 */
};

void boxer_proto_reader_init (struct boxer_proto_reader *r, size_t max);
void boxer_proto_reader_release (struct boxer_proto_reader *r);
/* Read what is there: 1 when the frame is whole (parse it with
   boxer_proto_reader_take ()), 0 when more is to come (EAGAIN), -1 on an
   error, a frame over max, or EOF (BOXER_ERR_RUNTIME, errno 0, "closed"
   in the message, before any byte of a frame; else internal).  */
int boxer_proto_reader_feed (struct boxer_proto_reader *r, int fd, struct boxer_error **err);
/* The whole frame's JSON object (caller puts it) and its fd (caller closes;
   -1 if none).  Anything but one JSON object is an error.  */
int boxer_proto_reader_take (struct boxer_proto_reader *r, json_object **msg, int *fd_out,
                             struct boxer_error **err);

/* The largest run message cfg allows (its stdin at upload_limit_bytes,
   every string field at its bound, JSON escaping included), and the
   largest result (stdout and stderr at output_limit_bytes, the outputs
   list at outputs_limit_files).  */
size_t boxer_proto_run_frame_max (const struct boxer_config *cfg);
size_t boxer_proto_result_frame_max (const struct boxer_config *cfg);

/* Read one whole frame from a blocking or non-blocking fd, waiting at most
   timeout_ms (-1: forever) once called.  */
int boxer_proto_recv (int fd, size_t max, int timeout_ms, json_object **msg, int *fd_out,
                      struct boxer_error **err);
/* Send msg (and pass_fd unless -1) as one frame.  */
int boxer_proto_send (int fd, json_object *msg, int pass_fd, struct boxer_error **err);
/* The same, giving up at deadline_ms (boxer_now_ms () clock; -1: never)
   with BOXER_ERR_RUNTIME when the reader takes nothing, so that a stalled
   reader never holds its writer past the run's own time.  */
int boxer_proto_send_until (int fd, json_object *msg, int pass_fd, long long deadline_ms,
                            struct boxer_error **err);

/* The "type" of a message, or NULL.  */
const char *boxer_proto_type (json_object *msg);

/* Messages.  Each encode returns a new object; each decode checks the
   whole message and fills its output, which the caller releases.  */
/* The open frame: "run", "hello", "report" or "metrics" of our version,
   and for a run the name of the API key it is for (NULL: none; the
   executor counts each key's runs against its max_concurrent_runs).  */
json_object *boxer_proto_open (const char *type, const char *key);
int boxer_proto_decode_open (json_object *msg, const char **type_out, const char **key_out,
                             struct boxer_error **err);

/* A run's open frame also names its image (normalised reference and
   digest) and its network, so that the executor can hand it a warm
   sandbox of that image and network when it admits it (executor/warm.h).
   These are hints: the run child checks the run message itself against
   the sandbox.  */
/* "none", "sandbox" or "host".  */
const char *boxer_proto_network_name (enum boxer_network network);

json_object *boxer_proto_open_run (const char *key, const char *image, const char *digest,
                                   enum boxer_network network);
/* NULLs and -1 (no network named) when absent: then no warm sandbox.  */
int boxer_proto_decode_run_hint (json_object *msg, const char **image_out,
                                 const char **digest_out, int *network_out,
                                 struct boxer_error **err);

/* A worker's report of one HTTP answer (executor/metrics.h), sent as the
   open frame itself; run_error points into the message.  */
struct boxer_proto_report
{
  int status;
  const char *run_error;        /* POST /run's API error code, or NULL */
  int64_t pull_ms;              /* -1: no image was looked for */
  int64_t pulled_bytes;
};
json_object *boxer_proto_encode_report (const struct boxer_proto_report *r);
int boxer_proto_decode_report (json_object *msg, struct boxer_proto_report *out,
                               struct boxer_error **err);

/* The answer to "metrics": Prometheus text, at most
   BOXER_PROTO_METRICS_MAX bytes; *text_out points into msg.  */
#define BOXER_PROTO_METRICS_MAX (8 * 1024 * 1024)
json_object *boxer_proto_encode_metrics (const char *text);
int boxer_proto_decode_metrics (json_object *msg, const char **text_out,
                                struct boxer_error **err);

json_object *boxer_proto_error (const struct boxer_error *e);
/* A decoded error message becomes *err (returns -1); anything else that
   is not of type want is an internal error.  */
int boxer_proto_expect (json_object *msg, const char *want, struct boxer_error **err);

/* One warm pool, as GET /health shows it.  */
struct boxer_proto_warm
{
  char *image;
  char *network;
  int64_t size;
  int64_t ready;
};

struct boxer_proto_hello
{
  char *runsc_version;
  char *platform;
  char *cgroup;
  int64_t running;
  int64_t queued;
  int64_t max_concurrent_runs;
  int64_t max_queued_runs;
  int64_t sessions;                     /* alive */
  struct boxer_proto_warm *warm_pool;   /* the executor adds its pool's
                                           (boxer_warm_status ()) */
  size_t n_warm_pool;
};
json_object *boxer_proto_encode_hello (const struct boxer_proto_hello *h);
int boxer_proto_decode_hello (json_object *msg, struct boxer_proto_hello *out,
                              struct boxer_error **err);
void boxer_proto_hello_release (struct boxer_proto_hello *h);

/* What the executor needs of the image: the worker resolved and holds it.  */
struct boxer_proto_image
{
  char *digest;         /* "sha256:<64 hex>": names <home>/images/rootfs/<hex> */
  char **env;
  char **entrypoint;    /* NULL when unset */
  char **cmd;           /* NULL when unset */
  char *workdir;        /* NULL when unset */
};

struct boxer_proto_run
{
  char id[40];          /* "r_" + 32 hex, chosen by the worker (its record's name) */
  bool stream;          /* the worker wants "started" and "output" frames */
  struct boxer_run_request req;
  struct boxer_proto_image image;
};

json_object *boxer_proto_encode_run (const char *id, const struct boxer_run_request *req,
                                     const struct boxer_image *image, bool stream);
/* Checked against cfg as fcgi/request.c checks a client's request: every
   bound, limits within [floor, max_limits], the network allowed, upload
   ids and destinations well formed.  */
int boxer_proto_decode_run (json_object *msg, const struct boxer_config *cfg,
                            struct boxer_proto_run *out, struct boxer_error **err);
void boxer_proto_run_release (struct boxer_proto_run *run);

/* A batch: after "admitted", a "batch" message takes the place of the
   "run" one, and the answer is one frame per run as each ends (in the
   order they end), a "result" or an "error" with the run's "index", then
   {"type": "batch_done"}; or one "error" without an index for the whole
   batch.  A batch's id is "b_" + 32 hex; its runs' results are named
   "<batch id>/<index>".  */
#define BOXER_BATCH_ID_PREFIX "b_"
#define BOXER_BATCH_ID_HEX 32

struct boxer_proto_batch
{
  char id[40];
  bool stream;          /* as a run's */
  struct boxer_batch_request batch;
  struct boxer_proto_image image;
};

json_object *boxer_proto_encode_batch (const char *id, const struct boxer_batch_request *b,
                                       const struct boxer_image *image, bool stream);
/* Checked as a run is, and: 1 <= runs <= max_batch_runs, parallelism
   within [1, BOXER_BATCH_MAX_PARALLELISM], no file where each run has a
   fresh directory (boxer_batch_path_is_private ()).  */
int boxer_proto_decode_batch (json_object *msg, const struct boxer_config *cfg,
                              struct boxer_proto_batch *out, struct boxer_error **err);
void boxer_proto_batch_release (struct boxer_proto_batch *b);
size_t boxer_proto_batch_frame_max (const struct boxer_config *cfg);

json_object *boxer_proto_encode_batch_result (size_t index, const struct boxer_run_result *res);
json_object *boxer_proto_encode_batch_error (size_t index, const struct boxer_error *e);
json_object *boxer_proto_encode_batch_done (void);
/* One frame of a batch's answer: 1 with *index and *res (a run's result),
   2 with *index and *run_err (a run that could not start), 0 at the end,
   -1 with *err for the batch's own error or a malformed frame.  */
int boxer_proto_decode_batch_event (json_object *msg, const struct boxer_config *cfg,
                                    size_t nruns, size_t *index, struct boxer_run_result *res,
                                    struct boxer_error **run_err, struct boxer_error **err);

/* A streamed run ("stream": true) sends, before its result or error,
   "started" once its program runs (from then on the worker has answered
   200 and reports any error as an event), and an "output" frame for each
   piece of stdout (stream 0) or stderr (1) the result will hold, in the
   order the program wrote them.  A streamed batch ("stream": true) sends
   "started" once its sandbox is ready and each output with the "index"
   of its run (index -1: none, a run's).  */
json_object *boxer_proto_encode_started (void);

/* The executor's end of a streamed run or batch: frames to the worker on
   fd.  A worker that takes nothing until the program's wall clock (and
   a grace) is up is taken for gone, its client no longer reading: the
   sink's hook fails and the run is cancelled, so that a stalled reader
   never keeps a program past its time.  Until "started" the deadline is
   deadline_ms (set it BOXER_PROTO_STREAM_SETUP_MS ahead: the sandbox's
   setup comes first).  per_frame (a batch): each frame may take wall_ms,
   the longest run's, as each run's own is kept by boxer-init.  */
#define BOXER_PROTO_STREAM_SETUP_MS 60000
struct boxer_proto_stream
{
  int fd;
  long long wall_ms;
  long long deadline_ms;
  bool per_frame;
};
struct boxer_run_sink boxer_proto_stream_sink (struct boxer_proto_stream *s);
json_object *boxer_proto_encode_output (long index, int stream, const char *data, size_t len);
/* *data_out (caller frees) holds at most output_limit_bytes; *index_out
   is -1 or below max_batch_runs (the worker checks it against its
   batch).  */
int boxer_proto_decode_output (json_object *msg, const struct boxer_config *cfg, long *index_out,
                               int *stream_out, char **data_out, size_t *len_out,
                               struct boxer_error **err);

/* Sessions: a sandbox kept for many execs (executor/session.h).  The open
   frame {"type": "session", "op", "id" (any op but create) or "digest"
   (create)} is routed by the executor's loop to the session's keeper,
   which answers "admitted" and takes the op's message:

     session_create {request, image} + the image's hold   ->  session
     session_exec {request, stream?}  -> [started, output...] result
     session_put {path, data}         -> session_done
     session_get {path}               -> session_file {data}
     session_info                     -> session
     session_delete                   -> session_done

   or an error at any point (a session that is no more:
   BOXER_ERR_SESSION_NOT_FOUND).  */
#define BOXER_SESSION_ID_PREFIX "s_"
#define BOXER_SESSION_ID_HEX 32

json_object *boxer_proto_open_session (const char *key, const char *op, const char *id,
                                       const char *digest);
/* Pointers into msg; op is one of the six, id well formed for all but
   create, digest for create.  */
int boxer_proto_decode_session_open (json_object *msg, const char **op_out, const char **id_out,
                                     const char **digest_out, struct boxer_error **err);

json_object *boxer_proto_encode_session_create (const struct boxer_session_request *s,
                                                const struct boxer_image *image);
/* Checked against cfg: limits in bounds, ttl_secs at most
   max_session_ttl_secs, idle_timeout_secs at most ttl_secs, network none.
   out->req and image are the caller's to release.  */
int boxer_proto_decode_session_create (json_object *msg, const struct boxer_config *cfg,
                                       struct boxer_session_request *out,
                                       struct boxer_proto_image *image, struct boxer_error **err);
/* An exec: cmd, env, workdir, stdin of req, and its limits.wall_clock_secs
   (0: the session's).  */
json_object *boxer_proto_encode_session_exec (const struct boxer_run_request *req, bool stream);
int boxer_proto_decode_session_exec (json_object *msg, const struct boxer_config *cfg,
                                     struct boxer_run_request *out, bool *stream_out,
                                     struct boxer_error **err);
/* session_put (path and data), session_get (path), session_file (data),
   session_done (neither): path NULL or data NULL leave them out.  On
   decode path_out NULL means the type has none; data is at most
   upload_limit_bytes.  */
json_object *boxer_proto_encode_session_file (const char *type, const char *path, const char *data,
                                              size_t len);
int boxer_proto_decode_session_file (json_object *msg, const struct boxer_config *cfg,
                                     const char *type, const char **path_out, char **data_out,
                                     size_t *len_out, struct boxer_error **err);

/* What GET /sessions/{id} shows; times are seconds since the epoch.  */
struct boxer_session_info
{
  char id[40];
  char *image;
  char digest[72];
  enum boxer_network network;
  struct boxer_limits limits;
  int64_t idle_timeout_secs, ttl_secs;
  int64_t created_at, last_used_at, execs;
};
json_object *boxer_proto_encode_session_info (const struct boxer_session_info *s);
int boxer_proto_decode_session_info (json_object *msg, const struct boxer_config *cfg,
                                     struct boxer_session_info *out, struct boxer_error **err);
void boxer_session_info_release (struct boxer_session_info *s);

json_object *boxer_proto_encode_result (const struct boxer_run_result *res);
/* res->image and res->image_digest are left NULL: the worker knows them.  */
int boxer_proto_decode_result (json_object *msg, const struct boxer_config *cfg,
                               struct boxer_run_result *out, struct boxer_error **err);

#endif
