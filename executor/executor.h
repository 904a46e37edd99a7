/* executor/: one run request -> one run result.

   For each run: resolve the image through cache/, create the run's bundle
   (config.json written from the image config and the request), create
   cgroups with the memory and CPU limits, run `runsc run` attached with
   stdin/stdout/stderr on pipes, enforce the wall clock, and read back exit
   status, OOM kill and peak memory.  Everything a run creates is removed on
   every path; runs orphaned by a killed executor server are swept by the next
   executor that starts.  */
#ifndef BOXER_EXECUTOR_EXECUTOR_H
#define BOXER_EXECUTOR_EXECUTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "cache/cache.h"
#include "common/config.h"

enum boxer_network
{
  BOXER_NETWORK_NONE = 0,
  BOXER_NETWORK_SANDBOX,
  BOXER_NETWORK_HOST,
};

/* Bounds of a run request, held by the HTTP parser (fcgi/request.c) and
   again by the executor on what a worker sends (executor/protocol.c).  */
#define BOXER_RUN_IMAGE_MAX_BYTES 512
#define BOXER_RUN_CMD_MAX_ARGS 4096
#define BOXER_RUN_CMD_MAX_BYTES (256 * 1024)   /* sum of the arguments, each with its NUL */
#define BOXER_RUN_ENV_MAX_ENTRIES 1024
#define BOXER_RUN_ENV_MAX_BYTES (256 * 1024)   /* sum of the "KEY=VALUE" strings, with NULs */
#define BOXER_RUN_WORKDIR_MAX_BYTES 4096

/* A file uploaded with POST /files, bind-mounted read-only into a run.  */
#define BOXER_RUN_MAX_FILES 256
struct boxer_run_file
{
  char *id;              /* "f_" + 32 hex digits */
  char *path;            /* absolute, normalised destination in the container */
};

/* A regular file a run left under /output, kept in its run record.  */
struct boxer_run_output
{
  char *path;            /* relative to /output */
  int64_t size;
};

struct boxer_run_request
{
  char *image;
  char **cmd;            /* full argv; NULL: the image's Entrypoint + Cmd */
  char **env;            /* "KEY=VALUE" merged over the image Env; may be NULL */
  char *workdir;         /* NULL: the image's WorkingDir, else "/" */
  char *stdin_data;      /* NULL: stdin is empty */
  size_t stdin_len;
  struct boxer_limits limits;   /* complete: defaults already applied */
  enum boxer_network network;
  struct boxer_run_file *files;         /* nfiles uploads to mount */
  size_t nfiles;
};

void boxer_run_request_release (struct boxer_run_request *req);

/* POST /batch: runs of one tenant in one sandbox, parallelism at once,
   each its own process, uid, /tmp, wall clock and address-space limit.  */
#define BOXER_BATCH_MAX_PARALLELISM 32
struct boxer_batch_request
{
  struct boxer_run_request req;         /* image, limits, network: the sandbox's */
  int64_t parallelism;
  /* Each: cmd, env, workdir, stdin, files; limits.wall_clock_secs and
     limits.memory_mb (its address space), the rest unused.  */
  struct boxer_run_request *runs;
  size_t nruns;
};

void boxer_batch_request_release (struct boxer_batch_request *b);

/* POST /sessions: a sandbox kept for many execs (executor/session.h).  */
struct boxer_session_request
{
  struct boxer_run_request req;         /* image, limits, network (none), env, workdir */
  int64_t idle_timeout_secs;
  int64_t ttl_secs;
};
/* Whether path is in a place each run of a batch has fresh and empty
   (/tmp, /var/tmp, /dev/shm, /output): a file put there before the run
   would be hidden from it.  */
bool boxer_batch_path_is_private (const char *path);

struct boxer_run_result
{
  char id[40];
  char *image;
  char *image_digest;
  int exit_code;
  int signal;            /* 0: not killed by a signal */
  bool timed_out;
  bool oom_killed;
  char *stdout_data;     /* raw bytes, not yet UTF-8 checked */
  size_t stdout_len;
  bool stdout_truncated;
  char *stderr_data;
  size_t stderr_len;
  bool stderr_truncated;
  int64_t wall_ms;
  int64_t setup_ms;             /* in the booted sandbox, before the program: limits, uploads */
  int64_t teardown_ms;          /* after: the sandbox killed (and, the caller's, removed) */
  int64_t memory_peak_bytes;    /* -1 when unknown */
  long long started_at;         /* unix seconds */
  long long finished_at;
  struct boxer_run_output *outputs;     /* sorted by path */
  size_t noutputs;
  bool outputs_truncated;       /* /output held more than the limits let us keep */
};

