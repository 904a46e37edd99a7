#include <config.h>

#include "daemon.h"

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "metrics.h"
#include "protocol.h"
#include "session.h"
#include "warm.h"

/* Connections still sending their first frame, beyond which the oldest
   is closed unread: a peer that opens many and sends nothing cannot grow
   the table without bound.  */
#define MAX_OPENING 256
/* How long a connection may take to send its first frame.  */
#define OPEN_TIMEOUT_MS 5000
/* Bytes of connections waiting in a session keeper's socket (each some 40
   bytes), beyond which more are refused as busy.  */
#define SESSION_QUEUE_BYTES 16384

enum conn_state
{
  CONN_OPENING,         /* reading the open frame */
  CONN_QUEUED,          /* a run waiting for a slot */
};

struct conn
{
  int fd;
  enum conn_state state;
  long long since_ms;
  int key;              /* index in cfg->api_keys of a run's key, or -1 */
  char digest[72];      /* a run's image digest, as its open frame says; "" unknown */
  int network;          /* and its network (enum boxer_network, -1: not said): for the pool */
  struct boxer_proto_reader rd;
};

struct daemon
{
  struct boxer_executor *ex;
  const struct boxer_config *cfg;
  int listen_fd;
  uid_t allowed_uid;
  int64_t max_running;
  int64_t max_queued;
  /* Connections in arrival order: queued runs are admitted first come,
     first served.  */
  struct conn *conns;
  size_t nconns, cap;
  pid_t *running;       /* pids of run children; max_running slots, 0 = free */
  int *running_key;     /* the key of each slot's run, or -1 once it has reported */
  bool *running_done;   /* the slot's run has reported: its child only exits now */
  int64_t nrunning;
  struct boxer_metrics metrics;
  int report_pipe[2];   /* run children's struct boxer_run_report, to the loop */
  struct boxer_warm *warm;      /* NULL: no warm pool configured */
  struct session *sessions;     /* 2 * max_sessions entries; pid 0 = free */
};

static void close_loop_in_child (struct daemon *d, int conn, int keep);
static int64_t sessions_open (const struct daemon *d);

/* A session's keeper (executor/session.h), as the loop knows it.  */
struct session
{
  char id[40];
  int key;              /* index of its API key in cfg->api_keys, or -1 */
  pid_t pid;
  int ctl;              /* the loop's end of the keeper's socketpair; -1: the session
                           ended, its keeper not yet reaped */
};

/* Runs in progress: admitted, and not yet reported over.  A child that has
   answered takes a moment more to exit (long, under a leak checker); its
   client may already be sending the next run, which must not find the
   last one still counted.  */
static int64_t
live_runs (const struct daemon *d)
{
  int64_t n = 0;

  for (int64_t s = 0; s < d->max_running; s++)
    n += d->running[s] != 0 && !d->running_done[s];
  return n;
}

/* Runs of key k running or queued.  */
static int64_t
key_load (const struct daemon *d, int k)
{
  int64_t n = 0;

  for (int64_t s = 0; s < d->max_running; s++)
    n += d->running[s] != 0 && d->running_key[s] == k;
  for (size_t i = 0; i < d->nconns; i++)
    n += d->conns[i].state == CONN_QUEUED && d->conns[i].key == k;
  return n;
}

static size_t
count_state (const struct daemon *d, enum conn_state st)
{
  size_t n = 0;
  for (size_t i = 0; i < d->nconns; i++)
    n += d->conns[i].state == st;
  return n;
}

static void
conn_drop (struct daemon *d, size_t i)
{
  close (d->conns[i].fd);
  boxer_proto_reader_release (&d->conns[i].rd);
  memmove (&d->conns[i], &d->conns[i + 1], (d->nconns - i - 1) * sizeof *d->conns);
  d->nconns--;
}

/* Answer with an error and drop.  The socket is fresh or idle, so one small
   frame fits its buffer; a peer that does not read loses it.  */
static void
conn_refuse (struct daemon *d, size_t i, enum boxer_error_category category, const char *fmt,
             ...)
{
  struct boxer_error e = { .category = category };
  json_object *msg;
  va_list ap;

  if (category == BOXER_ERR_BUSY)
    d->metrics.refused_busy++;
  else if (category == BOXER_ERR_TOO_MANY && d->conns[i].key >= 0)
    d->metrics.key_refused[d->conns[i].key]++;
  va_start (ap, fmt);
  if (vasprintf (&e.msg, fmt, ap) < 0)
    e.msg = NULL;
  va_end (ap);
  msg = boxer_proto_error (&e);
  boxer_proto_send (d->conns[i].fd, msg, -1, NULL);
  json_object_put (msg);
  free (e.msg);
  conn_drop (d, i);
}

static void
answer_hello (struct daemon *d, size_t i)
{
  cleanup_error struct boxer_error *err = NULL;
  struct boxer_proto_hello h = {
    .runsc_version = (char *) boxer_executor_runsc_version (d->ex),
    .platform = (char *) boxer_executor_platform (d->ex),
    .cgroup = (char *) boxer_executor_cgroup_mode (d->ex),
    .running = live_runs (d),
    .queued = (int64_t) count_state (d, CONN_QUEUED),
    .max_concurrent_runs = d->max_running,
    .max_queued_runs = d->max_queued,
  };
  json_object *msg;

  h.sessions = sessions_open (d);
  /* GET /health asks this: healthy means runs can start.  */
  if (boxer_executor_check (d->ex, &err) < 0)
    {
      conn_refuse (d, i, err->category, "%s", err->msg);
      return;
    }
  msg = boxer_proto_encode_hello (&h);
  if (d->warm)
    json_object_object_add (msg, "warm_pool", boxer_warm_status (d->warm));
  boxer_proto_send (d->conns[i].fd, msg, -1, NULL);
  json_object_put (msg);
  conn_drop (d, i);
}

