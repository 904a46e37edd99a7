/* libFuzzer target for executor/protocol.c (build and run: contrib/fuzz.sh).

   The executor reads a worker's frames and messages as hostile, and a
   worker reads the executor's, so the input is used both ways:

   - as the raw byte stream of a connection, written into a real unix
     socketpair and closed, for a reader of the open frame's bound and for
     one of a larger bound (fed in input-sized chunks, with a descriptor
     passed with the first byte, and when the input ends in a byte of 1
     to 8, that many more with a later chunk).  What the reader says of
     every frame is checked against a plain model of the framing, so a
     header over the bound, EOF inside a frame, EOF between frames and
     descriptors anywhere but alone with a frame's first byte must each
     end as protocol.h documents;
   - as one message (when it is JSON), and every whole frame as one, given
     to every decoder.  A message that decodes is encoded again, sent
     through its text as boxer_proto_send () would, and must decode to the
     same values: the worker and the executor must agree on every field.

   Every descriptor the iteration made must be closed at its end, and
   LeakSanitizer checks every decoder's allocations on both outcomes.

   fuzz-sources: executor/protocol.c executor/run.c executor/files.c executor/records.c executor/expiry.c executor/outputs.c */
#include <config.h>

#include <fcntl.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "executor/protocol.h"

/* The larger reader's bound: far above libFuzzer's inputs, so that the
   bodies it is promised are cut short by EOF, not refused by their size.  */
#define BIG_MAX (1024 * 1024)

/* A descriptor passed with the stream's first byte, as the executor
   passes a run's outputs directory.  */
static int null_fd = -1;

/* Descriptors compared before and after each input.  */
#define FD_CHECKED 256

static void
check_error (int r, struct boxer_error *err)
{
  /* A failure must always say why, and a success must leave no error.  */
  if ((r < 0) != (err != NULL) || (err && err->msg == NULL))
    abort ();
}

static bool
strv_equal (char *const *a, char *const *b)
{
  size_t i;

  if (a == NULL || b == NULL)
    return a == b;
  for (i = 0; a[i] && b[i]; i++)
    if (strcmp (a[i], b[i]) != 0)
      return false;
  return a[i] == b[i];
}

static bool
str_equal (const char *a, const char *b)
{
  return a == NULL || b == NULL ? a == b : strcmp (a, b) == 0;
}

static bool
bytes_equal (const char *a, size_t alen, const char *b, size_t blen)
{
  return alen == blen && (alen == 0 || memcmp (a, b, alen) == 0);
}

/* msg as it crosses the wire: its text, parsed back as
   boxer_proto_reader_take () parses a frame.  */
static json_object *
through_text (json_object *msg)
{
  size_t len;
  const char *text = json_object_to_json_string_length (msg, JSON_C_TO_STRING_PLAIN, &len);
  json_tokener *tok = json_tokener_new ();
  json_object *obj = json_tokener_parse_ex (tok, text, (int) len);

  if (obj == NULL || json_tokener_get_error (tok) != json_tokener_success
      || json_tokener_get_parse_end (tok) != len || !json_object_is_type (obj, json_type_object))
    abort ();
  json_tokener_free (tok);
  return obj;
}

static bool
program_equal (const struct boxer_run_request *ra, const struct boxer_run_request *rb)
{
  if (!strv_equal (ra->cmd, rb->cmd) || !strv_equal (ra->env, rb->env)
      || !str_equal (ra->workdir, rb->workdir)
      || !bytes_equal (ra->stdin_data, ra->stdin_len, rb->stdin_data, rb->stdin_len)
      || ra->nfiles != rb->nfiles)
    return false;
  for (size_t i = 0; i < ra->nfiles; i++)
    if (strcmp (ra->files[i].id, rb->files[i].id) != 0
        || strcmp (ra->files[i].path, rb->files[i].path) != 0)
      return false;
  return true;
}

/* What a worker holds of the image, as a decoded message names it.  */
static struct boxer_image
image_of (const struct boxer_proto_image *im)
{
  return (struct boxer_image) { .digest = im->digest, .env = im->env,
                                .entrypoint = im->entrypoint, .cmd = im->cmd,
                                .workdir = im->workdir };
}

