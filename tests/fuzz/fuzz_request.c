/* libFuzzer target: the POST /run and POST /batch JSON parsers.
   fuzz-sources: fcgi/request.c executor/run.c  */
#include <config.h>

#include <stdint.h>

#include "fcgi/request.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static struct boxer_config cfg;
  static int ready;
  struct boxer_run_request req;
  struct boxer_batch_request batch;
  struct boxer_error *err = NULL;

  if (!ready)
    {
      boxer_config_init_defaults (&cfg);
      ready = 1;
    }
  if (boxer_request_parse_run (&cfg, NULL, (const char *) data, size, &req, &err) == 0)
    boxer_run_request_release (&req);
  else if (err == NULL || err->msg == NULL)
    __builtin_trap ();            /* a failure must always say why */
  boxer_error_free (err);
  err = NULL;
  if (boxer_request_parse_batch (&cfg, NULL, (const char *) data, size, &batch, &err) == 0)
    {
      /* What passes is what the executor will take.  */
      if (batch.nruns < 1 || batch.nruns > (size_t) cfg.max_batch_runs || batch.parallelism < 1
          || batch.parallelism > BOXER_BATCH_MAX_PARALLELISM
          || batch.req.network != BOXER_NETWORK_NONE)
        __builtin_trap ();
      for (size_t i = 0; i < batch.nruns; i++)
        for (size_t k = 0; k < batch.runs[i].nfiles; k++)
          if (boxer_batch_path_is_private (batch.runs[i].files[k].path))
            __builtin_trap ();
      boxer_batch_request_release (&batch);
    }
  else if (err == NULL || err->msg == NULL)
    __builtin_trap ();
  boxer_error_free (err);
  return 0;
}