static void
answer_metrics (struct daemon *d, size_t i)
{
  struct boxer_metrics_now now = {
    .running = live_runs (d),
    .queued = (int64_t) count_state (d, CONN_QUEUED),
    .max_running = d->max_running,
    .max_queued = d->max_queued,
    .warm_sandboxes = boxer_warm_sandboxes (d->warm),
    .warm_ready = boxer_warm_ready (d->warm),
    .sessions = sessions_open (d),
  };
  cleanup_free char *text = boxer_metrics_render (&d->metrics, &now);
  json_object *msg = boxer_proto_encode_metrics (text);
  struct timeval tv = { .tv_sec = 2 };
  int fd = d->conns[i].fd;

  /* Larger than a small frame: sent blocking, but never for long, as the
     worker reads it at once.  */
  if (fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK) < 0
      || setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
    boxer_log_warning ("metrics: %s", strerror (errno));
  else
    boxer_proto_send (fd, msg, -1, NULL);
  json_object_put (msg);
  conn_drop (d, i);
}

/* Run children's reports, as many as have come.  */
static void
read_reports (struct daemon *d)
{
  struct boxer_run_report r;

  while (read (d->report_pipe[0], &r, sizeof r) == (ssize_t) sizeof r)
    {
      for (int64_t k = 0; k < d->max_running && !r.more; k++)
        if (d->running[k] == (pid_t) r.pid && r.pid > 0)
          {
            d->running_done[k] = true;
            d->running_key[k] = -1;
          }
      boxer_metrics_run_report (&d->metrics, &r);
    }
}

/* In the run child: build what the executor needs of the image from the
   message.  The rootfs is found from the digest alone, in the store's
   layout (cache/store.h), never from a path a worker sends.  */
static int
child_image (const struct boxer_config *cfg, const struct boxer_proto_run *run,
             struct boxer_image *img, struct boxer_error **err)
{
  struct stat st;

  memset (img, 0, sizeof *img);
  img->reference = run->req.image;
  img->digest = run->image.digest;
  img->rootfs = xasprintf ("%s/images/rootfs/%s/rootfs", cfg->home, run->image.digest + 7);
  img->env = run->image.env;
  img->entrypoint = run->image.entrypoint;
  img->cmd = run->image.cmd;
  img->workdir = run->image.workdir;
  if (lstat (img->rootfs, &st) < 0 || !S_ISDIR (st.st_mode))
    return boxer_error_make (err, BOXER_ERR_IMAGE_NOT_FOUND,
                             "image %s is not in the store; pull it again", run->image.digest);
  return 0;
}

static void
child_send_error (int fd, struct boxer_error *e)
{
  json_object *msg = boxer_proto_error (e);

  if (e->category == BOXER_ERR_INTERNAL)
    boxer_log_error ("run: %s", e->msg);
  boxer_proto_send (fd, msg, -1, NULL);
  json_object_put (msg);
}

/* Tell the loop the run is over, once, before the worker hears it.  */
static void
send_report (struct daemon *d, const struct boxer_run_report *r, bool *reported)
{
  if (*reported)
    return;
  *reported = true;
  boxer_run_report_send (d->report_pipe[1], r);
}

struct batch_answer
{
  struct daemon *d;
  int fd;
  size_t ok, failed;
};

/* Each run's end goes to the worker as it comes, and counts as a run.  */
static int
batch_send (void *data, size_t index, const struct boxer_run_result *res,
            const struct boxer_error *run_err)
{
  struct batch_answer *a = data;
  json_object *msg = res ? boxer_proto_encode_batch_result (index, res)
                         : boxer_proto_encode_batch_error (index, run_err);
  struct boxer_run_report report = {
    .pid = (int32_t) getpid (), .more = 1,
    .kind = res ? BOXER_REPORT_RUN : BOXER_REPORT_FAILED,
    .outcome = res ? (int32_t) boxer_run_outcome (res) : 0,
    .boot_ms = -1, .setup_ms = -1, .run_ms = res ? (int32_t) res->wall_ms : -1, .teardown_ms = -1,
  };
  int r;

  boxer_run_report_send (a->d->report_pipe[1], &report);
  r = boxer_proto_send (a->fd, msg, -1, NULL);
  json_object_put (msg);
  if (res && boxer_run_outcome (res) == BOXER_OUTCOME_OK)
    a->ok++;
  else
    a->failed++;
  return r;
}


/* A batch, in the run's process: msg (taken) is its message; sb and
   taken_ms as for child_run ().  */
