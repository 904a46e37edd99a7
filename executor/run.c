/* The run request and result types: kept apart from the executor so the
   request parser (and its fuzz target) can use them without runsc.  */
#include <config.h>

#include "executor.h"

#include "common/paths.h"

void
boxer_run_request_release (struct boxer_run_request *req)
{
  free (req->image);
  boxer_strv_free (req->cmd);
  boxer_strv_free (req->env);
  free (req->workdir);
  free (req->stdin_data);
  for (size_t i = 0; i < req->nfiles; i++)
    {
      free (req->files[i].id);
      free (req->files[i].path);
    }
  free (req->files);
  memset (req, 0, sizeof *req);
}

void
boxer_run_result_release (struct boxer_run_result *res)
{
  free (res->image);
  free (res->image_digest);
  free (res->stdout_data);
  free (res->stderr_data);
  for (size_t i = 0; i < res->noutputs; i++)
    free (res->outputs[i].path);
  free (res->outputs);
  memset (res, 0, sizeof *res);
}

void
boxer_batch_request_release (struct boxer_batch_request *b)
{
  boxer_run_request_release (&b->req);
  for (size_t i = 0; i < b->nruns; i++)
    boxer_run_request_release (&b->runs[i]);
  free (b->runs);
  memset (b, 0, sizeof *b);
}

bool
boxer_batch_path_is_private (const char *path)
{
  static const char *const dirs[] = { "/tmp", "/var/tmp", "/dev/shm", "/output" };

  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
    if (boxer_paths_is_under (path, dirs[i]))
      return true;
  return false;
}