static void
run_round_trip (const struct boxer_proto_run *a, const struct boxer_config *cfg)
{
  struct boxer_image image = image_of (&a->image);
  json_object *enc = boxer_proto_encode_run (a->id, &a->req, &image, a->stream);
  json_object *msg = through_text (enc);
  struct boxer_proto_run b;
  struct boxer_error *err = NULL;
  const struct boxer_run_request *ra = &a->req, *rb = &b.req;

  if (boxer_proto_decode_run (msg, cfg, &b, &err) < 0)
    abort ();
  if (strcmp (a->id, b.id) != 0 || a->stream != b.stream || !str_equal (ra->image, rb->image)
      || !program_equal (ra, rb)
      || ra->limits.cpu_cores != rb->limits.cpu_cores
      || ra->limits.memory_mb != rb->limits.memory_mb
      || ra->limits.wall_clock_secs != rb->limits.wall_clock_secs
      || ra->limits.pids_limit != rb->limits.pids_limit || ra->limits.nofile != rb->limits.nofile
      || ra->network != rb->network)
    abort ();
  if (strcmp (a->image.digest, b.image.digest) != 0 || !strv_equal (a->image.env, b.image.env)
      || !strv_equal (a->image.entrypoint, b.image.entrypoint)
      || !strv_equal (a->image.cmd, b.image.cmd) || !str_equal (a->image.workdir, b.image.workdir))
    abort ();
  boxer_proto_run_release (&b);
  json_object_put (msg);
  json_object_put (enc);
}

static void
batch_round_trip (const struct boxer_proto_batch *a, const struct boxer_config *cfg)
{
  struct boxer_image image = image_of (&a->image);
  json_object *enc = boxer_proto_encode_batch (a->id, &a->batch, &image, a->stream);
  json_object *msg = through_text (enc);
  struct boxer_proto_batch b;
  struct boxer_error *err = NULL;

  if (boxer_proto_decode_batch (msg, cfg, &b, &err) < 0)
    abort ();
  if (strcmp (a->id, b.id) != 0 || a->stream != b.stream
      || !str_equal (a->batch.req.image, b.batch.req.image)
      || a->batch.parallelism != b.batch.parallelism || a->batch.nruns != b.batch.nruns
      || a->batch.req.network != b.batch.req.network
      || a->batch.req.limits.memory_mb != b.batch.req.limits.memory_mb
      || strcmp (a->image.digest, b.image.digest) != 0)
    abort ();
  for (size_t i = 0; i < a->batch.nruns; i++)
    {
      const struct boxer_run_request *ra = &a->batch.runs[i], *rb = &b.batch.runs[i];
      if (!program_equal (ra, rb) || ra->limits.wall_clock_secs != rb->limits.wall_clock_secs
          || ra->limits.memory_mb != rb->limits.memory_mb)
        abort ();
      /* What the executor takes, it can run: no file where each run has
         a fresh directory.  */
      for (size_t k = 0; k < ra->nfiles; k++)
        if (boxer_batch_path_is_private (ra->files[k].path))
          abort ();
    }
  if (a->batch.nruns < 1 || a->batch.nruns > (size_t) cfg->max_batch_runs
      || a->batch.parallelism < 1 || a->batch.parallelism > BOXER_BATCH_MAX_PARALLELISM)
    abort ();
  boxer_proto_batch_release (&b);
  json_object_put (msg);
  json_object_put (enc);
}

static void
hello_round_trip (const struct boxer_proto_hello *a)
{
  json_object *enc = boxer_proto_encode_hello (a);
  json_object *msg = through_text (enc);
  struct boxer_proto_hello b;
  struct boxer_error *err = NULL;

  if (boxer_proto_decode_hello (msg, &b, &err) < 0 || strcmp (a->runsc_version, b.runsc_version)
      || strcmp (a->platform, b.platform) || strcmp (a->cgroup, b.cgroup)
      || a->running != b.running || a->queued != b.queued
      || a->max_concurrent_runs != b.max_concurrent_runs
      || a->max_queued_runs != b.max_queued_runs)
    abort ();
  boxer_proto_hello_release (&b);
  json_object_put (msg);
  json_object_put (enc);
}