static int
child_batch (struct daemon *d, int fd, json_object *msg, struct boxer_warm_sandbox *sb,
             long long taken_ms)
{
  cleanup_error struct boxer_error *err = NULL;
  struct boxer_proto_batch batch = { 0 };
  struct boxer_proto_run as_run = { 0 };
  struct boxer_warm_sandbox own;
  struct boxer_image img = { 0 };
  struct batch_answer answer = { .d = d, .fd = fd };
  struct boxer_run_report report = { .pid = (int32_t) getpid () };
  long long t0 = boxer_now_ms ();
  bool reported = false;
  bool warm = sb != NULL;       /* sb was given: the pool's, else booted into own */
  int ret = 1;

  if (boxer_proto_decode_batch (msg, d->cfg, &batch, &err) < 0)
    goto answer;
  boxer_log_set_request_id (batch.id);
  /* child_image () takes a run: the batch's image is the same.  */
  as_run.req.image = batch.batch.req.image;
  as_run.image = batch.image;
  if (child_image (d->cfg, &as_run, &img, &err) < 0)
    goto answer;
  if (!warm)
    sb = &own;
  {
    struct boxer_proto_stream to_worker = { .fd = fd, .per_frame = true };
    struct boxer_run_sink sink = boxer_proto_stream_sink (&to_worker);
    struct boxer_batch_job job = {
      .id = batch.id, .batch = &batch.batch, .image = &img, .cancel_fd = fd,
      .on_run = batch_send, .data = &answer, .sink = batch.stream ? &sink : NULL,
    };

    for (size_t i = 0; i < batch.batch.nruns; i++)
      if (batch.batch.runs[i].limits.wall_clock_secs * 1000 > to_worker.wall_ms)
        to_worker.wall_ms = batch.batch.runs[i].limits.wall_clock_secs * 1000;
    long long boot_ms = -1;
    int r = boxer_executor_run_batch (d->ex, &job, sb, warm, &boot_ms, &err);
    if (r < 0)
      sb = NULL;
    if (r == 0)
      {
        json_object *done = boxer_proto_encode_batch_done ();
        /* Its runs counted themselves: what is left is the sandbox's.  */
        report = (struct boxer_run_report) {
          .pid = (int32_t) getpid (),
          .kind = BOXER_REPORT_TIMINGS,
          .boot_ms = (int32_t) (boot_ms >= 0 ? boot_ms : taken_ms),
          .setup_ms = -1, .run_ms = -1, .teardown_ms = -1,
        };
        send_report (d, &report, &reported);
        if (boxer_proto_send (fd, done, -1, &err) == 0)
          ret = 0;
        json_object_put (done);
        boxer_log_info ("batch %s: %zu runs, %zu ok, %zu not, %lld ms", batch.id,
                        batch.batch.nruns, answer.ok, answer.failed, boxer_now_ms () - t0);
      }
  }

answer:
  if (err && err->category == BOXER_ERR_RUNTIME)
    boxer_log_info ("batch %s: %s", batch.id[0] ? batch.id : "(not started)",
                    strcmp (err->msg, "closed") == 0 ? "cancelled: the worker went away"
                                                     : err->msg);
  else if (err)
    {
      send_report (d, &report, &reported);
      child_send_error (fd, err);
    }
  if (sb)
    boxer_executor_warm_destroy (d->ex, sb);
  send_report (d, &report, &reported);
  free (img.rootfs);
  boxer_proto_batch_release (&batch);
  json_object_put (msg);
  return ret;
}

/* A run that no warm sandbox serves boots its own, as the pool would
   but named after the run and at its limits.  1: booted; 0: its memory
   limit killed the sandbox as it started, which is the run's result
   (*res), not the service's failure; -1: failed.  Nothing is left of a
   boot that did not come up.  */
static int
boot_own (struct daemon *d, const struct boxer_proto_run *run, const struct boxer_image *img,
          struct boxer_warm_sandbox *sb, struct boxer_run_result *res, struct boxer_error **err)
{
  if (boxer_executor_warm_claim (d->ex, img->digest, run->req.network, run->id, sb, err) < 0)
    return -1;
  if (boxer_executor_warm_boot (d->ex, sb, &run->req.limits, err) == 0)
    return 1;
  if (!sb->boot_oom)
    return -1;
  boxer_log_info ("run %s: its sandbox ran out of memory as it started: %s", run->id,
                  (*err)->msg);
  boxer_error_release (err);
  memset (res, 0, sizeof *res);
  memcpy (res->id, run->id, sizeof res->id);
  res->image = xstrdup (run->req.image);
  res->image_digest = xstrdup (img->digest);
  res->exit_code = 128 + SIGKILL;
  res->signal = SIGKILL;
  res->oom_killed = true;
  res->memory_peak_bytes = -1;
  res->started_at = res->finished_at = time (NULL);
  return 0;
}

/* The whole life of one admitted run, in its own process; sb: a warm
   sandbox it was given (it owns it), or NULL; taken_ms: how long handing
   it over took, the boot phase of a run that uses it.  */
