#include <config.h>

#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* Seconds: from a warm lookup (milliseconds) to the longest run (600 s
   by default).  */
static const double bounds[] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                 2.5,   5,     10,   30,    60,   120, 300, 600 };
#define N_BOUNDS (sizeof bounds / sizeof bounds[0])

static const char *const phase_names[BOXER_PHASE_COUNT] = {
  "queue", "pull", "boot", "setup", "run", "teardown",
};
static const char *const outcome_names[BOXER_OUTCOME_COUNT] = {
  "ok", "exit_nonzero", "timeout", "oom",
};

void
boxer_metrics_init (struct boxer_metrics *m, const struct boxer_config *cfg)
{
  memset (m, 0, sizeof *m);
  m->started_at = time (NULL);
  m->cfg = cfg;
  for (int p = 0; p < BOXER_PHASE_COUNT; p++)
    m->phases[p].buckets = xmalloc0 ((N_BOUNDS + 1) * sizeof (uint64_t));
  m->warm_boots.buckets = xmalloc0 ((N_BOUNDS + 1) * sizeof (uint64_t));
  m->key_runs = xmalloc0 ((cfg->n_api_keys + 1) * sizeof (uint64_t));
  m->key_refused = xmalloc0 ((cfg->n_api_keys + 1) * sizeof (uint64_t));
}

void
boxer_metrics_release (struct boxer_metrics *m)
{
  for (int p = 0; p < BOXER_PHASE_COUNT; p++)
    free (m->phases[p].buckets);
  free (m->warm_boots.buckets);
  free (m->key_runs);
  free (m->key_refused);
  memset (m, 0, sizeof *m);
}

static void
histogram_observe (struct boxer_histogram *h, int64_t ms)
{
  double secs;

  if (ms < 0)
    return;
  secs = (double) ms / 1000.0;
  for (size_t i = 0; i < N_BOUNDS; i++)
    if (secs <= bounds[i])
      h->buckets[i]++;
  h->buckets[N_BOUNDS]++;
  h->count++;
  h->sum += secs;
}

void
boxer_metrics_observe (struct boxer_metrics *m, enum boxer_phase phase, int64_t ms)
{
  if ((int) phase >= 0 && phase < BOXER_PHASE_COUNT)
    histogram_observe (&m->phases[phase], ms);
}

void
boxer_metrics_warm_boot (struct boxer_metrics *m, int64_t ms)
{
  histogram_observe (&m->warm_boots, ms);
}

enum boxer_outcome
boxer_run_outcome (const struct boxer_run_result *res)
{
  return res->timed_out                            ? BOXER_OUTCOME_TIMEOUT
         : res->oom_killed                         ? BOXER_OUTCOME_OOM
         : res->exit_code == 0 && res->signal == 0 ? BOXER_OUTCOME_OK
                                                   : BOXER_OUTCOME_EXIT_NONZERO;
}

void
boxer_run_report_send (int fd, const struct boxer_run_report *r)
{
  if (write (fd, r, sizeof *r) < 0)
    boxer_log_warning ("run report: %s", strerror (errno));
}

void
boxer_metrics_run_report (struct boxer_metrics *m, const struct boxer_run_report *r)
{
  switch (r->kind)
    {
    case BOXER_REPORT_FAILED:
      m->runs_failed++;
      return;
    case BOXER_REPORT_RUN:
      if (r->outcome < 0 || r->outcome >= BOXER_OUTCOME_COUNT)
        return;
      m->runs[r->outcome]++;
      break;
    case BOXER_REPORT_TIMINGS:
      break;
    default:
      return;
    }
  boxer_metrics_observe (m, BOXER_PHASE_BOOT, r->boot_ms);
  boxer_metrics_observe (m, BOXER_PHASE_SETUP, r->setup_ms);
  boxer_metrics_observe (m, BOXER_PHASE_RUN, r->run_ms);
  boxer_metrics_observe (m, BOXER_PHASE_TEARDOWN, r->teardown_ms);
}

