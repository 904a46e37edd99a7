#include <config.h>

#include "batch.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <time.h>

#include "common/buf.h"
#include "common/util.h"
#include "files.h"
#include "spec.h"

/* boxer-init ids: run i is RUN_BIT | i; its file k is i << FILE_SHIFT | (k + 1),
   below RUN_BIT for every i < 100000 and k < 256 (BOXER_RUN_MAX_FILES).  */
#define RUN_BIT 0x40000000u
#define FILE_SHIFT 9
/* Past a run's wall clock, how long boxer-init has to report the kill it
   does itself.  */
#define BACKSTOP_MS 5000

struct slot
{
  bool used;
  size_t index;
  struct boxer_buf out, err;
  long long t0, deadline;
  time_t started_at;
  char *failure;                /* a file it needed was refused: why */
};

/* A destination a run of this batch had written.  */
struct written
{
  const char *path, *id;        /* into the request */
  size_t run;
  char *refused;                /* boxer-init refused the write: why */
};

struct batch
{
  struct boxer_init_link *l;
  const struct boxer_config *cfg;
  const struct boxer_batch_job *job;
  int files_fd;
  bool *done;
  size_t cap;
  struct slot *slots;
  size_t nslots;
  struct written *written;
  size_t nwritten;
};

size_t
boxer_batch_output_cap (const struct boxer_config *cfg, size_t nruns)
{
  size_t share = (size_t) cfg->batch_output_limit_bytes / (2 * (nruns ? nruns : 1));

  return share < (size_t) cfg->output_limit_bytes ? share : (size_t) cfg->output_limit_bytes;
}

/* Run index could not start: say so through the hook.  -1: stop.  */
static int __attribute__ ((format (printf, 4, 5)))
run_failed (struct batch *b, size_t index, enum boxer_error_category category, const char *fmt,
            ...)
{
  struct boxer_error e = { .category = category };
  va_list ap;
  int r;

  va_start (ap, fmt);
  if (vasprintf (&e.msg, fmt, ap) < 0)
    e.msg = NULL;
  va_end (ap);
  b->done[index] = true;
  r = b->job->on_run (b->job->data, index, NULL, &e);
  free (e.msg);
  return r ? -1 : 0;
}

/* Queue run index's files: each destination once per batch (the same
   upload again is already there; another upload there is refused).
   0, or 1 when the run was reported as failed, or -1 to stop.  */
