#include <config.h>

#include "warm.h"

#include <json-c/json.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "cache/reference.h"
#include "common/log.h"

/* After a boot fails, the pool waits this long, doubling up to the most,
   before it tries again: a broken image or init must not spin.  */
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
/* A replacement's boot (a core's worth of work for a tenth of a second)
   waits while runs are going, so as not to slow the one that took the
   sandbox; but no longer than this after the pool fell short, so that
   steady traffic still finds it refilled.  */
#define REFILL_YIELD_MS 1000

enum slot_state
{
  SLOT_BOOTING,         /* its boot child is running */
  SLOT_READY,
  SLOT_DRAINING,        /* its destroy child is running */
};

struct slot
{
  enum slot_state state;
  pid_t pid;            /* the boot or destroy child */
  long long boot_at_ms; /* when its boot began */
  struct boxer_warm_sandbox sb;
};

struct pool
{
  const struct boxer_warm_pool_entry *entry;
  char *reference;      /* normalised */
  enum boxer_network network;
  char digest[72];      /* what the reference names, as runs told; "" until one did */
  struct slot *slots;
  size_t nslots, cap;
  long long retry_at_ms;
  long long short_since_ms;     /* when a take left it short; 0: not since it was full */
  int backoff_ms;
};

struct boxer_warm
{
  struct boxer_executor *ex;
  void (*in_child) (void *data);
  void *in_child_data;
  struct pool *pools;
  size_t npools;
};

int
boxer_warm_new (struct boxer_warm **out, struct boxer_executor *ex, const struct boxer_config *cfg,
                void (*in_child) (void *data), void *data, struct boxer_error **err)
{
  struct boxer_warm *w = xmalloc0 (sizeof *w);

  w->ex = ex;
  w->in_child = in_child;
  w->in_child_data = data;
  w->pools = xmalloc0 ((cfg->n_warm_pool + 1) * sizeof *w->pools);
  for (size_t i = 0; i < cfg->n_warm_pool; i++)
    {
      struct boxer_reference ref;
      struct pool *p = &w->pools[i];

      if (boxer_reference_parse (cfg->warm_pool[i].image, &ref, err) < 0)
        {
          boxer_error_wrap (err, "config: warm_pool[%zu].image", i);
          boxer_warm_free (w);
          return -1;
        }
      p->entry = &cfg->warm_pool[i];
      p->network = strcmp (p->entry->network, "sandbox") == 0 ? BOXER_NETWORK_SANDBOX
                                                               : BOXER_NETWORK_NONE;
      p->reference = boxer_reference_string (&ref);
      boxer_reference_release (&ref);
      p->cap = (size_t) p->entry->size;
      p->slots = xmalloc0 ((p->cap + 1) * sizeof *p->slots);
      w->npools++;
    }
  *out = w;
  return 0;
}

/* In a boot or destroy child: die with the loop (the next one sweeps what
   is left), and none of the loop's signal handling.  */
static void
child_setup (struct boxer_warm *w)
{
  struct sigaction dfl = { .sa_handler = SIG_DFL };

  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (getppid () == 1)
    _exit (1);
  sigaction (SIGTERM, &dfl, NULL);
  sigaction (SIGINT, &dfl, NULL);
  sigaction (SIGCHLD, &dfl, NULL);
  if (w->in_child)
    w->in_child (w->in_child_data);
  boxer_warm_close_all (w);
}

static void
slot_remove (struct pool *p, size_t i)
{
  p->slots[i] = p->slots[--p->nslots];
}

/* Destroy a ready sandbox off the loop, in a child.  */
static void
drain (struct boxer_warm *w, struct pool *p, struct slot *s)
{
  pid_t pid = fork ();

  if (pid == 0)
    {
      struct boxer_warm_sandbox mine = s->sb;
      s->sb.lock_fd = s->sb.to_init = s->sb.from_init = -1;
      child_setup (w);
      boxer_executor_warm_destroy (w->ex, &mine);
      _exit (0);
    }
  if (pid < 0)
    {
      /* No child to do it: do it here, slowly but surely.  */
      boxer_log_warning ("warm pool: fork: %s; destroying in the loop", strerror (errno));
      boxer_executor_warm_destroy (w->ex, &s->sb);
      slot_remove (p, (size_t) (s - p->slots));
      return;
    }
  boxer_executor_warm_close (&s->sb);
  s->state = SLOT_DRAINING;
  s->pid = pid;
}

