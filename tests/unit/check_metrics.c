/* Unit tests for executor/metrics.c: what is counted, and the text
   format (promtool checks the real scrape in tests/integration).  */
#include <config.h>

#include <check.h>
#include <stdlib.h>

#include "executor/metrics.h"

static struct boxer_config cfg;

static bool
has_line (const char *text, const char *line)
{
  cleanup_free char *want = xasprintf ("\n%s\n", line);
  return strstr (text, want) != NULL;
}

START_TEST (test_counts_and_text)
{
  const char *doc = "{\"api_keys\": [{\"name\": \"team-a\", \"sha256\": "
                    "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"}]}";
  struct boxer_metrics m;
  struct boxer_metrics_now now = { .running = 2, .queued = 1, .max_running = 4, .max_queued = 8 };
  /* A cold run: its boot is inside its run.  */
  struct boxer_run_report ok = { .kind = BOXER_REPORT_RUN, .outcome = BOXER_OUTCOME_OK,
                                 .boot_ms = -1, .setup_ms = 3, .run_ms = 120, .teardown_ms = 40 };
  /* A warm run: handed its sandbox in no time.  */
  struct boxer_run_report oom = { .kind = BOXER_REPORT_RUN, .outcome = BOXER_OUTCOME_OOM,
                                  .boot_ms = 0, .run_ms = 2000 };
  /* A batch's end: its sandbox's boot, no run of its own.  */
  struct boxer_run_report batch_end = { .kind = BOXER_REPORT_TIMINGS, .boot_ms = 300,
                                        .setup_ms = -1, .run_ms = -1, .teardown_ms = -1 };
  struct boxer_run_report failed = { .kind = BOXER_REPORT_FAILED, .boot_ms = 5 };
  struct boxer_run_report nonsense = { .kind = BOXER_REPORT_RUN, .outcome = 99, .run_ms = 1 };
  struct boxer_run_report unknown = { .kind = 7, .boot_ms = 1, .run_ms = 1 };
  cleanup_free char *text = NULL;

  boxer_config_init_defaults (&cfg);
  ck_assert_int_eq (boxer_config_parse (&cfg, doc, strlen (doc), NULL), 0);
  boxer_metrics_init (&m, &cfg);
  boxer_metrics_run_report (&m, &ok);
  boxer_metrics_run_report (&m, &ok);
  boxer_metrics_run_report (&m, &oom);
  boxer_metrics_run_report (&m, &batch_end);
  boxer_metrics_run_report (&m, &failed);
  boxer_metrics_run_report (&m, &nonsense);
  boxer_metrics_run_report (&m, &unknown);
  boxer_metrics_warm_boot (&m, 450);
  boxer_metrics_warm_boot (&m, -1);                       /* dropped */
  boxer_metrics_observe (&m, BOXER_PHASE_QUEUE, 0);
  boxer_metrics_observe (&m, BOXER_PHASE_QUEUE, -5);      /* dropped */
  boxer_metrics_http (&m, 200, NULL, 7, 1000);
  boxer_metrics_http (&m, 200, NULL, -1, 0);
  boxer_metrics_http (&m, 503, "busy", -1, 0);
  boxer_metrics_http (&m, 400, "invalid_request", -1, 0);
  boxer_metrics_http (&m, 400, "Not A Code\"}", -1, 0);  /* no label of it */
  boxer_metrics_http (&m, 42, NULL, -1, 0);               /* no status */
  m.key_runs[0] = 3;
  m.warm_misses = 2;
  m.key_refused[0] = 1;
  text = boxer_metrics_render (&m, &now);

  ck_assert (has_line (text, "boxer_runs_total{outcome=\"ok\"} 2"));
  ck_assert (has_line (text, "boxer_runs_total{outcome=\"oom\"} 1"));
  ck_assert (has_line (text, "boxer_runs_total{outcome=\"timeout\"} 0"));
  ck_assert (has_line (text, "boxer_runs_total{outcome=\"exit_nonzero\"} 0"));
  ck_assert (has_line (text, "boxer_runs_failed_total 1"));
  ck_assert (has_line (text, "# TYPE boxer_run_phase_seconds histogram"));
  /* Cumulative buckets: 120 ms is in 0.25 and above, not in 0.1.  */
  ck_assert (has_line (text, "boxer_run_phase_seconds_bucket{phase=\"run\",le=\"0.1\"} 0"));
  ck_assert (has_line (text, "boxer_run_phase_seconds_bucket{phase=\"run\",le=\"0.25\"} 2"));
  ck_assert (has_line (text, "boxer_run_phase_seconds_bucket{phase=\"run\",le=\"2.5\"} 3"));
  ck_assert (has_line (text, "boxer_run_phase_seconds_bucket{phase=\"run\",le=\"+Inf\"} 3"));
  ck_assert (has_line (text, "boxer_run_phase_seconds_sum{phase=\"run\"} 2.240000"));
  ck_assert (has_line (text, "boxer_run_phase_seconds_count{phase=\"run\"} 3"));
  ck_assert (has_line (text, "boxer_run_phase_seconds_count{phase=\"queue\"} 1"));
  ck_assert (has_line (text, "boxer_run_phase_seconds_bucket{phase=\"queue\",le=\"0.001\"} 1"));
  ck_assert (has_line (text, "boxer_run_phase_seconds_count{phase=\"pull\"} 1"));
  ck_assert (has_line (text, "boxer_run_phase_seconds_count{phase=\"teardown\"} 3"));
  ck_assert (has_line (text, "boxer_run_phase_seconds_count{phase=\"boot\"} 2"));
  ck_assert (has_line (text, "boxer_run_phase_seconds_bucket{phase=\"boot\",le=\"0.001\"} 1"));
  ck_assert (has_line (text, "boxer_run_phase_seconds_sum{phase=\"boot\"} 0.300000"));
  ck_assert (has_line (text, "# TYPE boxer_warm_boot_seconds histogram"));
  ck_assert (has_line (text, "boxer_warm_boot_seconds_bucket{le=\"0.25\"} 0"));
  ck_assert (has_line (text, "boxer_warm_boot_seconds_bucket{le=\"0.5\"} 1"));
  ck_assert (has_line (text, "boxer_warm_boot_seconds_bucket{le=\"+Inf\"} 1"));
  ck_assert (has_line (text, "boxer_warm_boot_seconds_sum 0.450000"));
  ck_assert (has_line (text, "boxer_warm_boot_seconds_count 1"));
  ck_assert (has_line (text, "boxer_warm_misses_total 2"));
  ck_assert (has_line (text, "boxer_http_responses_total{status=\"200\"} 2"));
  ck_assert (has_line (text, "boxer_http_responses_total{status=\"400\"} 2"));
  ck_assert (has_line (text, "boxer_http_responses_total{status=\"503\"} 1"));
  ck_assert (strstr (text, "status=\"42\"") == NULL);
  ck_assert (has_line (text, "boxer_run_errors_total{code=\"busy\"} 1"));
  ck_assert (has_line (text, "boxer_run_errors_total{code=\"invalid_request\"} 1"));
  ck_assert (strstr (text, "Not A Code") == NULL);
  ck_assert (has_line (text, "boxer_pulled_bytes_total 1000"));
  ck_assert (has_line (text, "boxer_key_runs_total{key=\"team-a\"} 3"));
  ck_assert (has_line (text, "boxer_key_refused_total{key=\"team-a\"} 1"));
  ck_assert (has_line (text, "boxer_sandboxes 2"));
  ck_assert (has_line (text, "boxer_queued_runs 1"));
  ck_assert (has_line (text, "boxer_max_concurrent_runs 4"));
  ck_assert (has_line (text, "boxer_max_queued_runs 8"));
  /* Every metric has its HELP and TYPE, and the text ends with a newline.  */
  ck_assert (has_line (text, "# TYPE boxer_runs_total counter"));
  ck_assert (has_line (text, "# TYPE boxer_sandboxes gauge"));
  ck_assert (text[strlen (text) - 1] == '\n');
  boxer_metrics_release (&m);
  boxer_config_release (&cfg);
}
END_TEST