static int
queue_files (struct batch *b, size_t index)
{
  const struct boxer_run_request *run = &b->job->batch->runs[index];

  for (size_t k = 0; k < run->nfiles; k++)
    {
      const struct boxer_run_file *f = &run->files[k];
      cleanup_error struct boxer_error *e = NULL;
      cleanup_close int fd = -1;
      bool there = false;
      char name[64];

      for (size_t w = 0; w < b->nwritten && !there; w++)
        if (strcmp (b->written[w].path, f->path) == 0)
          {
            if (strcmp (b->written[w].id, f->id) != 0)
              return run_failed (b, index, BOXER_ERR_INVALID,
                                 "runs[%zu].files[%zu]: '%s' holds another upload, written for "
                                 "runs[%zu]; a batch's runs share one file system, so give each "
                                 "upload a path of its own",
                                 index, k, f->path, b->written[w].run) < 0 ? -1 : 1;
            if (b->written[w].refused)
              return run_failed (b, index, BOXER_ERR_INVALID, "runs[%zu].files[%zu]: %s", index,
                                 k, b->written[w].refused) < 0 ? -1 : 1;
            there = true;
          }
      if (there)
        continue;
      snprintf (name, sizeof name, "%zu-%zu", index, k);
      if (boxer_files_link (b->cfg->home, f->id, b->cfg->files_ttl_secs, b->files_fd, name, &e)
          < 0)
        return run_failed (b, index, e->category, "runs[%zu].files[%zu]: %s", index, k, e->msg)
                   < 0 ? -1 : 1;
      fd = openat (b->files_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      unlinkat (b->files_fd, name, 0);
      if (fd < 0 || boxer_init_link_queue_file (b->l, (uint32_t) (index << FILE_SHIFT | (k + 1)), fd,
                                                f->path, &e) < 0)
        return run_failed (b, index, BOXER_ERR_INTERNAL, "runs[%zu].files[%zu]: %s", index, k,
                           e ? e->msg : strerror (errno)) < 0 ? -1 : 1;
      b->written = xrealloc (b->written, (b->nwritten + 1) * sizeof *b->written);
      b->written[b->nwritten++] = (struct written) { .path = f->path, .id = f->id, .run = index };
    }
  return 0;
}

/* Start run index in slot s: 0, 1 when it was reported as failed, -1 to
   stop.  */
static int
start_run (struct batch *b, size_t index, struct slot *s)
{
  const struct boxer_batch_request *batch = b->job->batch;
  const struct boxer_run_request *run = &batch->runs[index];
  const struct boxer_image *image = b->job->image;
  cleanup_error struct boxer_error *e = NULL;
  cleanup_strv char **args = NULL;
  cleanup_strv char **env = NULL;
  struct boxer_init_start st;
  int r;

  if ((r = queue_files (b, index)) != 0)
    return r;
  if (boxer_spec_resolve_args (run->cmd, image->entrypoint, image->cmd, &args, &e) < 0)
    return run_failed (b, index, e->category, "runs[%zu]: %s", index, e->msg) < 0 ? -1 : 1;
  env = boxer_spec_merge_env (image->env, run->env);
  st = (struct boxer_init_start) {
    .uid = BOXER_BATCH_UID_BASE + (uint32_t) index,
    .gid = BOXER_BATCH_UID_BASE + (uint32_t) index,
    .flags = BOXER_INIT_START_OWN_TMP | BOXER_INIT_START_KILL_UID,
    .nproc = (uint64_t) batch->req.limits.pids_limit,
    .nofile = (uint64_t) batch->req.limits.nofile,
    .as_bytes = (uint64_t) run->limits.memory_mb * 1024 * 1024,
    .wall_ms = (uint64_t) run->limits.wall_clock_secs * 1000,
    .stdout_cap = b->cap,
    .stderr_cap = b->cap,
    /* Without a working directory named (by the run, or by the image as
       anything but "/"), a run works in its own /tmp.  */
    .cwd = run->workdir ? run->workdir
           : image->workdir && *image->workdir && strcmp (image->workdir, "/") != 0
             ? image->workdir
             : (char *) "/tmp",
    .argv = args,
    .env = env,
  };
  if (boxer_init_link_queue_start (b->l, RUN_BIT | (uint32_t) index, &st, run->stdin_data,
                                   run->stdin_len, &e) < 0)
    return run_failed (b, index, BOXER_ERR_INVALID, "runs[%zu]: %s", index, e->msg) < 0 ? -1 : 1;
  *s = (struct slot) { .used = true, .index = index, .t0 = boxer_now_ms (),
                       .started_at = time (NULL) };
  s->deadline = s->t0 + run->limits.wall_clock_secs * 1000 + BACKSTOP_MS;
  boxer_buf_init (&s->out, b->cap);
  boxer_buf_init (&s->err, b->cap);
  return 0;
}

static void
slot_free (struct slot *s)
{
  boxer_buf_release (&s->out);
  boxer_buf_release (&s->err);
  free (s->failure);
  memset (s, 0, sizeof *s);
}

static struct slot *
slot_of (struct batch *b, size_t index)
{
  for (size_t i = 0; i < b->nslots; i++)
    if (b->slots[i].used && b->slots[i].index == index)
      return &b->slots[i];
  return NULL;
}

/* The EXIT of the run in s.  -1: stop (malformed, or the hook said so).  */
static int
run_exited (struct batch *b, struct slot *s, const struct boxer_init_event *ev,
            struct boxer_error **err)
{
  struct boxer_run_result res = { .memory_peak_bytes = -1 };
  struct boxer_init_reader rd;
  uint32_t status, sig, flags;
  uint64_t wall;
  size_t index = s->index;
  int r;

  boxer_init_reader_init (&rd, ev->payload, ev->len);
  if (!boxer_init_get_u32 (&rd, &status) || !boxer_init_get_u32 (&rd, &sig)
      || !boxer_init_get_u32 (&rd, &flags) || !boxer_init_get_u64 (&rd, &wall)
      || !boxer_init_reader_done (&rd) || status > 255 || sig > 64)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "boxer-init sent a malformed EXIT");
  if (s->failure)
    {
      cleanup_free char *why = s->failure;
      s->failure = NULL;
      slot_free (s);
      return run_failed (b, index, BOXER_ERR_INVALID, "runs[%zu]: %s", index, why) < 0
               ? boxer_error_make (err, BOXER_ERR_RUNTIME, "cancelled: the worker went away")
               : 0;
    }
  res.exit_code = (int) status;
  res.signal = (int) sig;
  res.wall_ms = (int64_t) wall;
  res.timed_out = flags & BOXER_INIT_TIMED_OUT;
  if (res.timed_out)
    {
      res.exit_code = 128 + SIGKILL;
      res.signal = SIGKILL;
    }
  res.stdout_truncated = s->out.truncated || (flags & BOXER_INIT_STDOUT_TRUNCATED);
  res.stderr_truncated = s->err.truncated || (flags & BOXER_INIT_STDERR_TRUNCATED);
  res.stdout_data = boxer_buf_steal (&s->out, &res.stdout_len);
  res.stderr_data = boxer_buf_steal (&s->err, &res.stderr_len);
  res.started_at = s->started_at;
  res.finished_at = time (NULL);
  slot_free (s);
  b->done[index] = true;
  r = b->job->on_run (b->job->data, index, &res, NULL);
  boxer_run_result_release (&res);
  return r ? boxer_error_make (err, BOXER_ERR_RUNTIME, "cancelled: the worker went away") : 0;
}

