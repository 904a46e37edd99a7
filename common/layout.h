/* Who owns what under a Boxer home, when workers run as their own user
   (config worker_user) and only the executor is root:

     <home>/                 root, 0711: the workers may pass, not list
     <home>/executor.sock    root:<worker group>, 0660 (executor/daemon.c)
     <home>/files/           the worker user, 0700: uploads
     <home>/runs/            root, 0711
     <home>/runs/records/    the worker user, 0700: run records
     <home>/runs/active/     root, 0700: bundles of live runs
     <home>/images/          the worker user, 0700: the image store, unpacked
                             by the workers themselves
     everything else         root, 0700 (runsc state, network leases, ...)

   Without worker_user everything is root's and home is 0700.  */
#ifndef BOXER_COMMON_LAYOUT_H
#define BOXER_COMMON_LAYOUT_H

#include <sys/types.h>

#include "config.h"
#include "error.h"

/* The worker user's uid and gid; BOXER_ERR_INVALID naming the fix when
   the user does not exist.  */
int boxer_layout_worker_ids (const struct boxer_config *cfg, uid_t *uid, gid_t *gid,
                             struct boxer_error **err);

/* As root: create the home and give the worker user what is its, as
   above (what an older, all-root Boxer left there included).  Without
   worker_user: boxer_ensure_private_dir (home).  */
int boxer_layout_prepare (const struct boxer_config *cfg, struct boxer_error **err);

/* As root with worker_user set: become that user for good (groups, gid,
   uid; no capabilities left, no way back).  Otherwise nothing.  */
int boxer_layout_drop_to_worker (const struct boxer_config *cfg, struct boxer_error **err);

#endif
