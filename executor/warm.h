/* The warm pool: for each image the config's "warm_pool" lists, sandboxes
   booted with boxer-init and waiting, so that a run skips the boot.  The
   service's main loop (daemon.c) owns it: it boots each sandbox in a child
   of its own, hands a ready one to the run child that admits a run of the
   same image digest and network, and boots a replacement off the request
   path.  A sandbox serves one run and is destroyed after it.  A pool of
   network "sandbox" leases each sandbox's address as the loop claims it,
   and the boot builds its namespace, veth and firewall element, so that
   whichever process destroys it knows all of its network.

   The pool learns which digest an image reference names from the runs
   themselves (their open frame): the executor never reads the image
   store's references.  So a pool fills after the first run of its image,
   and when a tag moves to a new digest, the first run of the new one
   drains the sandboxes of the old.  */
#ifndef BOXER_EXECUTOR_WARM_H
#define BOXER_EXECUTOR_WARM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/config.h"
#include "executor.h"

struct boxer_warm;

/* One pool per config entry; its reference is normalised here (a malformed
   one is BOXER_ERR_INVALID).  in_child (data) runs first in every boot or
   destroy child, to close what the loop holds (its socket, connections).  */
int boxer_warm_new (struct boxer_warm **out, struct boxer_executor *ex,
                    const struct boxer_config *cfg, void (*in_child) (void *data), void *data,
                    struct boxer_error **err);
/* Destroy every sandbox (waiting for boots in progress) and free.  */
void boxer_warm_free (struct boxer_warm *w);

/* A run of reference (normalised) is for digest: if a pool warms that
   reference, it now boots that digest, and drains sandboxes of another.  */
void boxer_warm_learn (struct boxer_warm *w, const char *reference, const char *digest);
/* Take a ready sandbox of digest and network (enum boxer_network; -1
   matches none) into *out (the caller owns it from now on); false when
   there is none.  */
bool boxer_warm_take (struct boxer_warm *w, const char *digest, int network,
                      struct boxer_warm_sandbox *out);
/* Whether a pool warms digest with network (a run of them that finds
   none ready is a miss).  */
bool boxer_warm_serves (const struct boxer_warm *w, const char *digest, int network);
/* Boot sandboxes where pools lack them, at most max_boots at once over
   all pools; destroy drained ones.  runs_busy: runs are going, and a pool
   a run left short less than a second ago waits.  Call from the loop
   whenever something changed, and on a timer.  */
void boxer_warm_tend (struct boxer_warm *w, int max_boots, bool runs_busy);
/* The loop reaped child pid: true when it was a boot or a destroy of the
   pool (then its sandbox is ready, or gone).  *booted_ms: how long the
   boot of a sandbox now ready took, else -1.  */
bool boxer_warm_reaped (struct boxer_warm *w, pid_t pid, int status, int64_t *booted_ms);
/* In a child the loop forked: close every descriptor of the pool there.  */
void boxer_warm_close_all (struct boxer_warm *w);
/* Milliseconds until the pool wants tending again (a failed boot's
   back-off, a refill's wait for runs), or -1.  */
int boxer_warm_next_timeout (const struct boxer_warm *w);
/* Sandboxes booting or ready, and ready, over all pools.  */
int64_t boxer_warm_sandboxes (const struct boxer_warm *w);
int64_t boxer_warm_ready (const struct boxer_warm *w);

/* For GET /health: a JSON array of {"image", "network", "size", "ready"}.  */
struct json_object *boxer_warm_status (const struct boxer_warm *w);

#endif