static bool
needs_path (const struct boxer_run_request *run, const char *path)
{
  for (size_t k = 0; k < run->nfiles; k++)
    if (strcmp (run->files[k].path, path) == 0)
      return true;
  return false;
}

/* boxer-init refused file k of run index: every run that needs it fails
   as not started, the one it was written for and any later one of the
   same upload at that path, whether it started meanwhile (boxer-init had
   its start before the refusal came back) or comes later.  */
static int
file_refused (struct batch *b, size_t index, size_t k, const struct boxer_init_event *ev,
              struct boxer_error **err)
{
  const struct boxer_batch_request *batch = b->job->batch;
  const char *path = k < batch->runs[index].nfiles ? batch->runs[index].files[k].path : NULL;
  cleanup_free char *msg = boxer_init_event_message (ev);
  cleanup_free char *why = NULL;

  if (path == NULL)
    return 0;
  why = xasprintf ("cannot write '%s' in the sandbox: %s", path, msg);
  for (size_t w = 0; w < b->nwritten; w++)
    if (b->written[w].run == index && strcmp (b->written[w].path, path) == 0
        && b->written[w].refused == NULL)
      b->written[w].refused = xstrdup (why);
  for (size_t i = 0; i < b->nslots; i++)
    {
      struct slot *s = &b->slots[i];
      struct boxer_init_writer w = { 0 };

      if (!s->used || s->failure || !needs_path (&batch->runs[s->index], path))
        continue;
      s->failure = xstrdup (why);
      boxer_init_frame_start (&w, BOXER_INIT_KILL, RUN_BIT | (uint32_t) s->index);
      boxer_init_put_u32 (&w, SIGKILL);
      if (boxer_init_link_queue (b->l, &w, err) < 0)
        return -1;
    }
  return 0;
}

