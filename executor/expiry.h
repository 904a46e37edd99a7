/* What the upload store (files.c) and the run records (records.c) share:
   a directory of entries named by id, each built under ".new-<id>" and
   renamed into place, stamped by the mtime of one file inside it, and
   removed once older than a time to live.

   Removal first renames an entry to ".del-<id>-<random>", which only one of
   several workers sweeping at once can do, and then deletes it; what a
   killed worker leaves half-built or half-deleted is swept later.  */
#ifndef BOXER_EXECUTOR_EXPIRY_H
#define BOXER_EXECUTOR_EXPIRY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "common/error.h"

#define BOXER_EXPIRY_NEW_PREFIX ".new-"
#define BOXER_EXPIRY_DEL_PREFIX ".del-"

/* A half-built entry older than this belongs to a worker that died.  No
   upload or record takes this long to write: nginx hands over bodies it
   has already buffered, and outputs are bounded.  */
#define BOXER_EXPIRY_STAGING_SECS 900

/* Whether s is prefix followed by exactly nhex lower-case hex digits.  */
bool boxer_expiry_id_is_valid (const char *s, const char *prefix, size_t nhex);

/* Whether something stamped with st's mtime is older than ttl_secs.  */
bool boxer_expiry_expired (const struct stat *st, int64_t ttl_secs);

/* Remove dir/name: rename it aside, then delete it.  A missing entry is
   fine.  */
int boxer_expiry_remove (const char *dir, const char *name, struct boxer_error **err);

/* Remove the entries of dir (those named prefix + nhex hex digits) whose
   stamp file is older than ttl_secs or missing, and stale .new- and .del-
   leftovers.  */
int boxer_expiry_sweep (const char *dir, const char *prefix, size_t nhex, const char *stamp,
                        int64_t ttl_secs, struct boxer_error **err);

/* Bytes the entries of dir take on disk (their blocks, each inode once).  */
int boxer_expiry_usage (const char *dir, int64_t *out, struct boxer_error **err);

/* Room for incoming more bytes in dir under budget (0: no budget):
   expired entries go first (a sweep, as boxer_expiry_sweep ()); if that
   is not enough, BOXER_ERR_NO_SPACE naming setting and what.  Entries
   that have not expired are never removed to make room: clients were
   promised them for their time to live.  Each admission charges incoming
   to a ledger in dir (".usage"); dir is walked again only when the charged
   sum would pass the budget (or the ledger is missing or damaged).

   charge, when not NULL, is what this admission charged, for
   boxer_expiry_settle () once the entry is written.  */
struct boxer_expiry_charge
{
  long long measure;        /* the ledger's measure the charge went into */
  int64_t bytes;            /* 0: nothing charged, nothing to settle */
};
int boxer_expiry_admit (const char *dir, const char *prefix, size_t nhex, const char *stamp,
                        int64_t ttl_secs, int64_t budget, int64_t incoming, const char *setting,
                        const char *what, struct boxer_expiry_charge *charge,
                        struct boxer_error **err);
/* Replace an admission's charge with what its entry took on disk (0 when
   none was kept): the ledger then follows the disk, not the charges, in
   both directions.  */
void boxer_expiry_settle (const char *dir, const struct boxer_expiry_charge *charge,
                          int64_t actual);
/* Measure dir again for its ledger if the last measure is a minute old
   (entries that expired and went stop counting), without holding up
   admissions during the walk.  For after an answer, not before one.  */
int boxer_expiry_remeasure (const char *dir, int64_t budget, struct boxer_error **err);

#endif