void
boxer_warm_learn (struct boxer_warm *w, const char *reference, const char *digest)
{
  if (w == NULL || reference == NULL || digest == NULL)
    return;
  for (size_t i = 0; i < w->npools; i++)
    {
      struct pool *p = &w->pools[i];
      if (strcmp (p->reference, reference) != 0 || strcmp (p->digest, digest) == 0
          || strlen (digest) >= sizeof p->digest)
        continue;
      if (p->digest[0])
        boxer_log_info ("warm pool %s: now %s (was %s); draining the old sandboxes",
                        p->reference, digest, p->digest);
      snprintf (p->digest, sizeof p->digest, "%s", digest);
      p->backoff_ms = 0;
      p->retry_at_ms = 0;
      for (size_t k = 0; k < p->nslots; k++)
        if (p->slots[k].state == SLOT_READY && strcmp (p->slots[k].sb.digest, digest) != 0)
          drain (w, p, &p->slots[k]);
    }
}

bool
boxer_warm_take (struct boxer_warm *w, const char *digest, int network,
                 struct boxer_warm_sandbox *out)
{
  if (w == NULL || digest == NULL)
    return false;
  for (size_t i = 0; i < w->npools; i++)
    {
      struct pool *p = &w->pools[i];
      if ((int) p->network != network)
        continue;
      for (size_t k = 0; k < p->nslots; k++)
        if (p->slots[k].state == SLOT_READY && strcmp (p->slots[k].sb.digest, digest) == 0)
          {
            *out = p->slots[k].sb;
            slot_remove (p, k);
            if (p->short_since_ms == 0)
              p->short_since_ms = boxer_now_ms ();
            return true;
          }
    }
  return false;
}

bool
boxer_warm_serves (const struct boxer_warm *w, const char *digest, int network)
{
  if (w == NULL || digest == NULL)
    return false;
  for (size_t i = 0; i < w->npools; i++)
    if ((int) w->pools[i].network == network && w->pools[i].cap > 0
        && strcmp (w->pools[i].digest, digest) == 0)
      return true;
  return false;
}

static int
booting (const struct boxer_warm *w)
{
  int n = 0;

  for (size_t i = 0; i < w->npools; i++)
    for (size_t k = 0; k < w->pools[i].nslots; k++)
      n += w->pools[i].slots[k].state == SLOT_BOOTING;
  return n;
}

static void
boot_one (struct boxer_warm *w, struct pool *p)
{
  cleanup_error struct boxer_error *err = NULL;
  struct slot *s = &p->slots[p->nslots];
  pid_t pid;

  if (boxer_executor_warm_claim (w->ex, p->digest, p->network, NULL, &s->sb, &err) < 0)
    {
      boxer_log_error ("warm pool %s: %s", p->reference, err->msg);
      p->retry_at_ms = boxer_now_ms () + BACKOFF_MAX_MS;
      return;
    }
  pid = fork ();
  if (pid == 0)
    {
      struct boxer_warm_sandbox mine = s->sb;
      int r;
      s->sb.lock_fd = s->sb.to_init = s->sb.from_init = s->sb.init_in = s->sb.init_out = -1;
      child_setup (w);
      r = boxer_executor_warm_boot (w->ex, &mine, NULL, &err);
      if (r < 0)
        boxer_log_error ("warm pool %s: boot: %s", p->reference, err->msg);
      boxer_executor_warm_close (&mine);
      _exit (r < 0 ? 1 : 0);
    }
  /* boxer-init's ends belong to the boot now.  */
  close (s->sb.init_in);
  close (s->sb.init_out);
  s->sb.init_in = s->sb.init_out = -1;
  if (pid < 0)
    {
      boxer_log_error ("warm pool %s: fork a boot: %s", p->reference, strerror (errno));
      boxer_executor_warm_destroy (w->ex, &s->sb);
      p->retry_at_ms = boxer_now_ms () + BACKOFF_MAX_MS;
      return;
    }
  s->state = SLOT_BOOTING;
  s->pid = pid;
  s->boot_at_ms = boxer_now_ms ();
  p->nslots++;
}

/* Whether p's refill still yields to the runs in progress.  */
static bool
yields (const struct pool *p, bool runs_busy, long long now)
{
  return runs_busy && p->short_since_ms && now < p->short_since_ms + REFILL_YIELD_MS;
}

void
boxer_warm_tend (struct boxer_warm *w, int max_boots, bool runs_busy)
{
  long long now = boxer_now_ms ();
  int budget;

  if (w == NULL)
    return;
  budget = max_boots - booting (w);
  for (size_t i = 0; i < w->npools && budget > 0; i++)
    {
      struct pool *p = &w->pools[i];
      if (p->digest[0] == '\0' || now < p->retry_at_ms || yields (p, runs_busy, now))
        continue;
      while (budget > 0 && p->nslots < p->cap)
        {
          size_t before = p->nslots;
          boot_one (w, p);
          if (p->nslots == before)
            break;
          budget--;
        }
      if (p->nslots == p->cap)
        p->short_since_ms = 0;
    }
}

