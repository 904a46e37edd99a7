#include <config.h>

#include "records.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "common/fsutil.h"
#include "common/paths.h"
#include "expiry.h"
#include "outputs.h"

/* result.json is written by us and bounded by the output limits; this only
   guards against a damaged file.  */
#define RESULT_MAX_BYTES ((size_t) 1 << 31)

bool
boxer_records_id_is_valid (const char *s)
{
  return boxer_expiry_id_is_valid (s, BOXER_RECORD_ID_PREFIX, BOXER_RECORD_ID_HEX);
}

static char *
records_dir (const char *home)
{
  return xasprintf ("%s/runs/records", home);
}

static char *
staging_path (const char *home, const char *id)
{
  return xasprintf ("%s/runs/records/" BOXER_EXPIRY_NEW_PREFIX "%s", home, id);
}

int
boxer_records_stage (const char *home, const char *id, int *outputs_fd_out,
                     struct boxer_error **err)
{
  cleanup_free char *dir = records_dir (home);
  cleanup_free char *staging = staging_path (home, id);
  cleanup_close int fd = -1;

  if (!boxer_records_id_is_valid (id))
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "bad run id for a record");
  if (boxer_mkdir_p (dir, 0700, err) < 0)
    return -1;
  if (mkdir (staging, 0700) < 0)
    return boxer_error_errno (err, errno, "mkdir '%s'", staging);
  fd = open (staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return boxer_error_errno (err, errno, "open '%s'", staging);
  if (mkdirat (fd, "outputs", 0700) < 0)
    return boxer_error_errno (err, errno, "mkdir '%s/outputs'", staging);
  *outputs_fd_out = openat (fd, "outputs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (*outputs_fd_out < 0)
    return boxer_error_errno (err, errno, "open '%s/outputs'", staging);
  return 0;
}

int
boxer_records_commit (const char *home, const char *id, const char *json, size_t len,
                      struct boxer_error **err)
{
  cleanup_free char *staging = staging_path (home, id);
  cleanup_free char *result = xasprintf ("%s/result.json", staging);
  cleanup_free char *final = xasprintf ("%s/runs/records/%s", home, id);

  if (!boxer_records_id_is_valid (id))
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "bad run id for a record");
  /* Unsynced, as the outputs beside it: the record keeps an answer already
     given, and one a host crash damaged is reported as damaged by GET
     /runs/{id}.  The sync was a millisecond or two of every run's answer.  */
  if (boxer_write_file_unsynced (result, json, len, 0600, err) < 0)
    return -1;
  if (rename (staging, final) < 0)
    return boxer_error_errno (err, errno, "rename '%s' to '%s'", staging, final);
  return 0;
}

void
boxer_records_discard (const char *home, const char *id)
{
  cleanup_free char *staging = NULL;

  if (!boxer_records_id_is_valid (id))
    return;
  staging = staging_path (home, id);
  boxer_rm_rf (staging, NULL);
}

int
boxer_records_not_found (const char *id, int64_t ttl_secs, struct boxer_error **err)
{
  cleanup_free char *q = boxer_quote_str (id);
  return boxer_error_make (err, BOXER_ERR_RUN_NOT_FOUND,
                           "run '%s' not found; run records are kept for %lld s", q,
                           (long long) ttl_secs);
}

