/* Applying image layers: one tar (plain, gzip or zstd) onto a root
   filesystem directory, with OCI whiteouts.

   Nothing a layer contains may reach outside the rootfs: entries with
   '..' components are refused, a leading '/' is stripped (as Docker does),
   hard links must name a path inside the rootfs, and device nodes are
   refused.  The directories of an entry's path may be symlinks the image
   made (merged /usr: bin -> usr/bin): they are resolved as Docker resolves
   them, with the rootfs as "/" (openat2 RESOLVE_IN_ROOT), so "bin/x"
   lands in usr/bin/x and no symlink, absolute or full of "..", leads out
   of the rootfs; the entry's own name is never followed (it replaces what
   is there).  Symlinks themselves may point anywhere: the sandbox
   resolves them at run time.  */
#ifndef BOXER_CACHE_LAYER_H
#define BOXER_CACHE_LAYER_H

#include <stdint.h>

#include "common/config.h"
#include "common/error.h"

#define BOXER_LAYER_WHITEOUT_PREFIX ".wh."
#define BOXER_LAYER_OPAQUE_MARKER ".wh..wh..opq"

/* Defaults used when no limits are given, far above what real images
   use (the biggest common images hold a few hundred thousand files, paths
   of a few hundred bytes, trees a few dozen directories deep).  */
#define BOXER_LAYER_DEFAULT_MAX_BYTES (16LL * 1024 * 1024 * 1024)
#define BOXER_LAYER_DEFAULT_MAX_ENTRIES 1000000LL
#define BOXER_LAYER_DEFAULT_MAX_DEPTH 128
#define BOXER_LAYER_DEFAULT_MAX_PATH_BYTES 1024
/* No file system we unpack onto takes longer names.  */
#define BOXER_LAYER_NAME_MAX 255
/* What an inode costs at least, whatever it holds: one block.  */
#define BOXER_LAYER_BLOCK 4096

/* Bounds of what an image's layers put on disk, all layers together.
   They count what really lands there: every directory, including the
   parents a tar entry implies without listing them, and every other
   inode is an entry and costs at least BOXER_LAYER_BLOCK bytes; file
   contents count rounded up to whole blocks.  */
struct boxer_layer_limits
{
  int64_t max_bytes;
  int64_t max_entries;
  int64_t max_depth;            /* directories from the root to an entry */
  int64_t max_path_bytes;       /* of an entry's path, as cleaned and as resolved */
  int64_t deadline_ms;          /* boxer_now_ms () unpacking must end by; 0: none */
};

/* What the layers applied so far used, checked against the limits.  */
struct boxer_layer_usage
{
  int64_t bytes;
  int64_t entries;
};

/* The limits with every unset (0) field at its default.  */
void boxer_layer_limits_fill (struct boxer_layer_limits *limits);

/* The image_max_* settings of cfg (NULL: the defaults).  */
void boxer_layer_limits_from_config (const struct boxer_config *cfg,
                                     struct boxer_layer_limits *out);

enum boxer_layer_entry_kind
{
  BOXER_LAYER_ENTRY_ROOT,      /* "/", "./": the rootfs itself, skipped */
  BOXER_LAYER_ENTRY_FILE,      /* an object to create at path */
  BOXER_LAYER_ENTRY_WHITEOUT,  /* remove path, left by lower layers */
  BOXER_LAYER_ENTRY_OPAQUE,    /* remove what lower layers left in dir path ("" = root) */
  BOXER_LAYER_ENTRY_IGNORED,   /* other ".wh..wh." names: aufs bookkeeping */
};

/* Classify a tar entry name and clean it (pure): leading '/', empty and "."
   components dropped; ".." refused (BOXER_ERR_INVALID).  *path_out, which
   the caller frees, is relative with no trailing '/': the object for
   FILE, the object to remove for WHITEOUT, the directory for OPAQUE.  */
int boxer_layer_classify_path (const char *name, enum boxer_layer_entry_kind *kind,
                               char **path_out, struct boxer_error **err);

/* Clean a hard link target (pure): relative, no "..", not empty.  */
int boxer_layer_clean_link_target (const char *target, char **path_out,
                                   struct boxer_error **err);

/* Apply the tar read from layer_fd onto the existing directory rootfs.
   limits NULL means the defaults.  The first entry past a limit stops it
   with BOXER_ERR_TOO_LARGE naming the limit.  setuid and setgid bits are
   dropped; device nodes are refused.  On failure rootfs is left half-written:
   callers unpack into a temporary directory and throw it away.  */
int boxer_layer_apply (const char *rootfs, int layer_fd, const struct boxer_layer_limits *limits,
                       struct boxer_error **err);

/* The same, adding to *usage so limits hold over all the layers of an
   image.  */
int boxer_layer_apply_counted (const char *rootfs, int layer_fd,
                               const struct boxer_layer_limits *limits,
                               struct boxer_layer_usage *usage, struct boxer_error **err);

#endif