/* More distinct statuses and codes than there is room for: the rest are
   dropped, nothing overflows.  */
START_TEST (test_bounded)
{
  struct boxer_metrics m;
  struct boxer_metrics_now now = { 0 };
  cleanup_free char *text = NULL;

  boxer_config_init_defaults (&cfg);
  boxer_metrics_init (&m, &cfg);
  for (int s = 100; s < 600; s++)
    boxer_metrics_http (&m, s, NULL, -1, 0);
  for (int i = 0; i < 100; i++)
    {
      char code[8] = "code_";
      code[5] = (char) ('a' + i % 26);
      code[6] = (char) ('a' + i / 26);
      boxer_metrics_http (&m, 400, code, -1, 0);
    }
  text = boxer_metrics_render (&m, &now);
  ck_assert (has_line (text, "boxer_http_responses_total{status=\"100\"} 1"));
  ck_assert (strstr (text, "status=\"599\"") == NULL);
  ck_assert (strstr (text, "code=\"code_aa\"") != NULL);
  ck_assert (strstr (text, "code=\"code_zc\"") == NULL);
  boxer_metrics_release (&m);
  boxer_config_release (&cfg);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("metrics");
  TCase *tc = tcase_create ("core");
  SRunner *sr;
  int failed;

  tcase_add_test (tc, test_counts_and_text);
  tcase_add_test (tc, test_bounded);
  suite_add_tcase (s, tc);
  sr = srunner_create (s);
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
