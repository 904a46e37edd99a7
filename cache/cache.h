/* cache/: image reference -> unpacked, read-only root filesystem.

   One rootfs per image manifest digest under <home>/images, never modified
   once published: layers are unpacked into a temporary directory which is
   renamed into place, under a per-digest lock, so N worker processes never
   unpack the same image twice and nobody ever sees half an image.  The
   store does not care where layers come from: an OCI layout on disk
   (boxer-image load) or a registry (cache/pull.c).  Runs hold their image
   in use; past the configured disk budget, the images used least recently
   and not in use are removed.  */
#ifndef BOXER_CACHE_CACHE_H
#define BOXER_CACHE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/error.h"

struct boxer_image
{
  char *reference;   /* normalised, e.g. "docker.io/library/python:3.12-slim" */
  char *digest;      /* "sha256:<64 hex>" of the image manifest */
  char *rootfs;      /* absolute path of the shared read-only rootfs */
  char **env;        /* config Env ("K=V"), never NULL, may be empty */
  char **entrypoint; /* config Entrypoint, NULL when unset */
  char **cmd;        /* config Cmd, NULL when unset */
  char *workdir;     /* config WorkingDir, NULL when unset */
  char *user;        /* config User, NULL when unset */
  int64_t size;      /* bytes of the unpacked rootfs */
  long long last_used;               /* unix seconds of the last run or pull */
  struct boxer_image_hold *hold;     /* set by boxer_cache_acquire (): released by the free */
};

/* The descriptor that holds image in the store (a shared lock: while any
   process has it open, the image is not removed), or -1.  A session's
   keeper keeps a copy for the session's life.  */
int boxer_image_hold_fd (const struct boxer_image *image);

void boxer_image_free (struct boxer_image *image);
#define cleanup_image __attribute__ ((cleanup (boxer_image_freep)))
static inline void
boxer_image_freep (struct boxer_image **image)
{
  boxer_image_free (*image);
}

struct boxer_cache;

/* Open (creating if needed) the store under <home>/images and sweep
   temporaries that a killed process left behind.  */
int boxer_cache_open (struct boxer_cache **out, const char *home, struct boxer_error **err);
void boxer_cache_free (struct boxer_cache *cache);
/* Remove what failed pulls left on disk.  A pull that fails returns
   before that, so that its caller can answer first and call this after.  */
void boxer_cache_tidy (struct boxer_cache *cache);

/* Take the pull settings of cfg (registries, image_platform, pull_policy,
   images_budget_bytes, registry_timeout_secs), which must outlive the
   cache.  Without it pulls use the defaults of boxer_config_init_defaults.
   Call before forking workers: it initialises libcurl.  */
int boxer_cache_configure (struct boxer_cache *cache, const struct boxer_config *cfg,
                           struct boxer_error **err);

/* Resolve a reference to a published image, never asking a registry.
   BOXER_ERR_INVALID for a malformed reference, BOXER_ERR_IMAGE_NOT_FOUND
   when it is not stored.  */
int boxer_cache_lookup (struct boxer_cache *cache, const char *reference,
                        struct boxer_image **out, struct boxer_error **err);

/* Ask reference's registry for it now, whatever is stored, and publish it
   unless its digest is already there (POST /images/pull).  Errors:
   BOXER_ERR_INVALID (reference), _IMAGE_NOT_FOUND (the registry does not
   have it, or not for our platform), _REGISTRY (unreachable, refused,
   broken, digest mismatch: then nothing is stored), _FORBIDDEN (the
   registry or an address it needs is not allowed), _TOO_LARGE (an
   image_max_* bound), _NO_SPACE (under min_free_bytes).  for_client: a
   pull_policy of "never" refuses it (_FORBIDDEN: clients make the server
   ask no registry); the operator's boxer-image pulls whatever it says.  */
int boxer_cache_pull (struct boxer_cache *cache, const char *reference, bool for_client,
                      struct boxer_image **out, struct boxer_error **err);

/* The image for a run of reference, pulled as the pull policy says
   (if-not-present: only when not stored; always: ask the registry every
   time; never: stored images only), and held in use (never removed) until
   *out is freed.  Without may_pull (a client whose API key may not pull)
   only a stored image is used, and a missing one is BOXER_ERR_FORBIDDEN.  */
int boxer_cache_acquire (struct boxer_cache *cache, const char *reference, bool may_pull,
                         struct boxer_image **out, struct boxer_error **err);

/* Import the image of an OCI image layout directory (oci-layout,
   index.json, blobs/) under reference, which replaces what that reference
   named before.  Verifies every blob's digest; unpacks once per digest.  */
int boxer_cache_load_oci_layout (struct boxer_cache *cache, const char *layout_dir,
                                 const char *reference, struct boxer_image **out,
                                 struct boxer_error **err);

/* Every stored reference whose image is published, sorted by reference:
   *out is an array of *n_out images (free each, then the array).  */
int boxer_cache_list (struct boxer_cache *cache, struct boxer_image ***out, size_t *n_out,
                      struct boxer_error **err);

/* Forget reference; when no other reference names its image and no run
   uses it, the image is removed too (else it stays until collected).
   BOXER_ERR_IMAGE_NOT_FOUND when it is not stored.  */
int boxer_cache_remove (struct boxer_cache *cache, const char *reference,
                        struct boxer_error **err);

#endif