static void
result_round_trip (const struct boxer_run_result *a, const struct boxer_config *cfg)
{
  json_object *enc = boxer_proto_encode_result (a);
  json_object *msg = through_text (enc);
  struct boxer_run_result b;
  struct boxer_error *err = NULL;

  if (boxer_proto_decode_result (msg, cfg, &b, &err) < 0 || strcmp (a->id, b.id) != 0
      || a->exit_code != b.exit_code || a->signal != b.signal || a->timed_out != b.timed_out
      || a->oom_killed != b.oom_killed
      || !bytes_equal (a->stdout_data, a->stdout_len, b.stdout_data, b.stdout_len)
      || a->stdout_truncated != b.stdout_truncated
      || !bytes_equal (a->stderr_data, a->stderr_len, b.stderr_data, b.stderr_len)
      || a->stderr_truncated != b.stderr_truncated || a->wall_ms != b.wall_ms
      || a->memory_peak_bytes != b.memory_peak_bytes || a->started_at != b.started_at
      || a->finished_at != b.finished_at || a->noutputs != b.noutputs
      || a->outputs_truncated != b.outputs_truncated)
    abort ();
  for (size_t i = 0; i < a->noutputs; i++)
    if (strcmp (a->outputs[i].path, b.outputs[i].path) != 0
        || a->outputs[i].size != b.outputs[i].size)
      abort ();
  boxer_run_result_release (&b);
  json_object_put (msg);
  json_object_put (enc);
}

/* Every decoder on msg.  Outputs are released as their callers release
   them (daemon.c, exec_client.c): a run's always, a hello's and a
   result's only on success, so a failure that leaks shows.  */