static int
child_run (struct daemon *d, int fd, struct boxer_warm_sandbox *sb, long long taken_ms)
{
  cleanup_error struct boxer_error *err = NULL;
  struct boxer_proto_run run = { 0 };
  struct boxer_run_result res;
  struct boxer_image img = { 0 };
  struct boxer_run_job job;
  json_object *msg = NULL;
  struct boxer_run_report report = { .pid = (int32_t) getpid () };
  struct boxer_warm_sandbox own;
  long long boot_ms = sb ? taken_ms : -1;
  bool reported = false;
  int output_fd = -1, extra_fd = -1, ret = 1;

  msg = boxer_proto_open ("admitted", NULL);
  json_object_object_del (msg, "version");
  if (boxer_proto_send (fd, msg, -1, &err) < 0)
    goto out;
  json_object_put (msg);
  msg = NULL;

  if (boxer_proto_recv (fd, boxer_proto_batch_frame_max (d->cfg), BOXER_PROTO_FRAME_TIMEOUT_MS,
                        &msg, &extra_fd, &err) < 0)
    goto answer;
  if (extra_fd >= 0)
    {
      /* A run takes no descriptor from a worker.  */
      close (extra_fd);
      boxer_error_make (&err, BOXER_ERR_INVALID, "protocol: a run message with a descriptor");
      goto answer;
    }
  if (boxer_proto_type (msg) && strcmp (boxer_proto_type (msg), "batch") == 0)
    {
      /* It reports and answers itself.  */
      ret = child_batch (d, fd, msg, sb, taken_ms);
      close (fd);
      return ret;
    }
  if (boxer_proto_decode_run (msg, d->cfg, &run, &err) < 0)
    goto answer;
  json_object_put (msg);
  msg = NULL;
  boxer_log_set_request_id (run.id);
  if (child_image (d->cfg, &run, &img, &err) == 0)
    {
      int r;
      struct boxer_proto_stream to_worker = {
        .fd = fd,
        .wall_ms = run.req.limits.wall_clock_secs * 1000,
        .deadline_ms = boxer_now_ms () + BOXER_PROTO_STREAM_SETUP_MS,
      };
      struct boxer_run_sink sink = boxer_proto_stream_sink (&to_worker);

      job = (struct boxer_run_job) { .id = run.id, .req = &run.req, .image = &img, .cancel_fd = fd,
                                     .sink = run.stream ? &sink : NULL };
      if (sb && !boxer_executor_warm_fits (sb, &run.req, &img))
        {
          /* The open frame promised another run: the sandbox is not for
             this one, and goes.  */
          boxer_executor_warm_destroy (d->ex, sb);
          sb = NULL;
        }
      if (sb == NULL)
        {
          long long t0 = boxer_now_ms ();
          r = boot_own (d, &run, &img, &own, &res, &err);
          if (r < 0)
            goto answer;
          boot_ms = boxer_now_ms () - t0;
          if (r == 1)
            sb = &own;
          r = 0;
        }
      if (sb)
        r = boxer_executor_run_warm (d->ex, &job, sb, &res, &output_fd, &err);
      if (r < 0)
        sb = NULL;      /* destroyed with the failure */
      if (r == 0 && sb == &own && sb->lease >= 0)
        {
          /* Its processes are dead; the rest of a sandbox goes after the
             answer, as a warm one's does, but for its network address: a
             client that has its result may count on that being free for
             its next run.  *output_fd keeps what the run wrote.  */
          long long t0 = boxer_now_ms ();
          boxer_executor_warm_destroy (d->ex, sb);
          sb = NULL;
          res.teardown_ms += boxer_now_ms () - t0;
        }
      if (r == 0)
        {
          report = (struct boxer_run_report) {
            .pid = (int32_t) getpid (),
            .kind = BOXER_REPORT_RUN,
            .outcome = (int32_t) boxer_run_outcome (&res),
            .boot_ms = (int32_t) boot_ms,
            .setup_ms = (int32_t) res.setup_ms,
            .run_ms = (int32_t) res.wall_ms,
            .teardown_ms = (int32_t) res.teardown_ms,
          };
          msg = boxer_proto_encode_result (&res);
          boxer_run_result_release (&res);
          send_report (d, &report, &reported);
          if (boxer_proto_send (fd, msg, output_fd, &err) == 0)
            ret = 0;
        }
    }

answer:
  /* The worker gone (before or during the run) hears nothing more.  */
  if (err && err->category == BOXER_ERR_RUNTIME)
    boxer_log_info ("run %s: %s", run.id[0] ? run.id : "(not started)",
                    strcmp (err->msg, "closed") == 0 ? "cancelled: the worker went away"
                                                     : err->msg);
  else if (err)
    {
      send_report (d, &report, &reported);
      child_send_error (fd, err);
    }
out:
  if (sb)
    boxer_executor_warm_destroy (d->ex, sb);
  send_report (d, &report, &reported);
  free (img.rootfs);
  boxer_proto_run_release (&run);
  json_object_put (msg);
  if (output_fd >= 0)
    close (output_fd);
  close (fd);
  return ret;
}

/* Start the run of queued connection i in a child of its own.  */
static void
admit (struct daemon *d, size_t i)
{
  int fd = d->conns[i].fd;
  struct boxer_warm_sandbox sb;
  long long t_take = boxer_now_ms ();
  bool warm = d->conns[i].digest[0]
              && boxer_warm_take (d->warm, d->conns[i].digest, d->conns[i].network, &sb);
  pid_t pid = fork ();

  if (pid < 0)
    {
      boxer_log_error ("fork a run: %s", strerror (errno));
      if (warm)
        boxer_executor_warm_destroy (d->ex, &sb);
      conn_refuse (d, i, BOXER_ERR_BUSY, "the executor cannot start a run now; retry");
      return;
    }
  if (pid == 0)
    {
      /* Only its own sandbox: the pool's others are the loop's.  */
      close_loop_in_child (d, fd, -1);
      /* exit (), not _exit (): LeakSanitizer checks a run child as it ends.  */
      exit (child_run (d, fd, warm ? &sb : NULL, boxer_now_ms () - t_take));
    }
  if (warm)
    {
      boxer_executor_warm_close (&sb);
      d->metrics.warm_runs++;
    }
  else if (d->conns[i].digest[0]
           && boxer_warm_serves (d->warm, d->conns[i].digest, d->conns[i].network))
    d->metrics.warm_misses++;
  for (int64_t k = 0; k < d->max_running; k++)
    if (d->running[k] == 0)
      {
        d->running[k] = pid;
        d->running_key[k] = d->conns[i].key;
        d->running_done[k] = false;
        break;
      }
  d->nrunning++;
  boxer_metrics_observe (&d->metrics, BOXER_PHASE_QUEUE, boxer_now_ms () - d->conns[i].since_ms);
  if (d->conns[i].key >= 0)
    d->metrics.key_runs[d->conns[i].key]++;
  /* The child owns the connection now.  */
  conn_drop (d, i);
}

static void
admit_queued (struct daemon *d)
{
  for (size_t i = 0; i < d->nconns && d->nrunning < d->max_running;)
    if (d->conns[i].state == CONN_QUEUED)
      admit (d, i);     /* drops i: the next is at i now */
    else
      i++;
}

static void
reap (struct daemon *d)
{
  int status;
  pid_t pid;

  while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
    {
      int64_t booted_ms;
      if (boxer_warm_reaped (d->warm, pid, status, &booted_ms))
        {
          boxer_metrics_warm_boot (&d->metrics, booted_ms);
          continue;
        }
      for (int64_t s = 0; s < 2 * d->cfg->max_sessions; s++)
        if (d->sessions[s].pid == pid)
          {
            if (d->sessions[s].ctl >= 0)
              close (d->sessions[s].ctl);
            memset (&d->sessions[s], 0, sizeof d->sessions[s]);
            break;
          }
      for (int64_t k = 0; k < d->max_running; k++)
        if (d->running[k] == pid)
          {
            d->running[k] = 0;
            d->nrunning--;
            if (WIFSIGNALED (status))
              boxer_log_warning ("run process %d killed by signal %d", (int) pid,
                                 WTERMSIG (status));
            break;
          }
    }
}