bool
boxer_warm_reaped (struct boxer_warm *w, pid_t pid, int status, int64_t *booted_ms)
{
  *booted_ms = -1;
  if (w == NULL)
    return false;
  for (size_t i = 0; i < w->npools; i++)
    {
      struct pool *p = &w->pools[i];
      for (size_t k = 0; k < p->nslots; k++)
        {
          struct slot *s = &p->slots[k];
          if (s->pid != pid || s->state == SLOT_READY)
            continue;
          s->pid = 0;
          if (s->state == SLOT_DRAINING)
            slot_remove (p, k);
          else if (WIFEXITED (status) && WEXITSTATUS (status) == 0
                   && strcmp (s->sb.digest, p->digest) == 0)
            {
              s->state = SLOT_READY;
              p->backoff_ms = 0;
              *booted_ms = boxer_now_ms () - s->boot_at_ms;
            }
          else if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
            /* Booted while the tag moved on.  */
            drain (w, p, s);
          else
            {
              /* The boot undid all of it, its claim too.  */
              boxer_executor_warm_close (&s->sb);
              slot_remove (p, k);
              p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_MIN_MS;
              if (p->backoff_ms > BACKOFF_MAX_MS)
                p->backoff_ms = BACKOFF_MAX_MS;
              p->retry_at_ms = boxer_now_ms () + p->backoff_ms;
            }
          return true;
        }
    }
  return false;
}

void
boxer_warm_close_all (struct boxer_warm *w)
{
  if (w == NULL)
    return;
  for (size_t i = 0; i < w->npools; i++)
    for (size_t k = 0; k < w->pools[i].nslots; k++)
      boxer_executor_warm_close (&w->pools[i].slots[k].sb);
}

int
boxer_warm_next_timeout (const struct boxer_warm *w)
{
  long long now = boxer_now_ms (), best = -1;

  if (w == NULL)
    return -1;
  for (size_t i = 0; i < w->npools; i++)
    {
      const struct pool *p = &w->pools[i];
      if (p->digest[0] && p->nslots < p->cap)
        {
          long long at = p->retry_at_ms, until = p->short_since_ms + REFILL_YIELD_MS;
          long long left;
          if (p->short_since_ms && until > at)
            at = until;
          left = at > now ? at - now : 0;
          if (best < 0 || left < best)
            best = left;
        }
    }
  /* Even with nothing to wait for, tend at least once a second while
     a pool lacks sandboxes (boots are bounded by free slots).  */
  return best < 0 ? -1 : best < 1000 ? (int) best : 1000;
}

int64_t
boxer_warm_sandboxes (const struct boxer_warm *w)
{
  int64_t n = 0;

  if (w == NULL)
    return 0;
  for (size_t i = 0; i < w->npools; i++)
    n += (int64_t) w->pools[i].nslots;
  return n;
}

int64_t
boxer_warm_ready (const struct boxer_warm *w)
{
  int64_t n = 0;

  for (size_t i = 0; w && i < w->npools; i++)
    for (size_t k = 0; k < w->pools[i].nslots; k++)
      n += w->pools[i].slots[k].state == SLOT_READY;
  return n;
}

json_object *
boxer_warm_status (const struct boxer_warm *w)
{
  json_object *a = json_object_new_array ();

  for (size_t i = 0; w && i < w->npools; i++)
    {
      const struct pool *p = &w->pools[i];
      json_object *o = json_object_new_object ();
      int64_t ready = 0;
      for (size_t k = 0; k < p->nslots; k++)
        ready += p->slots[k].state == SLOT_READY;
      json_object_object_add (o, "image", json_object_new_string (p->entry->image));
      json_object_object_add (o, "network", json_object_new_string (p->entry->network));
      json_object_object_add (o, "size", json_object_new_int64 (p->entry->size));
      json_object_object_add (o, "ready", json_object_new_int64 (ready));
      json_object_array_add (a, o);
    }
  return a;
}

void
boxer_warm_free (struct boxer_warm *w)
{
  if (w == NULL)
    return;
  for (size_t i = 0; i < w->npools; i++)
    {
      struct pool *p = &w->pools[i];
      for (size_t k = 0; k < p->nslots; k++)
        {
          struct slot *s = &p->slots[k];
          if (s->state == SLOT_READY)
            boxer_executor_warm_destroy (w->ex, &s->sb);
          else if (s->pid > 0)
            {
              int status;
              /* A boot finishes (or fails) within runsc's bounds; then
                 what it made goes too.  */
              while (waitpid (s->pid, &status, 0) < 0 && errno == EINTR)
                ;
              if (s->state == SLOT_BOOTING && WIFEXITED (status) && WEXITSTATUS (status) == 0)
                boxer_executor_warm_destroy (w->ex, &s->sb);
              else
                boxer_executor_warm_close (&s->sb);
            }
        }
      free (p->slots);
      free (p->reference);
    }
  free (w->pools);
  free (w);
}
