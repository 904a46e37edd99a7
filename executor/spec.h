/* The OCI runtime spec (config.json) of one sandbox: pure, no I/O.  Its
   process is always boxer-init, which starts the programs.  */
#ifndef BOXER_EXECUTOR_SPEC_H
#define BOXER_EXECUTOR_SPEC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/config.h"

/* boxer-init starts every program as this unprivileged user: the
   user-facing pids_limit is RLIMIT_NPROC inside the sandbox, and that only
   binds a non-root user without capabilities.  */
#define BOXER_RUN_UID 65534
#define BOXER_RUN_GID 65534

/* Where boxer-init is mounted (read-only) in every sandbox.  */
#define BOXER_INIT_MOUNT "/.boxer-init"

/* A host file or directory bind-mounted into the run, read-only unless
   writable is set.  */
struct boxer_spec_bind
{
  const char *source;               /* absolute host path */
  const char *destination;          /* absolute path in the container */
  bool writable;                    /* read-write (a run's /output) */
};

struct boxer_spec_input
{
  const char *rootfs;               /* absolute path of the shared rootfs */
  const char *init_path;            /* absolute host path of boxer-init: it is the
                                       process, as root with what it needs to start
                                       programs as BOXER_RUN_UID */
  char *const *env;                 /* boxer-init's environment, "K=V" */
  const char *hostname;
  const char *cgroups_path;         /* NULL when cgroups are ignored */
  const struct boxer_limits *limits;
  const struct boxer_spec_bind *binds;      /* n_binds binds, after the defaults */
  size_t n_binds;
  const char *netns_path;           /* join this network namespace (sandbox network) */
  bool host_network;                /* no network namespace at all (host network) */
};

/* The argv of a run: the request's cmd when given, else the image's
   Entrypoint followed by its Cmd.  Empty is BOXER_ERR_INVALID.  */
int boxer_spec_resolve_args (char *const *request_cmd, char *const *entrypoint,
                             char *const *image_cmd, char ***out, struct boxer_error **err);

/* The environment of a run: the image's Env with the request's entries
   merged over it by name, plus PATH and HOME when neither set them.  Nothing
   of the server's own environment ever gets in.  */
char **boxer_spec_merge_env (char *const *image_env, char *const *request_env);

/* Serialise the spec; *out is a NUL-terminated JSON document.  */
int boxer_spec_build (const struct boxer_spec_input *in, char **out, struct boxer_error **err);

#endif