/* In a warm pool's boot or destroy child: nothing of the loop's.  */
static void
close_loop_fds (void *data)
{
  struct daemon *d = data;

  close (d->listen_fd);
  close (d->report_pipe[0]);
  for (size_t k = 0; k < d->nconns; k++)
    close (d->conns[k].fd);
  for (int64_t s = 0; d->sessions && s < 2 * d->cfg->max_sessions; s++)
    if (d->sessions[s].pid != 0 && d->sessions[s].ctl >= 0)
      close (d->sessions[s].ctl);
}

/* Boots of warm sandboxes take the slots runs leave free, never one a run
   could use, and let the programs going finish first (warm.c): those of
   runs that have not reported; a child that has is only answering and
   removing its sandbox, and back-to-back runs must find the pool refilled.  */
static void
tend_pool (struct daemon *d)
{
  int64_t free_slots = d->max_running - d->nrunning;

  if (d->warm)
    boxer_warm_tend (d->warm, (int) (free_slots > 0 ? free_slots : 0), live_runs (d) > 0);
}

static bool
peer_allowed (const struct daemon *d, int fd)
{
  struct ucred cred;
  socklen_t len = sizeof cred;

  if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    return false;
  if (cred.uid == 0 || (d->allowed_uid != (uid_t) -1 && cred.uid == d->allowed_uid))
    return true;
  boxer_log_warning ("refused a connection from uid %d (pid %d): only root and the workers' "
                     "user may use the executor", (int) cred.uid, (int) cred.pid);
  return false;
}