/* Error codes become label values: the API's are lower-case words.  */
static bool
code_is_valid (const char *code)
{
  size_t n = strlen (code);

  if (n == 0 || n >= sizeof ((struct boxer_metrics *) 0)->errors[0].code)
    return false;
  return strspn (code, "abcdefghijklmnopqrstuvwxyz_") == n;
}

void
boxer_metrics_http (struct boxer_metrics *m, int status, const char *run_error, int64_t pull_ms,
                    int64_t pulled_bytes)
{
  if (status >= 100 && status <= 599)
    for (size_t i = 0; i < BOXER_METRICS_MAX_STATUSES; i++)
      if (m->http[i].status == status || m->http[i].status == 0)
        {
          m->http[i].status = status;
          m->http[i].count++;
          break;
        }
  if (run_error && code_is_valid (run_error))
    for (size_t i = 0; i < BOXER_METRICS_MAX_CODES; i++)
      if (strcmp (m->errors[i].code, run_error) == 0 || m->errors[i].code[0] == '\0')
        {
          snprintf (m->errors[i].code, sizeof m->errors[i].code, "%s", run_error);
          m->errors[i].count++;
          break;
        }
  if (pull_ms >= 0)
    boxer_metrics_observe (m, BOXER_PHASE_PULL, pull_ms);
  if (pulled_bytes > 0)
    m->pulled_bytes += (uint64_t) pulled_bytes;
}

