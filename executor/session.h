/* Sessions (POST /sessions): a sandbox kept for many execs and file
   transfers, booted with boxer-init like a warm one and then owned by a
   process of its own, its keeper, for its whole life.  The service's loop
   (daemon.c) forks a keeper per session and hands it each connection of
   the session over a socketpair; the keeper serves them one at a time,
   so a session's execs never overlap, and ends the session (the sandbox,
   its cgroup, bundle and lock go) when it is deleted, idle for
   idle_timeout_secs, past its ttl_secs, when its sandbox dies, or when
   the service stops.  The keeper holds the image it runs (the worker's
   hold, passed with the session's creation), so the store never removes
   it under the session.  */
#ifndef BOXER_EXECUTOR_SESSION_H
#define BOXER_EXECUTOR_SESSION_H

#include "common/config.h"
#include "executor.h"

/* Run a keeper: conn is the creating worker's connection (its open frame
   read, nothing answered), ctl the keeper's end of the socketpair the
   loop sends later connections on (each a frame {"op"} with the
   connection's descriptor).  id is the session's ("s_" + 32 hex), digest
   the image the open frame named.  report_fd: where the session's boot
   and each exec go as run reports (metrics.h), never as its slot's end:
   a session holds no run slot.  Returns the process's exit status.  */
int boxer_session_keep (struct boxer_executor *ex, const struct boxer_config *cfg,
                        const char *id, const char *digest, int conn, int ctl, int report_fd);

#endif
