/* The upload store: files clients send with POST /files (or with a
   multipart POST /run), kept on disk under <home>/files so that any worker
   can mount them into a run, and removed after files_ttl_secs.

   Layout: <home>/files/<id>/data (the bytes, read-only) and
   <home>/files/<id>/meta.json ({"id", "name", "size", "sha256",
   "created_at", and "owner" with API keys}).  An upload is written into <home>/files/.new-<id> and
   renamed into place when complete, so a reader sees all of it or none.
   The id (BOXER_FILE_ID_PREFIX + 32 hex digits from getrandom ()) is the
   only client input that ever becomes part of a host path, and only after
   boxer_files_id_is_valid ().  The client's file name is metadata only.  */
#ifndef BOXER_EXECUTOR_FILES_H
#define BOXER_EXECUTOR_FILES_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/error.h"

#define BOXER_FILE_ID_PREFIX "f_"
#define BOXER_FILE_ID_HEX 32
#define BOXER_FILE_ID_LEN (sizeof BOXER_FILE_ID_PREFIX - 1 + BOXER_FILE_ID_HEX)
/* Bytes of a file name kept; longer names are cut (on a character).  */
#define BOXER_FILE_NAME_MAX 255

struct boxer_file_info
{
  char id[BOXER_FILE_ID_LEN + 1];
  char *name;                   /* valid UTF-8, no '/' or control characters */
  int64_t size;
  char sha256[65];              /* lower-case hex */
  long long created_at;         /* unix seconds */
};

void boxer_file_info_release (struct boxer_file_info *fi);

/* Whether s is an upload id in the form this store makes.  Pure.  */
bool boxer_files_id_is_valid (const char *s);

/* The name an upload is listed under: the last component of what the client
   sent ('/' and '\\' both separate), made valid UTF-8 without control
   characters, cut to BOXER_FILE_NAME_MAX bytes; "file" when nothing is
   left.  Pure; caller frees.  */
char *boxer_files_clean_name (const char *name);

/* Whether an upload of up to incoming bytes may start: the disk keeps
   cfg->min_free_bytes free and the uploads stay within
   cfg->files_budget_bytes (expired ones are removed first).
   BOXER_ERR_NO_SPACE otherwise.  */
int boxer_files_admit (const struct boxer_config *cfg, int64_t incoming,
                       struct boxer_error **err);

/* An upload being written.  */
struct boxer_upload;

/* Start an upload into <home>/files; name is the client's file name (may be
   NULL), owner the name of the API key that sends it (NULL: no keys).  */
int boxer_files_upload_begin (const char *home, const char *name, const char *owner,
                              struct boxer_upload **out, struct boxer_error **err);
int boxer_files_upload_write (struct boxer_upload *up, const void *data, size_t len,
                              struct boxer_error **err);
/* Finish the upload and make it visible under its id; fills out.  */
int boxer_files_upload_commit (struct boxer_upload *up, struct boxer_file_info *out,
                               struct boxer_error **err);
/* Free the upload; one that was not committed is removed.  */
void boxer_files_upload_free (struct boxer_upload *up);

/* Remove an upload (a missing one is fine).  */
int boxer_files_remove (const char *home, const char *id, struct boxer_error **err);

/* Hard-link the data of upload id as dest_name in dest_dirfd, so the file
   stays for the run even if it expires meanwhile.  An id that is malformed,
   unknown or older than ttl_secs is BOXER_ERR_FILE_NOT_FOUND.  The link
   must be on the same filesystem as home (a run's bundle is).  */
int boxer_files_link (const char *home, const char *id, int64_t ttl_secs, int dest_dirfd,
                      const char *dest_name, struct boxer_error **err);

/* The BOXER_ERR_FILE_NOT_FOUND error of an unknown upload id.  */
int boxer_files_not_found (const char *id, int64_t ttl_secs, struct boxer_error **err);

/* The owner upload id was sent with (*owner_out NULL: none); an id that
   is malformed, unknown or expired is BOXER_ERR_FILE_NOT_FOUND.  */
int boxer_files_owner (const char *home, const char *id, int64_t ttl_secs, char **owner_out,
                       struct boxer_error **err);

/* Bring the budget's ledger back to what the uploads take, once a minute
   (boxer_expiry_remeasure ()).  */
int boxer_files_remeasure (const struct boxer_config *cfg, struct boxer_error **err);

/* Remove uploads older than ttl_secs, and what interrupted uploads and
   removals left.  Safe to run in several workers at once.  */
int boxer_files_sweep (const char *home, int64_t ttl_secs, struct boxer_error **err);

#endif
