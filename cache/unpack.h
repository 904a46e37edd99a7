/* Unpacking a layer in a process of its own, so no unconfined host-root
   process ever parses what a registry sent.

   The process (forked per layer) enters new mount, PID, network, IPC and
   UTS namespaces (so it sees no other process to signal), makes the rootfs being built its "/" with pivot_root and
   detaches the host's root, so nothing of the host's file systems is
   reachable; it keeps only CAP_CHOWN, CAP_FOWNER and CAP_DAC_OVERRIDE
   (bounding set included, no_new_privs), an address space of at most
   2 GiB, no network, and a read-only descriptor of the layer's blob.  It
   sends back its error (category, errno, message) and the usage counts
   over a pipe; a process that dies is an internal error.  Run as another
   user than root, the layer is applied in this process (it holds no
   privilege to confine).  */
#ifndef BOXER_CACHE_UNPACK_H
#define BOXER_CACHE_UNPACK_H

#include "layer.h"

/* Run fn (data, usage, err) in a process confined as above, with rootfs as
   its "/" and keep_fd (or -1) its only fd besides stderr; its error and
   usage come back.  Root only.  */
typedef int (*boxer_unpack_fn) (void *data, struct boxer_layer_usage *usage,
                                struct boxer_error **err);
int boxer_unpack_confined (const char *rootfs, int keep_fd, boxer_unpack_fn fn, void *data,
                           struct boxer_layer_usage *usage, struct boxer_error **err);

/* boxer_layer_apply_counted (), confined as above.  */
int boxer_unpack_layer (const char *rootfs, int layer_fd, const struct boxer_layer_limits *limits,
                        struct boxer_layer_usage *usage, struct boxer_error **err);

#endif
