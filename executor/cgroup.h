/* Host cgroups of one run, created by Boxer before runsc starts so that
   Boxer owns them: runsc joins the sandbox to existing cgroups without
   writing limits into them or deleting them, which lets Boxer read the OOM
   kill count and peak memory after the run and then remove them.

   The host's cgroup mode is detected once, at start-up:

   - v1 and hybrid (v1 controllers, plus an empty cgroup2 mount at
     /sys/fs/cgroup/unified): libcgroup, one directory per run at the root
     of the memory, cpu and pids hierarchies, /<controller>/boxer-<run>.
     runsc creates (and removes) the run's directories in the other
     controllers itself.  The root, not our own v1 cgroups: those differ
     per hierarchy (systemd delegates v1 only where the unit says so) while
     runsc takes one path for every hierarchy.

   - v2 (the unified hierarchy alone, every current distribution): runs
     live in the cgroup Boxer was started in, which systemd delegates to the
     service (Delegate=yes in contrib/systemd/boxer-executor.service).  cgroup v2
     lets a cgroup hand controllers to its children only when it has no
     processes itself, so start-up moves every process of that cgroup into
     a leaf beside the runs:

         <own cgroup>/service         boxer-executor (master and server)
         <own cgroup>/runs/boxer-<run>  one per run: memory, cpu, pids

     systemd then accounts the runs to the service and stops them with it.  */
#ifndef BOXER_EXECUTOR_CGROUP_H
#define BOXER_EXECUTOR_CGROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"

/* Every run's cgroups are named BOXER_CGROUP_PREFIX + the instance id of
   the Boxer home + "-" + the run id, so orphans of a killed executor can be
   found without touching the runs of another Boxer on the same host.  */
#define BOXER_CGROUP_PREFIX "boxer-"

/* The host pids cgroup also counts the Sentry's and gofer's own threads, so
   it gets this much headroom over the user-facing pids_limit (which the
   sandbox enforces itself).  */
#define BOXER_CGROUP_PIDS_HEADROOM 512

#define BOXER_CGROUP_ROOT "/sys/fs/cgroup"

/* Names of the two children of the delegated cgroup on v2.  */
#define BOXER_CGROUP_V2_LEAF "service"
#define BOXER_CGROUP_V2_RUNS "runs"

enum boxer_cgroup_mode
{
  BOXER_CGROUP_NONE,   /* no cgroup file system mounted */
  BOXER_CGROUP_V1,
  BOXER_CGROUP_HYBRID, /* v1 controllers plus a cgroup2 mount without them */
  BOXER_CGROUP_V2,
};

/* "none", "v1", "hybrid", "v2": what GET /health reports.  */
const char *boxer_cgroup_mode_name (enum boxer_cgroup_mode mode);

/* The mode of the cgroup file systems mounted at root (/sys/fs/cgroup),
   told by the files there: the unified hierarchy has cgroup.controllers at
   its root; a hybrid host has it under unified/; a v1 host has neither.  */
enum boxer_cgroup_mode boxer_cgroup_detect (const char *root);

/* The cgroup v2 path ("0::/a/b") in the text of /proc/self/cgroup, into
   *out (a path below the hierarchy root, starting with '/').  */
int boxer_cgroup_parse_own (const char *proc_self_cgroup, char **out, struct boxer_error **err);

/* Where runs go on v2, given our own cgroup (relative to the hierarchy
   root): the delegated cgroup itself, or its parent when we already sit in
   its BOXER_CGROUP_V2_LEAF (a pool restarted in the same unit).  The
   hierarchy root itself is never ours: then "/boxer".  Pure.  */
char *boxer_cgroup_v2_base (const char *own, bool own_is_leaf);

/* One value to write into a run's cgroup directory.  */
/* Move every process of the v2 cgroup dir into leaf; fail if a live
   thread is still in dir after timeout_ms.  */
int boxer_cgroup_v2_move_procs (const char *dir, const char *leaf, int timeout_ms,
                                struct boxer_error **err);

struct boxer_cgroup_setting
{
  const char *file;
  char value[32];
  bool optional; /* absent when the kernel lacks it (e.g. swap accounting) */
};
#define BOXER_CGROUP_V2_SETTINGS 5

/* The cgroup v2 files and values for these limits, in the order they are
   written.  Pure.  */
void boxer_cgroup_v2_settings (const struct boxer_limits *limits,
                               struct boxer_cgroup_setting out[BOXER_CGROUP_V2_SETTINGS]);

/* Write settings into the existing files of dir.  */
int boxer_cgroup_write_settings (const char *dir, const struct boxer_cgroup_setting *settings,
                                 size_t n, struct boxer_error **err);

struct boxer_cgroup_stats
{
  bool oom_killed;
  int64_t memory_peak_bytes; /* -1 when the kernel does not keep it */
};

/* Read the stats of a run from the text of its v2 memory.events and of
   memory.peak (NULL when absent).  Pure.  */
void boxer_cgroup_v2_parse_stats (const char *events, const char *peak,
                                  struct boxer_cgroup_stats *out);

/* Once per process, before the server is forked: detect the mode (v2: set up
   the delegated layout, moving the processes of our cgroup into its leaf).
   root is /sys/fs/cgroup but for tests.  */
int boxer_cgroup_global_init (const char *root, struct boxer_error **err);

/* The mode found by boxer_cgroup_global_init ().  */
enum boxer_cgroup_mode boxer_cgroup_mode (void);

/* Where run cgroups are made: the v2 runs directory, or the v1 hierarchies'
   roots.  For the start-up log line.  */
const char *boxer_cgroup_runs_dir (void);

struct boxer_cgroup;

int boxer_cgroup_create (struct boxer_cgroup **out, const char *name,
                         const struct boxer_limits *limits, struct boxer_error **err);
/* The cgroup name another process of ours created (a warm sandbox's).  */
struct boxer_cgroup *boxer_cgroup_open (const char *name);
/* Change the limits of a cgroup a sandbox already runs in (lowering them
   from what it booted with).  */
int boxer_cgroup_set_limits (const struct boxer_cgroup *cg, const struct boxer_limits *limits,
                             struct boxer_error **err);
/* The path to put in the spec's linux.cgroupsPath.  */
const char *boxer_cgroup_path (const struct boxer_cgroup *cg);

int boxer_cgroup_read_stats (const struct boxer_cgroup *cg, struct boxer_cgroup_stats *out,
                             struct boxer_error **err);

/* SIGKILL every process left in the run's cgroups (v2: cgroup.kill where
   the kernel has it).  Returns how many were signalled (1 for cgroup.kill). */
int boxer_cgroup_kill (const char *name);

/* Kill what is left and remove the cgroup named name from every mounted
   controller.  Safe to call twice and on names that do not exist.  */
int boxer_cgroup_remove (const char *name, struct boxer_error **err);

/* Free the handle only; the cgroup stays.  */
void boxer_cgroup_close (struct boxer_cgroup *cg);

/* boxer_cgroup_remove () then free.  */
int boxer_cgroup_destroy (struct boxer_cgroup *cg, struct boxer_error **err);

/* Call fn for every cgroup whose name starts with prefix (which must start
   with BOXER_CGROUP_PREFIX) found in any controller, once per name.  */
int boxer_cgroup_foreach (const char *prefix, int (*fn) (const char *name, void *data),
                          void *data, struct boxer_error **err);

#endif
