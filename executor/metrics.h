/* What GET /metrics shows, in Prometheus' text format (version 0.0.4).

   The executor's serving loop owns every counter: run children tell it how
   their run ended over a pipe (one small fixed-size record each, written
   at once, so records never interleave), and workers report each HTTP
   answer in a "report" frame they do not wait on.  One process, one
   thread, no locks: nothing on a run's path waits for the metrics.  A
   restarted executor starts from zero, which Prometheus reads as a counter
   reset.  Pure: unit-tested in tests/unit/check_metrics.c.  */
#ifndef BOXER_EXECUTOR_METRICS_H
#define BOXER_EXECUTOR_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "executor.h"

/* The phases of a run whose durations are histograms.  */
enum boxer_phase
{
  BOXER_PHASE_QUEUE,            /* waiting for a slot in the executor */
  BOXER_PHASE_PULL,             /* the worker finding (and pulling) the image */
  BOXER_PHASE_BOOT,             /* a sandbox booted on the run's path, or a warm one taken */
  BOXER_PHASE_SETUP,            /* bundle, files, cgroup, network, config.json */
  BOXER_PHASE_RUN,              /* runsc run: the sandbox's boot and the program */
  BOXER_PHASE_TEARDOWN,         /* sandbox, cgroup, network and bundle removed */
  BOXER_PHASE_COUNT,
};

/* How a run that completed ended.  */
enum boxer_outcome
{
  BOXER_OUTCOME_OK,             /* exit status 0 */
  BOXER_OUTCOME_EXIT_NONZERO,   /* another exit status, or a signal */
  BOXER_OUTCOME_TIMEOUT,
  BOXER_OUTCOME_OOM,
  BOXER_OUTCOME_COUNT,
};

enum boxer_outcome boxer_run_outcome (const struct boxer_run_result *res);

/* What a report counts.  Zero is a failure, so that a report a child
   fills in no further than its pid says the run did not end well.  */
enum boxer_report_kind
{
  BOXER_REPORT_FAILED,          /* the run failed to start or finish */
  BOXER_REPORT_RUN,             /* a run ended: outcome is set */
  BOXER_REPORT_TIMINGS,         /* nothing ended: only the phases' times (a batch's end) */
};

/* What a run child sends its parent as each run is over, before it
   answers the worker: fixed size, well under PIPE_BUF, so one write () is
   one record.  A batch sends one per run, then a last one.  Times of -1
   were not observed: a cold run's boot is inside its run phase (runsc
   run), and a batch's runs have no setup or teardown of their own.  */
struct boxer_run_report
{
  int32_t pid;                  /* the run child's */
  int32_t more;                 /* 0: the child's last report, its slot is free from now */
  int32_t kind;                 /* enum boxer_report_kind */
  int32_t outcome;              /* enum boxer_outcome */
  int32_t boot_ms, setup_ms, run_ms, teardown_ms;
};

#define BOXER_METRICS_MAX_STATUSES 32
#define BOXER_METRICS_MAX_CODES 32

struct boxer_metrics
{
  long long started_at;         /* unix seconds */
  uint64_t runs[BOXER_OUTCOME_COUNT];
  uint64_t runs_failed;         /* admitted, but no result (runtime or internal errors) */
  struct boxer_histogram
  {
    uint64_t *buckets;          /* cumulative counts, one per bound, then +Inf */
    uint64_t count;
    double sum;                 /* seconds */
  } phases[BOXER_PHASE_COUNT];
  /* By API key, in the config's order: runs admitted, runs refused with 429.  */
  const struct boxer_config *cfg;
  uint64_t *key_runs, *key_refused;
  uint64_t refused_busy;        /* 503 busy from the executor: queue full or timed out */
  struct
  {
    int status;
    uint64_t count;
  } http[BOXER_METRICS_MAX_STATUSES];
  struct
  {
    char code[32];
    uint64_t count;
  } errors[BOXER_METRICS_MAX_CODES];  /* POST /run answered with an error, by code */
  uint64_t pulled_bytes;
  uint64_t warm_runs;           /* runs handed a warm sandbox */
  uint64_t warm_misses;         /* runs a pool warms that found none ready */
  struct boxer_histogram warm_boots;  /* the pool's boots, off the request path */
};

/* The gauges, read at the moment of the scrape.  */
struct boxer_metrics_now
{
  int64_t running;              /* sandboxes alive */
  int64_t queued;
  int64_t max_running;
  int64_t max_queued;
  int64_t warm_sandboxes;       /* warm sandboxes booting or waiting */
  int64_t warm_ready;           /* of them, waiting */
  int64_t sessions;             /* sessions open */
};

void boxer_metrics_init (struct boxer_metrics *m, const struct boxer_config *cfg);
void boxer_metrics_release (struct boxer_metrics *m);

void boxer_metrics_observe (struct boxer_metrics *m, enum boxer_phase phase, int64_t ms);
/* A warm sandbox of the pool became ready, ms after its boot began.  */
void boxer_metrics_warm_boot (struct boxer_metrics *m, int64_t ms);
/* Send a report to the loop: one write () under PIPE_BUF, whole or not at
   all.  */
void boxer_run_report_send (int fd, const struct boxer_run_report *r);
/* A run child's report (checked: nonsense is dropped).  */
void boxer_metrics_run_report (struct boxer_metrics *m, const struct boxer_run_report *r);
/* A worker's report of one HTTP answer: status, and for POST /run the
   API error code (NULL: none), the milliseconds the image took (-1: no
   run got that far) and the bytes pulled from registries for it.  */
void boxer_metrics_http (struct boxer_metrics *m, int status, const char *run_error,
                         int64_t pull_ms, int64_t pulled_bytes);

/* The text of GET /metrics; caller frees.  */
char *boxer_metrics_render (const struct boxer_metrics *m, const struct boxer_metrics_now *now);

#endif