static void
header (FILE *f, const char *name, const char *type, const char *help)
{
  fprintf (f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram; labels: what selects it ("phase=\"run\"") or "".  */
static void
histogram_render (FILE *f, const char *name, const char *labels, const struct boxer_histogram *h)
{
  const char *sep = *labels ? "," : "";
  cleanup_free char *sel = *labels ? xasprintf ("{%s}", labels) : xstrdup ("");

  for (size_t i = 0; i < N_BOUNDS; i++)
    fprintf (f, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels, sep, bounds[i],
             h->buckets[i]);
  fprintf (f, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep,
           h->buckets[N_BOUNDS]);
  fprintf (f, "%s_sum%s %.6f\n", name, sel, h->sum);
  fprintf (f, "%s_count%s %" PRIu64 "\n", name, sel, h->count);
}

char *
boxer_metrics_render (const struct boxer_metrics *m, const struct boxer_metrics_now *now)
{
  char *text = NULL;
  size_t len = 0;
  FILE *b = open_memstream (&text, &len);

  if (b == NULL)
    abort ();

  header (b, "boxer_runs_total", "counter", "Runs that completed, by how the program ended.");
  for (int o = 0; o < BOXER_OUTCOME_COUNT; o++)
    fprintf (b, "boxer_runs_total{outcome=\"%s\"} %" PRIu64 "\n", outcome_names[o],
             m->runs[o]);
  header (b, "boxer_runs_failed_total", "counter",
          "Runs admitted that ended without a result (the sandbox failed).");
  fprintf (b, "boxer_runs_failed_total %" PRIu64 "\n", m->runs_failed);
  header (b, "boxer_run_errors_total", "counter",
          "POST /run answered with an error, by API error code.");
  for (size_t i = 0; i < BOXER_METRICS_MAX_CODES && m->errors[i].code[0]; i++)
    fprintf (b, "boxer_run_errors_total{code=\"%s\"} %" PRIu64 "\n", m->errors[i].code,
             m->errors[i].count);

  header (b, "boxer_run_phase_seconds", "histogram",
          "How long each phase of a run took: queue (for a slot), pull (finding or pulling the "
          "image), boot (a sandbox booted for a batch or a session, or a warm one taken; a cold "
          "run boots inside its run phase), setup, run (the program, and a cold run's boot), "
          "teardown.");
  for (int p = 0; p < BOXER_PHASE_COUNT; p++)
    {
      cleanup_free char *labels = xasprintf ("phase=\"%s\"", phase_names[p]);
      histogram_render (b, "boxer_run_phase_seconds", labels, &m->phases[p]);
    }

  header (b, "boxer_key_runs_total", "counter", "Runs admitted, by API key name.");
  for (size_t k = 0; k < m->cfg->n_api_keys; k++)
    fprintf (b, "boxer_key_runs_total{key=\"%s\"} %" PRIu64 "\n",
             m->cfg->api_keys[k].name, m->key_runs[k]);
  header (b, "boxer_key_refused_total", "counter",
          "Runs refused with 429, the API key at its max_concurrent_runs, by key name.");
  for (size_t k = 0; k < m->cfg->n_api_keys; k++)
    fprintf (b, "boxer_key_refused_total{key=\"%s\"} %" PRIu64 "\n",
             m->cfg->api_keys[k].name, m->key_refused[k]);
  header (b, "boxer_busy_refused_total", "counter",
          "Runs refused with 503 busy: the queue was full, or the run waited queue_timeout_secs.");
  fprintf (b, "boxer_busy_refused_total %" PRIu64 "\n", m->refused_busy);

  header (b, "boxer_http_responses_total", "counter", "HTTP answers of the workers, by status.");
  for (size_t i = 0; i < BOXER_METRICS_MAX_STATUSES && m->http[i].status; i++)
    fprintf (b, "boxer_http_responses_total{status=\"%d\"} %" PRIu64 "\n",
             m->http[i].status, m->http[i].count);
  header (b, "boxer_pulled_bytes_total", "counter",
          "Bytes received from registries, for runs and POST /images/pull.");
  fprintf (b, "boxer_pulled_bytes_total %" PRIu64 "\n", m->pulled_bytes);

  header (b, "boxer_sandboxes", "gauge", "Sandboxes alive: runs in progress.");
  fprintf (b, "boxer_sandboxes %" PRId64 "\n", now->running);
  header (b, "boxer_warm_runs_total", "counter", "Runs that took a warm sandbox (no boot).");
  fprintf (b, "boxer_warm_runs_total %" PRIu64 "\n", m->warm_runs);
  header (b, "boxer_warm_misses_total", "counter",
          "Runs of an image and network a pool warms that found no sandbox ready (cold).");
  fprintf (b, "boxer_warm_misses_total %" PRIu64 "\n", m->warm_misses);
  header (b, "boxer_warm_boot_seconds", "histogram",
          "How long the warm pool's sandboxes took to boot, off the request path.");
  histogram_render (b, "boxer_warm_boot_seconds", "", &m->warm_boots);
  header (b, "boxer_warm_sandboxes", "gauge", "Warm sandboxes booting or waiting for a run.");
  fprintf (b, "boxer_warm_sandboxes %" PRId64 "\n", now->warm_sandboxes);
  header (b, "boxer_warm_sandboxes_ready", "gauge", "Warm sandboxes waiting for a run.");
  fprintf (b, "boxer_warm_sandboxes_ready %" PRId64 "\n", now->warm_ready);
  header (b, "boxer_sessions", "gauge", "Sessions open (POST /sessions), each a sandbox kept.");
  fprintf (b, "boxer_sessions %" PRId64 "\n", now->sessions);
  header (b, "boxer_queued_runs", "gauge", "Runs waiting for a slot.");
  fprintf (b, "boxer_queued_runs %" PRId64 "\n", now->queued);
  header (b, "boxer_max_concurrent_runs", "gauge", "Runs at once, at most (the config).");
  fprintf (b, "boxer_max_concurrent_runs %" PRId64 "\n", now->max_running);
  header (b, "boxer_max_queued_runs", "gauge", "Runs waiting, at most (the config).");
  fprintf (b, "boxer_max_queued_runs %" PRId64 "\n", now->max_queued);
  header (b, "boxer_start_time_seconds", "gauge", "When the executor's server started.");
  fprintf (b, "boxer_start_time_seconds %lld\n", m->started_at);
  if (fclose (b) != 0)
    abort ();
  return text;
}