void boxer_run_result_release (struct boxer_run_result *res);

struct boxer_executor;

/* Check runsc (version, a usable platform) and sweep runs orphaned by
   a killed executor.  cfg must outlive the executor.  */
int boxer_executor_new (struct boxer_executor **out, const struct boxer_config *cfg,
                        struct boxer_error **err);
void boxer_executor_free (struct boxer_executor *ex);

const char *boxer_executor_runsc_version (const struct boxer_executor *ex);
const char *boxer_executor_platform (const struct boxer_executor *ex);
/* The host's cgroup mode, "v1", "hybrid", "v2" (or "none"), detected at
   start-up, and where run cgroups are made (for the start-up log).  */
const char *boxer_executor_cgroup_mode (const struct boxer_executor *ex);
const char *boxer_executor_cgroup_runs_dir (const struct boxer_executor *ex);
/* Whether runsc still answers; fills *err with the reason when not.  */
int boxer_executor_check (struct boxer_executor *ex, struct boxer_error **err);

/* Where a streamed run's output goes while it runs.  Either hook
   returning -1 means nobody reads any more: the run is cancelled.  */
struct boxer_run_sink
{
  /* Once, when the program has been started.  */
  int (*started) (void *data);
  /* Each piece of stdout (stream 0) or stderr (1) the result will hold,
     in the order the program wrote it; index: the run's in its batch, or
     -1 for a run alone.  */
  int (*output) (void *data, long index, int stream, const char *bytes, size_t len);
  void *data;
};

/* One run as the executor gets it: the request, already checked; the
   image, resolved and held by the worker; the run id the worker chose.  */
struct boxer_run_job
{
  const char *id;                       /* "r_" + 32 hex */
  const struct boxer_run_request *req;
  const struct boxer_image *image;      /* rootfs, digest, env, entrypoint, cmd, workdir */
  int cancel_fd;                        /* readable or hung up: stop the run; -1: none */
  const struct boxer_run_sink *sink;    /* NULL: not streamed */
};

/* A batch as the executor gets it, checked like a run job.  */
struct boxer_batch_job
{
  const char *id;                       /* "b_" + 32 hex */
  const struct boxer_batch_request *batch;
  const struct boxer_image *image;
  int cancel_fd;                        /* readable or hung up: stop the batch; -1: none */
  /* Each run's end as it comes: a result (outputs always empty; the hook
     may keep nothing of it) or, for a run that could not start, run_err.
     Non-zero stops the batch (the worker is gone).  */
  int (*on_run) (void *data, size_t index, const struct boxer_run_result *res,
                 const struct boxer_error *run_err);
  void *data;
  const struct boxer_run_sink *sink;    /* NULL: not streamed; started once the sandbox is ready */
};

/* A warm sandbox: booted with boxer-init as its first process, waiting
   for the one run it will serve (executor/warm.h keeps the pool).  Its
   resources are named by id like a run's, so the sweeps that clean up
   after a dead executor find them too.  */
struct boxer_warm_sandbox
{
  char id[40];                  /* "r_" + 32 hex: bundle, lock, cgroup, container */
  char digest[72];              /* "sha256:<64 hex>" of the image it booted */
  enum boxer_network network;   /* the network it boots with */
  int64_t lease;                /* network "sandbox": its address's lease from the claim; else -1 */
  int lock_fd;                  /* held (in any process) while the sandbox lives */
  int to_init, from_init;       /* our ends of boxer-init's stdin and stdout */
  int init_in, init_out;        /* boxer-init's ends: the boot gives them to runsc */
  bool boot_oom;                /* its boot failed: its memory limit killed it as it started */
};

/* Claim an id (run_id, a run's own, or NULL for a new one), lease an
   address for network "sandbox" and make the pipes; quick, for the
   service's main loop.  digest names a stored image.  */
int boxer_executor_warm_claim (struct boxer_executor *ex, const char *digest,
                               enum boxer_network network, const char *run_id,
                               struct boxer_warm_sandbox *sb, struct boxer_error **err);
