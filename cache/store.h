/* The digest-addressed image store under <home>/images:

     rootfs/<hex>/rootfs/      the unpacked tree of image sha256:<hex>
     rootfs/<hex>/image.json   what a run needs from the image (see below)
     refs/<sha256 of ref>      {"reference": "<normalised>", "digest": "sha256:..."}
     tmp/<id>/, tmp/<id>.lock  images being unpacked or removed, each under a flock
     locks/<hex>.lock          flock taken to publish (or remove) sha256:<hex>
     used/<hex>                its mtime: when sha256:<hex> was last run or pulled

   A run holds its image with a shared flock on rootfs/<hex> for as long
   as it runs; removing an image takes that flock exclusively without
   waiting, so an image in use is never removed.

   A published directory appears by rename () from tmp/ and is never
   written to again.  image.json:

     {"schemaVersion": 1, "digest": "sha256:...", "architecture": "amd64",
      "os": "linux", "env": [...], "entrypoint": [...] | null,
      "cmd": [...] | null, "workdir": "..." | null, "user": "..." | null,
      "size": <bytes of regular files, each inode once>}  */
#ifndef BOXER_CACHE_STORE_H
#define BOXER_CACHE_STORE_H

#include <stdint.h>

#include "cache.h"
#include "common/error.h"
#include "image_config.h"
#include "layer.h"

#define BOXER_STORE_REF_MAX (64 * 1024)

struct boxer_store;

/* Create the directories if needed and sweep (boxer_store_sweep ()).  */
int boxer_store_open (struct boxer_store **out, const char *home, struct boxer_error **err);
/* Removes the store's leftovers first (boxer_store_tidy ()).  */
void boxer_store_free (struct boxer_store *store);
/* Remove what this store's failed publishes left in tmp/; those return
   before removing it, so that an answer need not wait for it.  */
void boxer_store_tidy (struct boxer_store *store);

/* The absolute <home>/images.  */
const char *boxer_store_dir (const struct boxer_store *store);

/* Remove the temporaries of killed processes: tmp/<id> whose
   tmp/<id>.lock nobody holds, and ref files' write temporaries older than
   an hour.  Never touches what a live process is unpacking.  */
int boxer_store_sweep (struct boxer_store *store, struct boxer_error **err);

/* Returns in *fd_out an fd of layer index (0 = bottom), which the store
   closes.  */
typedef int (*boxer_store_open_layer_fn) (void *data, size_t index, int *fd_out,
                                          struct boxer_error **err);

/* Called under the digest's lock, only when the image must be unpacked,
   before the first layer: fetch and check whatever else unpacking needs
   (the config a registry source points config at).  */
typedef int (*boxer_store_prepare_fn) (void *data, struct boxer_error **err);

struct boxer_store_source
{
  const char *digest;                        /* manifest digest: names the image */
  const struct boxer_image_config *config;
  size_t n_layers;
  boxer_store_open_layer_fn open_layer;
  void *data;
  const struct boxer_layer_limits *limits;   /* over all layers; NULL: defaults */
  boxer_store_prepare_fn prepare;            /* NULL: nothing to prepare */
  int64_t deadline_ms;  /* boxer_now_ms () after which waiting for another publisher of
                           the digest fails with BOXER_ERR_BUSY; 0: wait as long as it takes */
};

/* Publish src->digest unless it is already: under the digest's lock,
   unpack every layer in order into tmp/, write image.json, rename into
   rootfs/.  Returns 1 when it unpacked, 0 when the image was already
   there, -1 on error (and then nothing is published).  */
int boxer_store_publish (struct boxer_store *store, const struct boxer_store_source *src,
                         struct boxer_error **err);

/* The published image digest, with reference left NULL and last_used
   filled in.  Returns 0 with *out NULL when it is not published.  */
int boxer_store_get (struct boxer_store *store, const char *digest, struct boxer_image **out,
                     struct boxer_error **err);

/* Make reference (normalised) name digest, atomically replacing what it
   named before.  */
int boxer_store_set_ref (struct boxer_store *store, const char *reference, const char *digest,
                         struct boxer_error **err);
/* Returns 0 with *digest_out NULL when reference is not stored.  */
int boxer_store_get_ref (struct boxer_store *store, const char *reference, char **digest_out,
                         struct boxer_error **err);
/* Returns 1 when it removed reference, 0 when it was not stored.  */
int boxer_store_remove_ref (struct boxer_store *store, const char *reference,
                            struct boxer_error **err);
/* Every stored reference, sorted, and the digest each names; both
   NULL-terminated, caller frees.  */
int boxer_store_list_refs (struct boxer_store *store, char ***refs_out, char ***digests_out,
                           struct boxer_error **err);

/* Hold the published image digest in use: returns 1 with *fd_out, a
   shared flock on its directory that keeps it from being removed until
   closed, or 0 when it is not published (any more).  */
int boxer_store_hold (struct boxer_store *store, const char *digest, int *fd_out,
                      struct boxer_error **err);

/* Record that digest was used now (its last_used).  */
int boxer_store_touch (struct boxer_store *store, const char *digest, struct boxer_error **err);

/* Remove the published image digest unless it is in use or being
   published: returns 1 when removed, 0 when it was left (or absent).
   The directory leaves rootfs/ by one rename, so nobody sees part of it.  */
int boxer_store_collect (struct boxer_store *store, const char *digest, struct boxer_error **err);

/* The digests of every published image, NULL-terminated (caller frees).  */
int boxer_store_list_digests (struct boxer_store *store, char ***out, struct boxer_error **err);

/* An anonymous temporary file on the store's file system (for a blob
   being downloaded), gone when closed, whatever happens to us.  */
int boxer_store_tmpfile (struct boxer_store *store, int *fd_out, struct boxer_error **err);

/* image.json (pure).  */
char *boxer_store_image_json (const struct boxer_image_config *cfg, const char *digest,
                              int64_t size);
/* Fill out's digest, env, entrypoint, cmd, workdir, user and size.  */
int boxer_store_image_json_parse (const char *data, size_t len, struct boxer_image *out,
                                  struct boxer_error **err);

#endif