/* Open the record of id (a directory fd), refusing expired ones.  */
static int
open_record (const char *home, const char *id, int64_t ttl_secs, struct boxer_error **err)
{
  cleanup_free char *path = NULL;
  cleanup_close int fd = -1;
  struct stat st;

  if (!boxer_records_id_is_valid (id))
    return boxer_records_not_found (id, ttl_secs, err);
  path = xasprintf ("%s/runs/records/%s", home, id);
  fd = open (path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    {
      if (errno == ENOENT)
        return boxer_records_not_found (id, ttl_secs, err);
      return boxer_error_errno (err, errno, "open '%s'", path);
    }
  if (fstatat (fd, "result.json", &st, AT_SYMLINK_NOFOLLOW) < 0)
    {
      if (errno == ENOENT)
        return boxer_records_not_found (id, ttl_secs, err);
      return boxer_error_errno (err, errno, "stat '%s/result.json'", path);
    }
  /* Expired but not swept yet is expired all the same.  */
  if (boxer_expiry_expired (&st, ttl_secs))
    return boxer_records_not_found (id, ttl_secs, err);
  return steal_fd (&fd);
}

int
boxer_records_read (const char *home, const char *id, int64_t ttl_secs, char **out,
                    size_t *len_out, struct boxer_error **err)
{
  cleanup_close int fd = open_record (home, id, ttl_secs, err);
  cleanup_free char *path = NULL;

  if (fd < 0)
    return -1;
  path = xasprintf ("%s/runs/records/%s/result.json", home, id);
  if (boxer_read_file (path, RESULT_MAX_BYTES, out, len_out, err) < 0)
    {
      if ((*err)->errnum == ENOENT)
        {
          /* Swept between the two looks.  */
          boxer_error_release (err);
          return boxer_records_not_found (id, ttl_secs, err);
        }
      (*err)->category = BOXER_ERR_INTERNAL;
      return -1;
    }
  return 0;
}

int
boxer_records_open_output (const char *home, const char *id, int64_t ttl_secs,
                           const char *path, int *fd_out, int64_t *size_out,
                           struct boxer_error **err)
{
  cleanup_close int record = -1;
  cleanup_close int outputs = -1;
  cleanup_close int fd = -1;
  struct stat st;

  record = open_record (home, id, ttl_secs, err);
  if (record < 0)
    return -1;
  if (boxer_paths_check_relative (path, strlen (path), "the output path", err) < 0)
    return -1;
  outputs = openat (record, "outputs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (outputs < 0)
    return boxer_error_errno (err, errno, "open the outputs of run '%s'", id);
  fd = boxer_openat_beneath (outputs, path, O_RDONLY | O_NONBLOCK, 0);
  if (fd < 0 && errno != ENOENT && errno != ENOTDIR && errno != ELOOP && errno != EXDEV
      && errno != ENAMETOOLONG)
    return boxer_error_errno (err, errno, "open output of run '%s'", id);
  if (fd < 0 || fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    {
      cleanup_free char *q = boxer_quote_str (path);
      return boxer_error_make (err, BOXER_ERR_FILE_NOT_FOUND,
                               "run '%s' has no output file '%s'; GET /runs/%s/outputs lists "
                               "them",
                               id, q, id);
    }
  *size_out = st.st_size;
  *fd_out = steal_fd (&fd);
  return 0;
}

/* What result.json holds beside the streams and the outputs' names: the
   ids, the image's reference and digest, times, an API key's name, the
   field names, and the record's directories.  */
#define RESULT_REST_BYTES (16 * 1024)

int
boxer_records_admit (const struct boxer_config *cfg, struct boxer_expiry_charge *charge,
                     struct boxer_error **err)
{
  cleanup_free char *dir = records_dir (cfg->home);
  /* What a run's limits let it keep.  Its record can take more on disk:
     JSON writes a control byte in six, and every file kept may sit in
     directories of its own, each a block.  A worst case that far from the
     usual one, charged to every run in flight, would have admissions walk
     whenever a few are queued; the charge is settled to what the record
     took as soon as it is written instead.  */
  int64_t most = cfg->outputs_limit_bytes + 2 * cfg->output_limit_bytes + RESULT_REST_BYTES;

  *charge = (struct boxer_expiry_charge) { 0, 0 };
  if (boxer_check_free_space (cfg->home, cfg->min_free_bytes, "runs", err) < 0)
    return -1;
  return boxer_expiry_admit (dir, BOXER_RECORD_ID_PREFIX, BOXER_RECORD_ID_HEX, "result.json",
                             cfg->runs_ttl_secs, cfg->runs_budget_bytes, most,
                             "runs_budget_bytes", "run records", charge, err);
}

void
boxer_records_settle (const struct boxer_config *cfg, const char *id,
                      const struct boxer_expiry_charge *charge)
{
  cleanup_free char *dir = records_dir (cfg->home);
  cleanup_error struct boxer_error *err = NULL;
  int64_t actual = 0;

  if (charge->bytes == 0)
    return;
  if (id && boxer_records_id_is_valid (id))
    {
      cleanup_free char *path = xasprintf ("%s/%s", dir, id);
      /* Unmeasured, it is the whole charge that stays.  */
      if (boxer_expiry_usage (path, &actual, &err) < 0)
        return;
    }
  boxer_expiry_settle (dir, charge, actual);
}

int
boxer_records_remeasure (const struct boxer_config *cfg, struct boxer_error **err)
{
  cleanup_free char *dir = records_dir (cfg->home);
  return boxer_expiry_remeasure (dir, cfg->runs_budget_bytes, err);
}

int
boxer_records_sweep (const char *home, int64_t ttl_secs, struct boxer_error **err)
{
  cleanup_free char *dir = records_dir (home);
  return boxer_expiry_sweep (dir, BOXER_RECORD_ID_PREFIX, BOXER_RECORD_ID_HEX, "result.json",
                             ttl_secs, err);
}

int
boxer_records_capture (const struct boxer_config *cfg, const char *id, int output_fd,
                       struct boxer_run_result *out, struct boxer_error **err)
{
  struct boxer_outputs_capture c = {
    .limit_bytes = cfg->outputs_limit_bytes,
    .limit_files = cfg->outputs_limit_files,
  };
  cleanup_close int dst = -1;

  if (boxer_records_stage (cfg->home, id, &dst, err) < 0)
    {
      boxer_records_discard (cfg->home, id);
      return -1;
    }
  if (output_fd >= 0 && boxer_outputs_capture_fd (output_fd, dst, &c, err) < 0)
    {
      boxer_records_discard (cfg->home, id);
      return boxer_error_wrap (err, "capture /output");
    }
  for (size_t i = 0; i < out->noutputs; i++)
    free (out->outputs[i].path);
  free (out->outputs);
  out->outputs = steal_pointer (&c.files);
  out->noutputs = c.nfiles;
  out->outputs_truncated = c.truncated;
  return 0;
}