static void
decode_all (json_object *msg)
{
  struct boxer_config cfg;
  struct boxer_error *err = NULL;
  const char *type = NULL, *key = NULL;
  struct boxer_proto_run run;
  struct boxer_proto_hello hello;
  struct boxer_run_result res;
  int r;

  boxer_config_init_defaults (&cfg);

  r = boxer_proto_decode_open (msg, &type, &key, &err);
  check_error (r, err);
  if (r == 0 && strcmp (type, "run") != 0 && strcmp (type, "hello") != 0
      && strcmp (type, "report") != 0 && strcmp (type, "metrics") != 0)
    abort ();
  if (r == 0 && key && (strlen (key) == 0 || strlen (key) > BOXER_API_KEY_NAME_MAX))
    abort ();
  boxer_error_release (&err);
  {
    const char *image, *digest;
    int network;
    r = boxer_proto_decode_run_hint (msg, &image, &digest, &network, &err);
    check_error (r, err);
    if (r == 0 && digest && strlen (digest) != 71)
      abort ();
    boxer_error_release (&err);
  }

  {
    struct boxer_proto_report rep;
    const char *text;
    r = boxer_proto_decode_report (msg, &rep, &err);
    check_error (r, err);
    if (r == 0)
      {
        /* What the executor's counters take is in range, and round-trips.  */
        json_object *again;
        struct boxer_proto_report back;
        if (rep.status < 100 || rep.status > 599 || rep.pull_ms < -1 || rep.pulled_bytes < 0
            || (rep.run_error && strlen (rep.run_error) > 31))
          abort ();
        again = boxer_proto_encode_report (&rep);
        if (boxer_proto_decode_report (again, &back, NULL) < 0 || back.status != rep.status
            || back.pull_ms != rep.pull_ms || back.pulled_bytes != rep.pulled_bytes
            || (rep.run_error == NULL) != (back.run_error == NULL))
          abort ();
        json_object_put (again);
      }
    boxer_error_release (&err);
    r = boxer_proto_decode_metrics (msg, &text, &err);
    check_error (r, err);
    if (r == 0 && strlen (text) > BOXER_PROTO_METRICS_MAX)
      abort ();
    boxer_error_release (&err);
  }

  r = boxer_proto_decode_run (msg, &cfg, &run, &err);
  check_error (r, err);
  if (r < 0 && err->category == BOXER_ERR_FORBIDDEN)
    {
      /* Refused for the host network alone: decode it where that is
         allowed, so that host runs round-trip too.  */
      boxer_proto_run_release (&run);
      boxer_error_release (&err);
      cfg.allow_host_network = true;
      r = boxer_proto_decode_run (msg, &cfg, &run, &err);
      check_error (r, err);
      if (r == 0 && run.req.network != BOXER_NETWORK_HOST)
        abort ();
    }
  if (r == 0)
    run_round_trip (&run, &cfg);
  boxer_proto_run_release (&run);
  boxer_error_release (&err);

  {
    /* Sessions: the executor decodes what a worker sends, and back.  */
    const char *op, *id, *digest, *path;
    struct boxer_session_request sreq;
    struct boxer_proto_image simg;
    struct boxer_run_request xreq;
    struct boxer_session_info info;
    char *data;
    size_t len;
    bool stream;

    r = boxer_proto_decode_session_open (msg, &op, &id, &digest, &err);
    check_error (r, err);
    if (r == 0 && (strcmp (op, "create") == 0) != (digest != NULL && id == NULL))
      abort ();
    boxer_error_release (&err);
    r = boxer_proto_decode_session_create (msg, &cfg, &sreq, &simg, &err);
    check_error (r, err);
    if (r == 0 && (sreq.req.network != BOXER_NETWORK_NONE || sreq.ttl_secs < 1
                   || sreq.ttl_secs > cfg.max_session_ttl_secs
                   || sreq.idle_timeout_secs < 1 || sreq.idle_timeout_secs > sreq.ttl_secs))
      abort ();
    boxer_run_request_release (&sreq.req);
    free (simg.digest);
    boxer_strv_free (simg.env);
    boxer_strv_free (simg.entrypoint);
    boxer_strv_free (simg.cmd);
    free (simg.workdir);
    boxer_error_release (&err);
    r = boxer_proto_decode_session_exec (msg, &cfg, &xreq, &stream, &err);
    check_error (r, err);
    if (r == 0 && (xreq.cmd == NULL || xreq.nfiles != 0 || xreq.limits.wall_clock_secs < 0
                   || xreq.limits.wall_clock_secs > cfg.max_limits.wall_clock_secs))
      abort ();
    boxer_run_request_release (&xreq);
    boxer_error_release (&err);
    r = boxer_proto_decode_session_file (msg, &cfg, "session_put", &path, &data, &len, &err);
    check_error (r, err);
    if (r == 0 && (path[0] != '/' || strstr (path, "/../") || len > (size_t) cfg.upload_limit_bytes))
      abort ();
    free (data);
    boxer_error_release (&err);
    r = boxer_proto_decode_session_info (msg, &cfg, &info, &err);
    check_error (r, err);
    if (r == 0)
      boxer_session_info_release (&info);
    boxer_error_release (&err);
  }
  {
    int stream;
    long index;
    char *data;
    size_t len;
    r = boxer_proto_decode_output (msg, &cfg, &index, &stream, &data, &len, &err);
    check_error (r, err);
    if (r == 0)
      {
        json_object *enc = boxer_proto_encode_output (index, stream, data, len);
        json_object *again = through_text (enc);
        int stream2;
        long index2;
        char *data2;
        size_t len2;
        if ((stream != 0 && stream != 1) || len > (size_t) cfg.output_limit_bytes
            || index < -1 || index >= cfg.max_batch_runs
            || boxer_proto_decode_output (again, &cfg, &index2, &stream2, &data2, &len2, NULL) < 0
            || stream2 != stream || index2 != index || !bytes_equal (data, len, data2, len2))
          abort ();
        free (data2);
        json_object_put (again);
        json_object_put (enc);
      }
    free (data);
    boxer_error_release (&err);
  }
  {
    struct boxer_proto_batch batch;
    r = boxer_proto_decode_batch (msg, &cfg, &batch, &err);
    check_error (r, err);
    if (r == 0)
      batch_round_trip (&batch, &cfg);
    boxer_proto_batch_release (&batch);
    boxer_error_release (&err);
  }
  {
    size_t index = 0;
    struct boxer_run_result one;
    struct boxer_error *run_err = NULL;
    memset (&one, 0, sizeof one);
    r = boxer_proto_decode_batch_event (msg, &cfg, 8, &index, &one, &run_err, &err);
    check_error (r < 0 ? -1 : 0, err);
    if ((r == 1 || r == 2) && index >= 8)
      abort ();
    if ((r == 2) != (run_err != NULL) || (run_err && run_err->msg == NULL))
      abort ();
    if (r == 1)
      boxer_run_result_release (&one);
    boxer_error_free (run_err);
    boxer_error_release (&err);
  }

  r = boxer_proto_decode_hello (msg, &hello, &err);
  check_error (r, err);
  if (r == 0)
    {
      hello_round_trip (&hello);
      boxer_proto_hello_release (&hello);
    }
  boxer_error_release (&err);

  r = boxer_proto_decode_result (msg, &cfg, &res, &err);
  check_error (r, err);
  if (r == 0)
    {
      if (res.stdout_data == NULL || res.stderr_data == NULL
          || res.noutputs > (size_t) cfg.outputs_limit_files || res.image || res.image_digest)
        abort ();
      result_round_trip (&res, &cfg);
      boxer_run_result_release (&res);
    }
  boxer_error_release (&err);

  r = boxer_proto_expect (msg, "admitted", &err);
  check_error (r, err);
  if ((r == 0) != str_equal (boxer_proto_type (msg), "admitted"))
    abort ();
  boxer_error_release (&err);

  boxer_config_release (&cfg);
}

