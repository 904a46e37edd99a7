/* libFuzzer target: the POST /run JSON parser.
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
  return 0;
}
