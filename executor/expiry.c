#include <config.h>

#include "expiry.h"

#include <fcntl.h>
#include <search.h>
#include <sys/file.h>
#include <time.h>

#include "common/fsutil.h"

bool
boxer_expiry_id_is_valid (const char *s, const char *prefix, size_t nhex)
{
  size_t plen = strlen (prefix);

  if (s == NULL || strncmp (s, prefix, plen) != 0 || strlen (s) != plen + nhex)
    return false;
  for (size_t i = plen; i < plen + nhex; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return true;
}

bool
boxer_expiry_expired (const struct stat *st, int64_t ttl_secs)
{
  /* A clock set back makes entries look young, not old: nothing is lost.  */
  return (int64_t) time (NULL) - (int64_t) st->st_mtime >= ttl_secs;
}

int
boxer_expiry_remove (const char *dir, const char *name, struct boxer_error **err)
{
  cleanup_free char *from = xasprintf ("%s/%s", dir, name);
  cleanup_free char *to = NULL;
  char rnd[17];

  if (boxer_random_id (rnd, "", 16, err) < 0)
    return -1;
  to = xasprintf ("%s/" BOXER_EXPIRY_DEL_PREFIX "%s-%s", dir, name, rnd);
  if (rename (from, to) < 0)
    {
      if (errno == ENOENT)
        return 0;       /* gone already, or another worker got there first */
      return boxer_error_errno (err, errno, "rename '%s'", from);
    }
  return boxer_rm_rf (to, err);
}

/* Whether dir/name was last modified (changed, with use_ctime) more than
   secs ago.  */
static bool
older_than (int dirfd, const char *name, int64_t secs, bool use_ctime)
{
  struct stat st;

  if (fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return false;
  if (use_ctime)
    st.st_mtim = st.st_ctim;
  return boxer_expiry_expired (&st, secs);
}

struct usage
{
  void *seen;           /* tsearch set of inodes with several links */
  int64_t bytes;
};

static int
cmp_ino (const void *a, const void *b)
{
  ino_t x = *(const ino_t *) a, y = *(const ino_t *) b;
  return x < y ? -1 : x > y;
}

static int
usage_visit (int parentfd, const char *name, const struct stat *st, enum boxer_walk_event ev,
             void *data, struct boxer_error **err)
{
  struct usage *u = data;

  (void) parentfd;
  (void) name;
  (void) err;
  if (ev == BOXER_WALK_DIR_POST)
    return 0;
  if (!S_ISDIR (st->st_mode) && st->st_nlink > 1)
    {
      ino_t *key = xmalloc (sizeof *key);
      *key = st->st_ino;
      if (tfind (key, &u->seen, cmp_ino))
        {
          free (key);
          return 0;
        }
      if (tsearch (key, &u->seen, cmp_ino) == NULL)
        abort ();
    }
  u->bytes += (int64_t) st->st_blocks * 512;
  return 0;
}

int
boxer_expiry_usage (const char *dir, int64_t *out, struct boxer_error **err)
{
  struct usage u = { NULL, 0 };
  int r;

  *out = 0;
  if (access (dir, F_OK) < 0 && errno == ENOENT)
    return 0;
  r = boxer_walk_at (AT_FDCWD, dir, false, usage_visit, &u, err);
  tdestroy (u.seen, free);
  *out = u.bytes;
  return r;
}

/* The ledger of a budgeted directory: what its entries took when last
   measured, plus the most each admission since may have added.  Walking
   the directory costs a moment per entry, and a busy server keeps many
   thousands for their time to live; with the ledger an admission reads
   and charges two numbers under a lock, and only walks when the charged
   sum would pass the budget.  Each admission is charged what its entry
   may hold, and once written (boxer_expiry_settle ()) what it took: the
   sum stays at or above what the disk holds but for entries still being
   written that take more than their charge (a run record's escapes and
   directories), and the budget holds as it did with a walk before every
   admission, which could not count what those would take either.
   Expired entries going is what brings the sum down:
   boxer_expiry_remeasure () walks again once a minute, after a request's
   answer, never before one.  */
#define LEDGER_NAME ".usage"
#define LEDGER_REMEASURE_MS (60 * 1000)

struct ledger
{
  /* boxer_now_ms (): a reboot resets that clock, which makes the ledger
     look new or from the future; its sum still covers what is on disk.  */
  long long measured_ms;
  long long bytes;
  /* One more at every measure, so that a charge knows whether the sum
     still holds it: two measures may share a millisecond.  */
  long long measure;
};

static bool
ledger_read (int fd, struct ledger *l)
{
  char buf[96];
  ssize_t n = pread (fd, buf, sizeof buf - 1, 0);

  if (n <= 0)
    return false;
  buf[n] = '\0';
  return sscanf (buf, "%lld %lld %lld", &l->measured_ms, &l->bytes, &l->measure) == 3
         && l->bytes >= 0;
}

/* The measure after l's, or after a damaged ledger's, whose number is
   lost: the clock then, which is past any number counted up from an
   earlier one's clock at one per measure.  */
static long long
next_measure (const struct ledger *l, long long now)
{
  return l ? l->measure + 1 : now;
}

static void
ledger_write (int fd, const struct ledger *l)
{
  char buf[96];
  /* Fixed width: a rewrite always covers the last one whole.  */
  int n = snprintf (buf, sizeof buf, "%020lld %020lld %020lld\n", l->measured_ms, l->bytes,
                    l->measure);

  if (pwrite (fd, buf, (size_t) n, 0) != n)
    /* A ledger that cannot be trusted makes the next admission walk.  */
    (void) ftruncate (fd, 0);
}

/* Walk dir and decide, sweeping expired entries first if need be.  */
static int
measure_and_admit (const char *dir, const char *prefix, size_t nhex, const char *stamp,
                   int64_t ttl_secs, int64_t budget, int64_t incoming, int64_t *used,
                   struct boxer_error **err)
{
  if (boxer_expiry_usage (dir, used, err) < 0)
    return -1;
  if (*used + incoming <= budget)
    return 0;
  if (boxer_expiry_sweep (dir, prefix, nhex, stamp, ttl_secs, err) < 0
      || boxer_expiry_usage (dir, used, err) < 0)
    return -1;
  return *used + incoming <= budget ? 0 : 1;
}

int
boxer_expiry_admit (const char *dir, const char *prefix, size_t nhex, const char *stamp,
                    int64_t ttl_secs, int64_t budget, int64_t incoming, const char *setting,
                    const char *what, struct boxer_expiry_charge *charge,
                    struct boxer_error **err)
{
  cleanup_free char *path = NULL;
  cleanup_close int fd = -1;
  long long now = boxer_now_ms ();
  struct ledger l;
  bool whole;
  int64_t used = 0;
  int r;

  if (charge)
    *charge = (struct boxer_expiry_charge) { 0, 0 };
  if (budget <= 0)
    return 0;
  path = xasprintf ("%s/" LEDGER_NAME, dir);
  /* No ledger (no directory yet, say): walk, as every time without one.  */
  fd = open (path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd >= 0 && flock (fd, LOCK_EX) < 0)
    {
      close (fd);
      fd = -1;
    }
  whole = fd >= 0 && ledger_read (fd, &l);
  if (whole && l.bytes + incoming <= budget)
    {
      l.bytes += incoming;
      ledger_write (fd, &l);
      if (charge)
        *charge = (struct boxer_expiry_charge) { l.measure, incoming };
      return 0;
    }
  r = measure_and_admit (dir, prefix, nhex, stamp, ttl_secs, budget, incoming, &used, err);
  if (r < 0)
    return -1;
  if (fd >= 0)
    {
      l = (struct ledger) { now, used + (r == 0 ? incoming : 0),
                            next_measure (whole ? &l : NULL, now) };
      ledger_write (fd, &l);
      if (r == 0 && charge)
        *charge = (struct boxer_expiry_charge) { l.measure, incoming };
    }
  if (r == 0)
    return 0;
  return boxer_error_make (err, BOXER_ERR_NO_SPACE,
                           "%s use %lld bytes of the server's %s of %lld, and this needs up to "
                           "%lld more; try again once older ones expire",
                           what, (long long) used, setting, (long long) budget,
                           (long long) incoming);
}

void
boxer_expiry_settle (const char *dir, const struct boxer_expiry_charge *charge, int64_t actual)
{
  cleanup_free char *path = NULL;
  cleanup_close int fd = -1;
  struct ledger l;

  if (charge->bytes == 0)
    return;
  path = xasprintf ("%s/" LEDGER_NAME, dir);
  fd = open (path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  /* None, or a damaged one: the next admission walks anyway.  */
  if (fd < 0 || flock (fd, LOCK_EX) < 0 || !ledger_read (fd, &l))
    return;
  /* Measured again since the charge, the ledger no longer holds it: the
     walk saw the entry half-written at most, and what it took is added
     whole (more, never less, than the disk's).  */
  if (l.measure == charge->measure)
    l.bytes = l.bytes - charge->bytes + actual;
  else
    l.bytes += actual;
  if (l.bytes < 0)
    l.bytes = 0;
  ledger_write (fd, &l);
}

int
boxer_expiry_remeasure (const char *dir, int64_t budget, struct boxer_error **err)
{
  cleanup_free char *path = NULL;
  cleanup_close int fd = -1;
  long long now = boxer_now_ms ();
  struct ledger before, after;
  int64_t used;

  if (budget <= 0)
    return 0;
  path = xasprintf ("%s/" LEDGER_NAME, dir);
  fd = open (path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    /* None yet (or no directory): the next admission measures.  */
    return errno == ENOENT ? 0 : boxer_error_errno (err, errno, "open '%s'", path);
  if (flock (fd, LOCK_EX) < 0)
    return boxer_error_errno (err, errno, "lock '%s'", path);
  if (!ledger_read (fd, &before))
    {
      /* A damaged one: admissions walk until it is whole again, so this
         walk may hold them for its length too.  */
      if (boxer_expiry_usage (dir, &used, err) < 0)
        return -1;
      ledger_write (fd, &(struct ledger) { now, used, next_measure (NULL, now) });
      return 0;
    }
  if (before.measured_ms <= now && now - before.measured_ms < LEDGER_REMEASURE_MS)
    return 0;
  /* Stamped first, so that no other worker walks too; then the walk
     without the lock, so that admissions go on charging meanwhile.  */
  before.measured_ms = now;
  before.measure = next_measure (&before, now);
  ledger_write (fd, &before);
  flock (fd, LOCK_UN);
  if (boxer_expiry_usage (dir, &used, err) < 0)
    return -1;
  if (flock (fd, LOCK_EX) < 0)
    return boxer_error_errno (err, errno, "lock '%s'", path);
  /* What was charged during the walk counts on top of it (the walk may
     have seen part of that already: more, never less, than the disk's).
     A ledger measured again meanwhile (an admission's walk) stays.  */
  if (!ledger_read (fd, &after) || after.measure != before.measure || after.bytes < before.bytes)
    return 0;
  ledger_write (fd, &(struct ledger) { now, used + (after.bytes - before.bytes), before.measure });
  return 0;
}

int
boxer_expiry_sweep (const char *dir, const char *prefix, size_t nhex, const char *stamp,
                    int64_t ttl_secs, struct boxer_error **err)
{
  cleanup_dir DIR *d = opendir (dir);
  struct dirent *de;
  int r = 0;

  if (d == NULL)
    {
      if (errno == ENOENT)
        return 0;
      return boxer_error_errno (err, errno, "open '%s'", dir);
    }
  while ((errno = 0, de = readdir (d)) != NULL)
    {
      const char *name = de->d_name;
      bool remove = false;

      if (strncmp (name, BOXER_EXPIRY_DEL_PREFIX, strlen (BOXER_EXPIRY_DEL_PREFIX)) == 0)
        {
          /* Claimed by a sweeper that died before it finished; a live one
             deletes what it renamed within moments.  The rename set the
             ctime.  */
          if (older_than (dirfd (d), name, 60, true))
            {
              cleanup_free char *path = xasprintf ("%s/%s", dir, name);
              if (boxer_rm_rf (path, r < 0 ? NULL : err) < 0)
                r = -1;
            }
          continue;
        }
      if (strncmp (name, BOXER_EXPIRY_NEW_PREFIX, strlen (BOXER_EXPIRY_NEW_PREFIX)) == 0)
        remove = older_than (dirfd (d), name, BOXER_EXPIRY_STAGING_SECS, false);
      else if (boxer_expiry_id_is_valid (name, prefix, nhex))
        {
          cleanup_free char *stamp_path = xasprintf ("%s/%s", name, stamp);
          struct stat st;

          if (fstatat (dirfd (d), stamp_path, &st, AT_SYMLINK_NOFOLLOW) == 0)
            remove = boxer_expiry_expired (&st, ttl_secs);
          else
            /* Entries appear complete, by rename: one without its stamp
               is damaged; give it the staging grace, then remove it.  */
            remove = older_than (dirfd (d), name, BOXER_EXPIRY_STAGING_SECS, false);
        }
      if (remove && boxer_expiry_remove (dir, name, r < 0 ? NULL : err) < 0)
        r = -1;
    }
  if (errno && r == 0)
    return boxer_error_errno (err, errno, "read '%s'", dir);
  return r;
}