/* Returns false when there is nothing more to accept now.  */
static bool
accept_one (struct daemon *d)
{
  int fd = accept4 (d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

  if (fd < 0)
    {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        boxer_log_warning ("accept: %s", strerror (errno));
      return errno == EINTR || errno == ECONNABORTED;
    }
  if (!peer_allowed (d, fd))
    {
      close (fd);
      return true;
    }
  /* Full of connections that sent nothing: the oldest goes.  A worker
     sends its first frame as soon as it connects, so idle connections
     cannot crowd out real ones.  */
  if (count_state (d, CONN_OPENING) >= MAX_OPENING)
    for (size_t i = 0; i < d->nconns; i++)
      if (d->conns[i].state == CONN_OPENING)
        {
          conn_drop (d, i);
          break;
        }
  if (d->nconns == d->cap)
    {
      d->cap = d->cap ? 2 * d->cap : 64;
      d->conns = xrealloc (d->conns, d->cap * sizeof *d->conns);
    }
  d->conns[d->nconns] = (struct conn) { .fd = fd, .state = CONN_OPENING,
                                        .since_ms = boxer_now_ms (), .key = -1,
                                        .network = -1 };
  boxer_proto_reader_init (&d->conns[d->nconns].rd, BOXER_PROTO_OPEN_MAX);
  d->nconns++;
  return true;
}

/* In a child the loop forked to keep something of its own: nothing of the
   loop's but conn (its connection) and keep (a descriptor of its own).  */
static void
close_loop_in_child (struct daemon *d, int conn, int keep)
{
  struct sigaction dfl = { .sa_handler = SIG_DFL };

  /* With the loop gone, nobody would answer or clean up: die with it and
     leave the rest to the next loop's sweep.  */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (getppid () == 1)
    _exit (1);
  sigaction (SIGTERM, &dfl, NULL);
  sigaction (SIGINT, &dfl, NULL);
  sigaction (SIGCHLD, &dfl, NULL);
  close (d->listen_fd);
  close (d->report_pipe[0]);
  for (size_t k = 0; k < d->nconns; k++)
    if (d->conns[k].fd != conn)
      close (d->conns[k].fd);
  for (int64_t s = 0; s < 2 * d->cfg->max_sessions; s++)
    if (d->sessions[s].pid != 0 && d->sessions[s].ctl >= 0 && d->sessions[s].ctl != keep)
      close (d->sessions[s].ctl);
  boxer_warm_close_all (d->warm);
}

/* Sessions open: their keepers alive and not ended.  */
static int64_t
sessions_open (const struct daemon *d)
{
  int64_t n = 0;

  for (int64_t s = 0; s < 2 * d->cfg->max_sessions; s++)
    n += d->sessions[s].pid != 0 && d->sessions[s].ctl >= 0;
  return n;
}

/* A new session: its keeper forked with the connection.  */
static void
session_create (struct daemon *d, size_t i, const char *digest)
{
  struct session *slot = NULL;
  char id[40];
  int sv[2];
  pid_t pid;

  /* Twice max_sessions places: an ended session's keeper keeps its place
     until it is reaped, but no longer counts.  */
  for (int64_t s = 0; s < 2 * d->cfg->max_sessions && slot == NULL; s++)
    if (d->sessions[s].pid == 0)
      slot = &d->sessions[s];
  if (sessions_open (d) >= d->cfg->max_sessions || slot == NULL)
    {
      conn_refuse (d, i, BOXER_ERR_BUSY,
                   "this server keeps at most %" PRId64 " sessions (max_sessions) and all are in "
                   "use; delete one you no longer need, or retry later", d->cfg->max_sessions);
      return;
    }
  if (boxer_random_id (id, BOXER_SESSION_ID_PREFIX, BOXER_SESSION_ID_HEX, NULL) < 0
      || socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    {
      conn_refuse (d, i, BOXER_ERR_BUSY, "the executor cannot start a session now; retry");
      return;
    }
  pid = fork ();
  if (pid < 0)
    {
      close (sv[0]);
      close (sv[1]);
      conn_refuse (d, i, BOXER_ERR_BUSY, "the executor cannot start a session now; retry");
      return;
    }
  if (pid == 0)
    {
      int conn = d->conns[i].fd;
      close (sv[0]);
      close_loop_in_child (d, conn, -1);
      /* exit (), not _exit (): LeakSanitizer checks a keeper as it ends.  */
      exit (boxer_session_keep (d->ex, d->cfg, id, digest, conn, sv[1], d->report_pipe[1]));
    }
  close (sv[1]);
  memcpy (slot->id, id, sizeof slot->id);
  slot->key = d->conns[i].key;
  slot->pid = pid;
  slot->ctl = sv[0];
  /* The keeper owns the connection now.  */
  conn_drop (d, i);
}

/* A session's connection: to its keeper, or a new keeper.  */
static void
session_route (struct daemon *d, size_t i, json_object *msg)
{
  cleanup_error struct boxer_error *err = NULL;
  const char *op, *id, *digest;
  struct session *s = NULL;
  json_object *fwd;
  int r;

  if (boxer_proto_decode_session_open (msg, &op, &id, &digest, &err) < 0)
    {
      conn_refuse (d, i, BOXER_ERR_INVALID, "%s", err->msg);
      return;
    }
  if (strcmp (op, "create") == 0)
    {
      session_create (d, i, digest);
      return;
    }
  /* Another key's session is as unknown as one that never was.  */
  for (int64_t k = 0; k < 2 * d->cfg->max_sessions && s == NULL; k++)
    if (d->sessions[k].pid != 0 && d->sessions[k].ctl >= 0 && strcmp (d->sessions[k].id, id) == 0
        && d->sessions[k].key == d->conns[i].key)
      s = &d->sessions[k];
  if (s == NULL)
    {
      conn_refuse (d, i, BOXER_ERR_SESSION_NOT_FOUND,
                   "no session '%s': it never was, or it ended (deleted, idle for its "
                   "idle_timeout_secs, past its ttl_secs, or the executor restarted)", id);
      return;
    }
  /* Never waits: the keeper reads its socket between ops, and a socket
     that holds this much means far more connections wait for it than any
     client should send.  Well below its buffer, so that a frame is never
     cut in two.  */
  {
    int queued = 0;
    r = ioctl (s->ctl, TIOCOUTQ, &queued) < 0 || queued > SESSION_QUEUE_BYTES ? -1 : 0;
  }
  fwd = json_object_new_object ();
  json_object_object_add (fwd, "op", json_object_new_string (op));
  if (r == 0)
    {
      int fl = fcntl (s->ctl, F_GETFL);
      fcntl (s->ctl, F_SETFL, fl | O_NONBLOCK);
      r = boxer_proto_send_until (s->ctl, fwd, d->conns[i].fd, boxer_now_ms (), &err);
      fcntl (s->ctl, F_SETFL, fl);
    }
  json_object_put (fwd);
  if (r < 0)
    {
      conn_refuse (d, i, BOXER_ERR_BUSY, "session %s has too many requests waiting; retry", id);
      return;
    }
  conn_drop (d, i);
}

/* Connection i is readable.  */
static void
on_readable (struct daemon *d, size_t i)
{
  cleanup_error struct boxer_error *err = NULL;
  struct conn *c = &d->conns[i];
  json_object *msg = NULL;
  const char *type, *key_name;
  const struct boxer_api_key *key = NULL;
  json_object *msg_session = NULL;
  int passed = -1, r;

  if (c->state == CONN_QUEUED)
    {
      /* A queued worker sends nothing: this is its end closing (its client
         went away), or a broken peer.  Either way it leaves the queue.  */
      conn_drop (d, i);
      return;
    }
  r = boxer_proto_reader_feed (&c->rd, c->fd, &err);
  if (r == 0)
    return;
  if (r < 0 || boxer_proto_reader_take (&c->rd, &msg, &passed, &err) < 0)
    {
      if (err->category != BOXER_ERR_RUNTIME)
        conn_refuse (d, i, BOXER_ERR_INVALID, "%s", err->msg);
      else
        conn_drop (d, i);
      return;
    }
  if (passed >= 0)
    {
      close (passed);
      json_object_put (msg);
      conn_refuse (d, i, BOXER_ERR_INVALID, "protocol: a first message with a descriptor");
      return;
    }
  if (boxer_proto_decode_open (msg, &type, &key_name, &err) < 0)
    {
      json_object_put (msg);
      conn_refuse (d, i, BOXER_ERR_INVALID, "%s", err->msg);
      return;
    }
  if (key_name && (key = boxer_config_key_by_name (d->cfg, key_name)) == NULL)
    {
      json_object_put (msg);
      conn_refuse (d, i, BOXER_ERR_INVALID,
                   "protocol: a run for an API key this executor does not know; restart the "
                   "workers and the executor with the same config");
      return;
    }
  if (strcmp (type, "report") == 0)
    {
      struct boxer_proto_report rep;
      if (boxer_proto_decode_report (msg, &rep, &err) == 0)
        boxer_metrics_http (&d->metrics, rep.status, rep.run_error, rep.pull_ms,
                            rep.pulled_bytes);
      json_object_put (msg);
      conn_drop (d, i);
      return;
    }
  if (strcmp (type, "run") == 0)
    {
      const char *image, *digest;
      int network;
      if (boxer_proto_decode_run_hint (msg, &image, &digest, &network, &err) < 0)
        {
          json_object_put (msg);
          conn_refuse (d, i, BOXER_ERR_INVALID, "%s", err->msg);
          return;
        }
      if (digest)
        {
          snprintf (c->digest, sizeof c->digest, "%s", digest);
          c->network = network;
          boxer_warm_learn (d->warm, image, digest);
        }
    }
  if (strcmp (type, "session") == 0)
    msg_session = json_object_get (msg);
  json_object_put (msg);
  if (strcmp (type, "hello") == 0)
    {
      answer_hello (d, i);
      return;
    }
  if (strcmp (type, "metrics") == 0)
    {
      answer_metrics (d, i);
      return;
    }
  if (strcmp (type, "session") == 0)
    {
      c->key = key ? (int) (key - d->cfg->api_keys) : -1;
      session_route (d, i, msg_session);
      json_object_put (msg_session);
      return;
    }
  /* A key's own bound comes before the service's: one busy client gets
     429, and leaves the queue to the others.  */
  c->key = key ? (int) (key - d->cfg->api_keys) : -1;
  if (key && key->max_concurrent_runs > 0 && key_load (d, c->key) >= key->max_concurrent_runs)
    {
      conn_refuse (d, i, BOXER_ERR_TOO_MANY,
                   "API key '%s' has %" PRId64 " runs running or waiting, its "
                   "max_concurrent_runs; retry when one has finished",
                   key->name, key->max_concurrent_runs);
      return;
    }
  if (d->nrunning < d->max_running && count_state (d, CONN_QUEUED) == 0)
    {
      admit (d, i);
      return;
    }
  if ((int64_t) count_state (d, CONN_QUEUED) >= d->max_queued)
    {
      conn_refuse (d, i, BOXER_ERR_BUSY,
                   "%" PRId64 " runs are running and %" PRId64 " waiting, the most this server "
                   "takes; retry later", live_runs (d), d->max_queued);
      return;
    }
  c->state = CONN_QUEUED;
  c->since_ms = boxer_now_ms ();
}

static void
expire (struct daemon *d)
{
  long long now = boxer_now_ms ();

  for (size_t i = 0; i < d->nconns;)
    {
      struct conn *c = &d->conns[i];

      if (c->state == CONN_OPENING && now - c->since_ms > OPEN_TIMEOUT_MS)
        conn_drop (d, i);
      else if (c->state == CONN_QUEUED && now - c->since_ms > d->cfg->queue_timeout_secs * 1000)
        conn_refuse (d, i, BOXER_ERR_BUSY,
                     "no run slot came free within %" PRId64 " s (queue_timeout_secs); retry "
                     "later", d->cfg->queue_timeout_secs);
      else
        i++;
    }
}

/* The soonest timeout of a connection, for poll ().  */
static int
next_timeout (const struct daemon *d)
{
  long long now = boxer_now_ms (), best = 1000;
  int warm = boxer_warm_next_timeout (d->warm);

  if (warm >= 0 && warm < best)
    best = warm;

  for (size_t i = 0; i < d->nconns; i++)
    {
      long long limit = d->conns[i].state == CONN_OPENING ? OPEN_TIMEOUT_MS
                                                          : d->cfg->queue_timeout_secs * 1000;
      long long left = d->conns[i].since_ms + limit - now + 1;
      if (left < best)
        best = left < 0 ? 0 : left;
    }
  return (int) best;
}

int
boxer_daemon_listen (const char *path, gid_t gid, struct boxer_error **err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  cleanup_close int fd = -1;
  mode_t old;

  if (strlen (path) >= sizeof sa.sun_path)
    return boxer_error_make (err, BOXER_ERR_INVALID, "socket path '%s' is too long", path);
  strcpy (sa.sun_path, path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return boxer_error_errno (err, errno, "socket");
  if (unlink (path) < 0 && errno != ENOENT)
    return boxer_error_errno (err, errno, "remove the old socket '%s'", path);
  /* Never a moment with a socket anyone may connect to.  */
  old = umask (0177);
  if (bind (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    {
      int e = errno;
      umask (old);
      return boxer_error_errno (err, e, "bind '%s'", path);
    }
  umask (old);
  if (gid != (gid_t) -1 && (chown (path, 0, gid) < 0 || chmod (path, 0660) < 0))
    return boxer_error_errno (err, errno, "give '%s' to group %d", path, (int) gid);
  if (listen (fd, 1024) < 0)
    return boxer_error_errno (err, errno, "listen on '%s'", path);
  return steal_fd (&fd);
}

static int sigchld_pipe[2] = { -1, -1 };

/* A keeper's side of its socket ended (or sent what it never sends): its
   session is over, and the loop sends it nothing more.  */
static void
session_ended (struct daemon *d, int64_t s)
{
  close (d->sessions[s].ctl);
  d->sessions[s].ctl = -1;
}

/* Stopping: every session ends, its keeper destroying its sandbox.  */
static void
stop_sessions (struct daemon *d)
{
  long long until = boxer_now_ms () + 30000;

  /* Their sockets closed too: a keeper ending hears at once that the loop
     sends nothing more.  */
  for (int64_t s = 0; s < 2 * d->cfg->max_sessions; s++)
    if (d->sessions[s].pid != 0)
      {
        kill (d->sessions[s].pid, SIGTERM);
        if (d->sessions[s].ctl >= 0)
          session_ended (d, s);
      }
  for (int64_t s = 0; s < 2 * d->cfg->max_sessions; s++)
    while (d->sessions[s].pid != 0)
      {
        int status;
        pid_t pid = waitpid (d->sessions[s].pid, &status, WNOHANG);
        if (pid == 0 && boxer_now_ms () < until)
          {
            poll (NULL, 0, 50);
            continue;
          }
        if (pid == 0)
          {
            kill (d->sessions[s].pid, SIGKILL);
            waitpid (d->sessions[s].pid, &status, 0);
          }
        if (d->sessions[s].ctl >= 0)
          close (d->sessions[s].ctl);
        memset (&d->sessions[s], 0, sizeof d->sessions[s]);
      }
}


static void
on_sigchld (int sig)
{
  int saved = errno;
  (void) sig;
  if (write (sigchld_pipe[1], "c", 1) < 0)
    {
      /* Full: a wake-up is pending anyway.  */
    }
  errno = saved;
}

int
boxer_daemon_serve (struct boxer_executor *ex, const struct boxer_config *cfg, int listen_fd,
                    uid_t allowed_uid, volatile sig_atomic_t *stop, struct boxer_error **err)
{
  struct daemon d = {
    .ex = ex,
    .cfg = cfg,
    .listen_fd = listen_fd,
    .allowed_uid = allowed_uid,
    .max_running = boxer_config_max_concurrent_runs (cfg),
    .max_queued = boxer_config_max_queued_runs (cfg),
  };
  struct sigaction sa = { .sa_handler = on_sigchld, .sa_flags = SA_RESTART | SA_NOCLDSTOP };
  long long grace_end;

  if (pipe2 (sigchld_pipe, O_CLOEXEC | O_NONBLOCK) < 0
      || pipe2 (d.report_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
    return boxer_error_errno (err, errno, "pipe");
  if (cfg->n_warm_pool > 0 && boxer_warm_new (&d.warm, ex, cfg, close_loop_fds, &d, err) < 0)
    {
      close (d.report_pipe[0]);
      close (d.report_pipe[1]);
      return -1;
    }
  boxer_metrics_init (&d.metrics, cfg);
  sigaction (SIGCHLD, &sa, NULL);
  d.running = xmalloc0 (d.max_running * sizeof *d.running);
  d.running_key = xmalloc0 (d.max_running * sizeof *d.running_key);
  d.running_done = xmalloc0 (d.max_running * sizeof *d.running_done);
  d.sessions = xmalloc0 ((2 * cfg->max_sessions + 1) * sizeof *d.sessions);
  boxer_log_info ("executor: serving; at most %" PRId64 " runs at once, %" PRId64
                  " waiting for %" PRId64 " s", d.max_running, d.max_queued,
                  cfg->queue_timeout_secs);

  while (!*stop)
    {
      size_t n = d.nconns;
      int64_t ns = 2 * cfg->max_sessions;
      struct pollfd *p = xmalloc ((n + 3 + (size_t) ns) * sizeof *p);

      p[0] = (struct pollfd) { .fd = sigchld_pipe[0], .events = POLLIN };
      p[1] = (struct pollfd) { .fd = listen_fd, .events = POLLIN };
      /* Reports come before their child exits: read them when they come.  */
      p[n + 2] = (struct pollfd) { .fd = d.report_pipe[0], .events = POLLIN };
      for (size_t i = 0; i < n; i++)
        p[i + 2] = (struct pollfd) { .fd = d.conns[i].fd, .events = POLLIN };
      for (int64_t s = 0; s < ns; s++)
        p[n + 3 + s] = (struct pollfd) { .fd = d.sessions[s].pid && d.sessions[s].ctl >= 0
                                                 ? d.sessions[s].ctl : -1,
                                         .events = POLLIN };
      if (poll (p, n + 3 + (size_t) ns, next_timeout (&d)) < 0 && errno != EINTR)
        {
          free (p);
          boxer_error_errno (err, errno, "poll");
          break;
        }
      if (p[0].revents)
        {
          char buf[64];
          while (read (sigchld_pipe[0], buf, sizeof buf) > 0)
            ;
        }
      /* Before reaping and before new runs are looked at: a child writes
         its report before it answers, and exits after.  */
      read_reports (&d);
      for (int64_t s = 0; s < ns; s++)
        if (p[n + 3 + s].revents && d.sessions[s].ctl == p[n + 3 + s].fd)
          session_ended (&d, s);
      reap (&d);
      /* Backwards, as reading may drop a connection from the table; the
         fds polled are those of the table as it was.  */
      for (size_t i = n; i-- > 0;)
        if (p[i + 2].revents && i < d.nconns && d.conns[i].fd == p[i + 2].fd)
          on_readable (&d, i);
      if (p[1].revents)
        for (int k = 0; k < 64 && accept_one (&d); k++)
          ;
      free (p);
      expire (&d);
      admit_queued (&d);
      tend_pool (&d);
    }

  /* Stopping: nobody new, the queue told, the runs in progress let end.  */
  while (d.nconns > 0)
    conn_refuse (&d, 0, BOXER_ERR_RUNTIME, "the executor is stopping; retry in a moment");
  /* Its boots end and its sandboxes go first: what is reaped below is
     runs only.  */
  boxer_warm_free (d.warm);
  d.warm = NULL;
  stop_sessions (&d);
  grace_end = boxer_now_ms () + (cfg->max_limits.wall_clock_secs + 10) * 1000;
  while (d.nrunning > 0 && boxer_now_ms () < grace_end)
    {
      struct pollfd p = { .fd = sigchld_pipe[0], .events = POLLIN };
      char buf[64];
      poll (&p, 1, 500);
      while (read (sigchld_pipe[0], buf, sizeof buf) > 0)
        ;
      reap (&d);
    }
  for (int64_t k = 0; k < d.max_running; k++)
    if (d.running[k] > 0)
      kill (d.running[k], SIGKILL);
  while (d.nrunning > 0 && waitpid (-1, NULL, 0) > 0)
    d.nrunning--;
  free (d.running);
  free (d.running_key);
  free (d.running_done);
  free (d.sessions);
  boxer_metrics_release (&d.metrics);
  close (d.report_pipe[0]);
  close (d.report_pipe[1]);
  free (d.conns);
  close (sigchld_pipe[0]);
  close (sigchld_pipe[1]);
  return 0;
}
