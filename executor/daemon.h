/* boxer-executor's service loop: the one root process that runs sandboxes.

   It accepts connections on a unix socket from the peers it allows
   (SO_PEERCRED: root and the configured worker user), reads each one's
   first frame (executor/protocol.h), answers "hello" itself, and admits
   "run"s: at most max_concurrent_runs run at once, each in a child process
   of its own; up to max_queued_runs more wait, first come first served,
   for at most queue_timeout_secs; anything beyond is answered "busy" at
   once.  A connection closed while queued leaves the queue; closed while
   running, its run's sandbox is killed and removed.  Run
   children die with the loop (PR_SET_PDEATHSIG); what they leave is
   swept by the next loop to start.  */
#ifndef BOXER_EXECUTOR_DAEMON_H
#define BOXER_EXECUTOR_DAEMON_H

#include <signal.h>
#include <sys/types.h>

#include "common/config.h"
#include "common/error.h"
#include "executor.h"

/* Create the listening socket at path (replacing a stale one): mode 0660,
   owned by root and gid, so that only root and that group can connect
   (gid -1: root only).  */
int boxer_daemon_listen (const char *path, gid_t gid, struct boxer_error **err);

/* Serve listen_fd until *stop is set (by a signal handler), then let the
   runs in progress end, within the longest wall clock a run may have.
   allowed_uid: the workers' uid besides root ((uid_t) -1: root only).  */
int boxer_daemon_serve (struct boxer_executor *ex, const struct boxer_config *cfg, int listen_fd,
                        uid_t allowed_uid, volatile sig_atomic_t *stop,
                        struct boxer_error **err);

#endif