/* One event of boxer-init.  */
static int
on_event (struct batch *b, const struct boxer_init_event *ev, struct boxer_error **err)
{
  bool of_run = ev->id & RUN_BIT;
  size_t index = of_run ? ev->id & ~RUN_BIT : ev->id >> FILE_SHIFT;
  struct slot *s = index < b->job->batch->nruns ? slot_of (b, index) : NULL;

  if (index >= b->job->batch->nruns)
    return 0;
  if (!of_run)
    return ev->type == BOXER_INIT_ERROR
               ? file_refused (b, index, (ev->id & ((1u << FILE_SHIFT) - 1)) - 1, ev, err)
               : 0;
  if (s == NULL)
    return 0;
  switch (ev->type)
    {
    case BOXER_INIT_STDOUT:
    case BOXER_INIT_STDERR:
      {
        int stream = ev->type == BOXER_INIT_STDERR;
        size_t kept = boxer_buf_append_capped (stream ? &s->err : &s->out, ev->payload, ev->len);
        const struct boxer_run_sink *sink = b->job->sink;
        if (kept > 0 && sink
            && sink->output (sink->data, (long) index, stream, (const char *) ev->payload, kept) < 0)
          return boxer_error_make (err, BOXER_ERR_RUNTIME, "cancelled: the worker went away");
        return 0;
      }
    case BOXER_INIT_EXIT:
      return run_exited (b, s, ev, err);
    case BOXER_INIT_ERROR:
      {
        cleanup_free char *msg = boxer_init_event_message (ev);
        slot_free (s);
        if (run_failed (b, index, BOXER_ERR_INTERNAL,
                        "runs[%zu]: boxer-init could not start the run: %s", index, msg) < 0)
          return boxer_error_make (err, BOXER_ERR_RUNTIME, "cancelled: the worker went away");
        return 0;
      }
    default:
      return 0;
    }
}

int
boxer_batch_drive (struct boxer_init_link *l, const struct boxer_config *cfg,
                   const struct boxer_batch_job *job, int files_fd, bool *done, bool *gone,
                   struct boxer_error **err)
{
  const struct boxer_batch_request *batch = job->batch;
  struct batch b = {
    .l = l, .cfg = cfg, .job = job, .files_fd = files_fd, .done = done,
    .cap = boxer_batch_output_cap (cfg, batch->nruns),
    .nslots = (size_t) batch->parallelism,
  };
  size_t next = 0;
  int r = -1;

  *gone = false;
  if (job->sink && job->sink->started (job->sink->data) < 0)
    return boxer_error_make (err, BOXER_ERR_RUNTIME, "cancelled: the worker went away");
  b.slots = xmalloc0 (b.nslots * sizeof *b.slots);
  for (;;)
    {
      struct boxer_init_event ev;
      long long deadline = -1;
      bool cancelled, active = false;
      int n;

      for (size_t i = 0; i < b.nslots && next < batch->nruns; i++)
        if (!b.slots[i].used)
          {
            if (start_run (&b, next++, &b.slots[i]) < 0)
              {
                boxer_error_make (err, BOXER_ERR_RUNTIME, "cancelled: the worker went away");
                goto out;
              }
            /* A run reported as failed left the slot free for the next.  */
            if (!b.slots[i].used)
              i--;
          }
      for (size_t i = 0; i < b.nslots; i++)
        if (b.slots[i].used)
          {
            active = true;
            if (deadline < 0 || b.slots[i].deadline < deadline)
              deadline = b.slots[i].deadline;
          }
      if (!active)
        break;
      n = boxer_init_link_next (l, deadline, job->cancel_fd, &cancelled, &ev, err);
      if (n < 0)
        {
          if ((*err)->category == BOXER_ERR_RUNTIME)
            *gone = true;
          goto out;
        }
      if (n == 0 && cancelled)
        {
          boxer_error_make (err, BOXER_ERR_RUNTIME, "cancelled: the worker went away");
          goto out;
        }
      if (n == 0)
        {
          boxer_error_make (err, BOXER_ERR_INTERNAL,
                            "boxer-init did not end a run of the batch at its wall clock");
          goto out;
        }
      if (on_event (&b, &ev, err) < 0)
        goto out;
    }
  r = 0;

out:
  for (size_t i = 0; i < b.nslots; i++)
    slot_free (&b.slots[i]);
  free (b.slots);
  for (size_t w = 0; w < b.nwritten; w++)
    free (b.written[w].refused);
  free (b.written);
  return r;
}