static uint32_t
be32 (const uint8_t *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* How a stream is written into the socket.  */
struct plan
{
  size_t max;                   /* the reader's bound */
  const uint8_t *sizes;         /* chunk sizes; NULL: as much as fits */
  size_t nsizes;
  bool first_fd;                /* null_fd with the first byte */
  size_t late_chunk;            /* the chunk (> 0) that carries late_n fds */
  int late_n;                   /* 0: none; over 4 overflows the reader's room */
  bool decode;                  /* each whole message to decode_all () */
};

/* What the reader must say of the frame at pos: 1 (whole), or minus the
   category of its error.  late_at is where late fds went (SIZE_MAX: not
   yet); *late_here says whether the frame starts with them.  */
static int
expected (const uint8_t *data, size_t size, size_t pos, const struct plan *pl, size_t late_at,
          size_t *frame_len, bool *late_here)
{
  size_t left = size - pos, len, end;
  int r = 1;

  *late_here = false;
  if (left == 0)
    return -BOXER_ERR_RUNTIME;          /* EOF between frames: "closed" */
  if (left < 4)
    {
      r = -BOXER_ERR_INVALID;           /* EOF in a header */
      end = size;
    }
  else
    {
      len = be32 (data + pos);
      if (len == 0 || len > pl->max)
        {
          r = -BOXER_ERR_INVALID;       /* refused once the header is in */
          end = pos + 4;
        }
      else if (left - 4 < len)
        {
          r = -BOXER_ERR_INVALID;       /* EOF in a body */
          end = size;
        }
      else
        {
          *frame_len = len;
          end = pos + 4 + len;
        }
    }
  /* Descriptors anywhere but with a frame's first byte, or more than
     one, are refused where they are met.  */
  if (late_at > pos && late_at < end)
    return -BOXER_ERR_INVALID;
  if (late_at == pos)
    {
      if (pl->late_n != 1)
        return -BOXER_ERR_INVALID;
      *late_here = true;
    }
  return r;
}

/* fd was passed to us as null_fd: check it and close it.  */
static void
check_passed (int fd)
{
  struct stat a, b;

  if (fd < 0 || fstat (fd, &a) < 0 || fstat (null_fd, &b) < 0 || a.st_dev != b.st_dev
      || a.st_ino != b.st_ino || !(fcntl (fd, F_GETFD) & FD_CLOEXEC))
    abort ();
  close (fd);
}

/* Write data into one end of a socketpair as pl says, closing it after the
   last byte, and read frames from the other end until the reader fails,
   as it must at the latest on EOF.  */
static void
read_stream (const uint8_t *data, size_t size, const struct plan *pl)
{
  struct boxer_proto_reader rd;
  struct boxer_error *err = NULL;
  int sv[2];
  size_t off = 0, pos = 0, k = 0, nframes = 0, late_at = SIZE_MAX;
  bool closed = false;

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    abort ();
  boxer_proto_reader_init (&rd, pl->max);
  for (;;)
    {
      size_t index, frame_len = 0;
      bool late_here;
      json_object *msg = NULL;
      int r, exp, got_fd = -1;

      if (!closed && off < size)
        {
          size_t n = pl->nsizes ? 1 + pl->sizes[k % pl->nsizes] % 97 : size - off;
          struct iovec iov = { (void *) (data + off), n < size - off ? n : size - off };
          union
          {
            struct cmsghdr align;
            char buf[CMSG_SPACE (8 * sizeof (int))];
          } ctl;
          struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
          int nfd = k == 0 && pl->first_fd ? 1 : k == pl->late_chunk ? pl->late_n : 0;
          ssize_t w;

          if (nfd > 0)
            {
              struct cmsghdr *c;

              memset (&ctl, 0, sizeof ctl);
              mh.msg_control = ctl.buf;
              mh.msg_controllen = CMSG_SPACE (nfd * sizeof (int));
              c = CMSG_FIRSTHDR (&mh);
              c->cmsg_level = SOL_SOCKET;
              c->cmsg_type = SCM_RIGHTS;
              c->cmsg_len = CMSG_LEN (nfd * sizeof (int));
              for (int i = 0; i < nfd; i++)
                memcpy (CMSG_DATA (c) + i * sizeof (int), &null_fd, sizeof (int));
            }
          /* Never block: a full socket buffer waits for the reader.  */
          w = sendmsg (sv[1], &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
          if (w < 0 && errno != EAGAIN && errno != EINTR)
            abort ();
          if (w > 0)
            {
              if (k == pl->late_chunk && pl->late_n > 0)
                late_at = off;
              off += (size_t) w;
              k++;
            }
        }
      if (!closed && off == size)
        {
          close (sv[1]);
          closed = true;
        }

      r = boxer_proto_reader_feed (&rd, sv[0], &err);
      if (r == 0)
        {
          /* Only a peer still writing leaves a frame to come.  */
          if (closed || err)
            abort ();
          continue;
        }
      exp = expected (data, size, pos, pl, late_at, &frame_len, &late_here);
      if (r < 0)
        {
          check_error (r, err);
          if (exp != -(int) err->category
              || (exp == -BOXER_ERR_RUNTIME && strstr (err->msg, "closed") == NULL))
            abort ();
          boxer_error_release (&err);
          break;
        }
      if (r != 1 || exp != 1 || rd.len != frame_len || rd.have != 4 + frame_len
          || memcmp (rd.body, data + pos + 4, frame_len) != 0)
        abort ();
      pos += 4 + frame_len;
      index = nframes++;

      r = boxer_proto_reader_take (&rd, &msg, &got_fd, &err);
      check_error (r, err);
      if (r < 0 && (msg || got_fd != -1))
        abort ();
      if (r == 0)
        {
          if (!json_object_is_type (msg, json_type_object))
            abort ();
          /* A passed descriptor belongs to the frame it came with.  */
          if ((index == 0 && pl->first_fd) || late_here)
            check_passed (got_fd);
          else if (got_fd != -1)
            abort ();
          if (pl->decode)
            decode_all (msg);
          json_object_put (msg);
        }
      boxer_error_release (&err);
      /* Whatever take returned, the reader starts afresh.  */
      if (rd.body || rd.have || rd.fd_received != -1)
        abort ();
    }
  boxer_proto_reader_release (&rd);
  if (!closed)
    close (sv[1]);
  close (sv[0]);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  json_tokener *tok;
  json_object *msg;
  bool open_before[FD_CHECKED];
  struct plan open_frame = { .max = BOXER_PROTO_OPEN_MAX };
  struct plan big = { .max = BIG_MAX, .sizes = data, .nsizes = size < 16 ? size : 16,
                      .first_fd = size > 0, .decode = true };

  if (null_fd < 0 && (null_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
    abort ();
  for (int fd = 0; fd < FD_CHECKED; fd++)
    open_before[fd] = fcntl (fd, F_GETFD) >= 0;

  read_stream (data, size, &open_frame);
  /* A last byte of 1 to 8, rare in text, sends that many more fds with a
     later chunk.  */
  if (size >= 2 && data[size - 1] >= 1 && data[size - 1] <= 8)
    {
      big.late_n = data[size - 1];
      big.late_chunk = 1 + data[size - 2] % 8;
    }
  read_stream (data, size, &big);

  tok = json_tokener_new ();
  msg = json_tokener_parse_ex (tok, (const char *) data, (int) size);
  if (msg && json_tokener_get_error (tok) == json_tokener_success)
    decode_all (msg);
  json_object_put (msg);
  json_tokener_free (tok);

  /* Descriptors are allocated lowest first: a leak shows among these.  */
  for (int fd = 0; fd < FD_CHECKED; fd++)
    if ((fcntl (fd, F_GETFD) >= 0) != open_before[fd])
      abort ();
  return 0;
}