/* Boot it (in a process of its own: it takes a sandbox's boot): cgroup at
   limits (NULL: the service's max_limits), /output, its network
   (namespace, veth and firewall element, resolv.conf and hosts), runsc
   run --detach, boxer-init's READY.  On failure all of it is undone,
   the claim too, and sb->boot_oom says whether the memory limit was
   why.  */
int boxer_executor_warm_boot (struct boxer_executor *ex, struct boxer_warm_sandbox *sb,
                              const struct boxer_limits *limits, struct boxer_error **err);
/* Close this process's descriptors of the sandbox, leaving it alive for
   the process that owns it.  */
void boxer_executor_warm_close (struct boxer_warm_sandbox *sb);
/* Destroy it: sandbox, cgroup, /output, bundle, lock; and close.  */
void boxer_executor_warm_destroy (struct boxer_executor *ex, struct boxer_warm_sandbox *sb);
/* Whether a run of req on image may use sb: same image digest, same
   network.  */
bool boxer_executor_warm_fits (const struct boxer_warm_sandbox *sb,
                               const struct boxer_run_request *req,
                               const struct boxer_image *image);
/* Run one job in sb (which must fit): every run does, in a pool's
   sandbox or in one booted for it.  A run that completes, whatever its
   exit code, timeout or OOM, returns 0 with the result (out->outputs
   left empty) and, in *output_fd, a descriptor of its /output (or -1),
   for the caller to read and close; every process of sb is dead then,
   and the caller destroys it (boxer_executor_warm_destroy ()).  Only a
   run that could not be started, or was cancelled (BOXER_ERR_RUNTIME),
   is an error, and sb is destroyed already.  A sandbox serves one run.  */
int boxer_executor_run_warm (struct boxer_executor *ex, const struct boxer_run_job *job,
                             struct boxer_warm_sandbox *sb, struct boxer_run_result *out,
                             int *output_fd, struct boxer_error **err);

/* Sessions (executor/session.h).  A warm sandbox's cgroup set to limits
   (a session's, for its whole life).  */
int boxer_executor_warm_set_limits (struct boxer_executor *ex,
                                    const struct boxer_warm_sandbox *sb,
                                    const struct boxer_limits *limits, struct boxer_error **err);
/* One exec in a session's sandbox sb through its link l (which stays
   open between execs), as a warm run: the result in *out.  *gone: the
   sandbox died (then out->oom_killed when its memory ran out, the only
   way it returns 0 with *gone).  */
struct boxer_init_link;
int boxer_executor_session_exec (struct boxer_executor *ex, const struct boxer_warm_sandbox *sb,
                                 struct boxer_init_link *l, const struct boxer_run_job *job,
                                 struct boxer_run_result *out, bool *gone,
                                 struct boxer_error **err);

/* Remove what runs of a dead executor server left behind (runsc state, sandbox
   processes, cgroups, bundles).  Called by boxer_executor_new ().  */
int boxer_executor_sweep (struct boxer_executor *ex, struct boxer_error **err);

/* For a server that starts after another died: every run is an orphan,
   but its process may still be dying (killed with its server, it holds its
   lock until its exit completes).  Sweep until none is left, for at most
   timeout_ms.  */
int boxer_executor_sweep_orphans (struct boxer_executor *ex, int timeout_ms,
                                  struct boxer_error **err);

/* The service is stopping and no run is in progress: sweep, and release
   what runsc keeps between runs, so nothing of Boxer stays on the host.  */
int boxer_executor_shutdown (struct boxer_executor *ex, struct boxer_error **err);

/* Run a batch in one sandbox: sb, a warm one the caller was given (warm
   true; it is destroyed if it does not fit), else one booted here into
   *sb.  Every run is reported through job->on_run (an OOM of the sandbox
   as each unfinished run's oom_killed).  0: the sandbox's processes are
   dead and the caller destroys it (boxer_executor_warm_destroy ()) once
   it has answered; -1: nothing is left.  Batches run with network none.  */
int boxer_executor_run_batch (struct boxer_executor *ex, const struct boxer_batch_job *job,
                              struct boxer_warm_sandbox *sb, bool warm, long long *boot_ms,
                              struct boxer_error **err);

#endif
