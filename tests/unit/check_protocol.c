/* Unit tests for executor/protocol.c: frames over a real socketpair (with
   a passed descriptor), the messages' round trips, and what the executor
   refuses of a hostile worker.  */
#include <config.h>

#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "executor/protocol.h"

static struct boxer_config cfg;

static void
setup (void)
{
  boxer_config_init_defaults (&cfg);
}

static void
teardown (void)
{
  boxer_config_release (&cfg);
}

static void
pair (int sv[2])
{
  ck_assert_int_eq (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* Write raw bytes as a peer would, then close our end.  */
static void
raw (int fd, const void *data, size_t len)
{
  ck_assert_int_eq (write (fd, data, len), (ssize_t) len);
}

static struct boxer_error *
recv_error (int fd, size_t max)
{
  struct boxer_error *err = NULL;
  json_object *msg = NULL;
  int passed = -1;

  ck_assert_int_lt (boxer_proto_recv (fd, max, 1000, &msg, &passed, &err), 0);
  ck_assert_ptr_null (msg);
  ck_assert_int_eq (passed, -1);
  ck_assert_ptr_nonnull (err);
  return err;
}

START_TEST (test_frame_round_trip_with_fd)
{
  cleanup_error struct boxer_error *err = NULL;
  int sv[2], passed = -1;
  json_object *msg = boxer_proto_open ("run", "team-a"), *got = NULL;
  const char *type, *key;
  struct stat a, b;

  pair (sv);
  ck_assert_int_eq (boxer_proto_send (sv[0], msg, STDERR_FILENO, &err), 0);
  json_object_put (msg);
  ck_assert_int_eq (boxer_proto_recv (sv[1], BOXER_PROTO_OPEN_MAX, 1000, &got, &passed, &err), 0);
  ck_assert_int_eq (boxer_proto_decode_open (got, &type, &key, &err), 0);
  ck_assert_str_eq (type, "run");
  ck_assert_str_eq (key, "team-a");
  ck_assert_int_ge (passed, 0);
  ck_assert_int_eq (fstat (passed, &a), 0);
  ck_assert_int_eq (fstat (STDERR_FILENO, &b), 0);
  ck_assert (a.st_ino == b.st_ino && a.st_dev == b.st_dev);
  ck_assert (fcntl (passed, F_GETFD) & FD_CLOEXEC);
  close (passed);
  json_object_put (got);
  close (sv[0]);
  close (sv[1]);
}
END_TEST

START_TEST (test_frame_bounds)
{
  static const unsigned char too_big[] = { 0, 0, 0x04, 0x01 };   /* 1025 > OPEN_MAX */
  static const unsigned char zero[] = { 0, 0, 0, 0 };
  static const unsigned char huge[] = { 0xff, 0xff, 0xff, 0xff };
  struct
  {
    const void *data;
    size_t len;
    const char *want;
  } cases[] = {
    { too_big, sizeof too_big, "a frame of 1025 bytes" },
    { zero, sizeof zero, "a frame of 0 bytes" },
    { huge, sizeof huge, "a frame of 4294967295 bytes" },
    { "\0\0\0\5[1,2]", 9, "not a JSON object" },
    { "\0\0\0\3{}x", 7, "not one JSON value" },
    { "\0\0\0\1{", 5, "not one JSON value" },
    { "\0\0\0\x10{\"a\":", 9, "closed the connection in the middle of a frame" },
    { "\0\0", 2, "closed the connection in the middle of a frame" },
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      cleanup_error struct boxer_error *err = NULL;
      int sv[2];

      pair (sv);
      raw (sv[0], cases[i].data, cases[i].len);
      close (sv[0]);
      err = recv_error (sv[1], BOXER_PROTO_OPEN_MAX);
      ck_assert_msg (strstr (err->msg, cases[i].want), "case %zu: '%s'", i, err->msg);
      ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
      close (sv[1]);
    }
}
END_TEST

START_TEST (test_frame_eof_and_silence)
{
  cleanup_error struct boxer_error *err = NULL;
  int sv[2];

  /* EOF before a frame: the peer went away, which is no protocol error.  */
  pair (sv);
  close (sv[0]);
  err = recv_error (sv[1], 64);
  ck_assert_int_eq (err->category, BOXER_ERR_RUNTIME);
  close (sv[1]);
  boxer_error_release (&err);

  /* Half a frame and then nothing: the timeout ends the wait.  */
  pair (sv);
  raw (sv[0], "\0\0\0\x10{", 5);
  err = recv_error (sv[1], 64);
  ck_assert_msg (strstr (err->msg, "did not come in"), "%s", err->msg);
  close (sv[0]);
  close (sv[1]);
}
END_TEST

/* A worker passing many descriptors cannot leave them in the executor.  */
START_TEST (test_frame_extra_fds)
{
  cleanup_error struct boxer_error *err = NULL;
  int sv[2], fds[3] = { 0, 1, 2 }, before, after;
  union
  {
    struct cmsghdr align;
    char buf[CMSG_SPACE (sizeof fds)];
  } ctl = { 0 };
  char frame[] = "\0\0\0\2{}";
  struct iovec iov = { frame, 6 };
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                       .msg_controllen = sizeof ctl.buf };
  struct cmsghdr *c = CMSG_FIRSTHDR (&mh);

  pair (sv);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN (sizeof fds);
  memcpy (CMSG_DATA (c), fds, sizeof fds);
  ck_assert_int_eq (sendmsg (sv[0], &mh, 0), 6);
  before = open ("/dev/null", O_RDONLY);
  close (before);
  err = recv_error (sv[1], 64);
  ck_assert_msg (strstr (err->msg, "more than one file descriptor"), "%s", err->msg);
  after = open ("/dev/null", O_RDONLY);
  /* Every received descriptor was closed: the next one is the same.  */
  ck_assert_int_eq (after, before);
  close (after);
  close (sv[0]);
  close (sv[1]);
}
END_TEST

static json_object *
good_run (void)
{
  char *cmd[] = { (char *) "python3", (char *) "-c", (char *) "print(1)", NULL };
  char *env[] = { (char *) "A=1", NULL };
  char *ienv[] = { (char *) "PATH=/usr/bin", NULL };
  struct boxer_run_file files[] = { { (char *) "f_0123456789abcdef0123456789abcdef",
                                      (char *) "/work/a.py" } };
  struct boxer_run_request req = {
    .image = (char *) "python:3.12",
    .cmd = cmd,
    .env = env,
    .workdir = (char *) "/work",
    .stdin_data = (char *) "in\0put",
    .stdin_len = 6,
    .limits = cfg.defaults,
    .network = BOXER_NETWORK_SANDBOX,
    .files = files,
    .nfiles = 1,
  };
  struct boxer_image image = {
    .digest = (char *) "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    .env = ienv,
  };
  return boxer_proto_encode_run ("r_0123456789abcdef0123456789abcdef", &req, &image, false);
}

START_TEST (test_run_round_trip)
{
  cleanup_error struct boxer_error *err = NULL;
  json_object *msg = good_run ();
  struct boxer_proto_run run;

  ck_assert_msg (boxer_proto_decode_run (msg, &cfg, &run, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_str_eq (run.id, "r_0123456789abcdef0123456789abcdef");
  ck_assert_str_eq (run.req.image, "python:3.12");
  ck_assert_str_eq (run.req.cmd[2], "print(1)");
  ck_assert_ptr_null (run.req.cmd[3]);
  ck_assert_str_eq (run.req.env[0], "A=1");
  ck_assert_str_eq (run.req.workdir, "/work");
  ck_assert_uint_eq (run.req.stdin_len, 6);
  ck_assert (memcmp (run.req.stdin_data, "in\0put", 6) == 0);
  ck_assert_int_eq (run.req.limits.memory_mb, cfg.defaults.memory_mb);
  ck_assert_int_eq (run.req.network, BOXER_NETWORK_SANDBOX);
  ck_assert_uint_eq (run.req.nfiles, 1);
  ck_assert_str_eq (run.req.files[0].path, "/work/a.py");
  ck_assert_str_eq (run.image.env[0], "PATH=/usr/bin");
  ck_assert_ptr_null (run.image.entrypoint);
  ck_assert_ptr_null (run.image.cmd);
  boxer_proto_run_release (&run);
  json_object_put (msg);
}
END_TEST

/* Each case changes one field of a good run message to what a hostile
   worker might send; the executor must refuse it.  */
START_TEST (test_run_stream_flag)
{
  cleanup_error struct boxer_error *err = NULL;
  json_object *msg = good_run ();
  struct boxer_proto_run run;

  /* Absent: not streamed.  */
  ck_assert_int_eq (boxer_proto_decode_run (msg, &cfg, &run, &err), 0);
  ck_assert (!run.stream);
  boxer_proto_run_release (&run);
  json_object_object_add (msg, "stream", json_object_new_boolean (true));
  ck_assert_int_eq (boxer_proto_decode_run (msg, &cfg, &run, &err), 0);
  ck_assert (run.stream);
  boxer_proto_run_release (&run);
  json_object_object_add (msg, "stream", json_object_new_string ("yes"));
  ck_assert_int_eq (boxer_proto_decode_run (msg, &cfg, &run, &err), -1);
  ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
  boxer_proto_run_release (&run);
  json_object_put (msg);
}
END_TEST

START_TEST (test_output_frames)
{
  cleanup_error struct boxer_error *err = NULL;
  json_object *msg = boxer_proto_encode_output (-1, 1, "a\0\377b", 4);
  char *data;
  size_t len;
  long index;
  int stream;

  ck_assert_str_eq (boxer_proto_type (msg), "output");
  ck_assert_int_eq (boxer_proto_decode_output (msg, &cfg, &index, &stream, &data, &len, &err), 0);
  ck_assert_int_eq (index, -1);
  ck_assert_int_eq (stream, 1);
  ck_assert_uint_eq (len, 4);
  ck_assert (memcmp (data, "a\0\377b", 4) == 0);
  free (data);
  json_object_put (msg);

  msg = boxer_proto_encode_started ();
  ck_assert_str_eq (boxer_proto_type (msg), "started");
  json_object_put (msg);

  /* From the executor, but checked all the same: an unknown stream, and
     more than a result may hold.  */
  /* A batch's run.  */
  msg = boxer_proto_encode_output (7, 0, "x", 1);
  ck_assert_int_eq (boxer_proto_decode_output (msg, &cfg, &index, &stream, &data, &len, &err), 0);
  ck_assert_int_eq (index, 7);
  ck_assert_int_eq (stream, 0);
  free (data);
  json_object_object_add (msg, "index", json_object_new_int64 (cfg.max_batch_runs));
  ck_assert_int_eq (boxer_proto_decode_output (msg, &cfg, &index, &stream, &data, &len, &err), -1);
  ck_assert_ptr_null (data);
  boxer_error_release (&err);
  json_object_put (msg);

  msg = boxer_proto_encode_output (-1, 0, "x", 1);
  json_object_object_add (msg, "stream", json_object_new_string ("stdin"));
  ck_assert_int_eq (boxer_proto_decode_output (msg, &cfg, &index, &stream, &data, &len, &err), -1);
  ck_assert_ptr_null (data);
  boxer_error_release (&err);
  json_object_put (msg);
  {
    struct boxer_config small = cfg;
    small.output_limit_bytes = 2;
    msg = boxer_proto_encode_output (-1, 0, "xyz", 3);
    ck_assert_int_eq (boxer_proto_decode_output (msg, &small, &index, &stream, &data, &len, &err),
                      -1);
    ck_assert_ptr_null (data);
    boxer_error_release (&err);
    json_object_put (msg);
  }
}
END_TEST

/* A reader that takes nothing cannot hold a writer past its deadline.  */
START_TEST (test_send_until_gives_up)
{
  cleanup_error struct boxer_error *err = NULL;
  int sv[2];
  char big[256 * 1024];
  json_object *msg;
  long long t0;
  int r;

  ck_assert_int_eq (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  memset (big, 'a', sizeof big);
  msg = boxer_proto_encode_output (-1, 0, big, sizeof big);
  t0 = boxer_now_ms ();
  r = boxer_proto_send_until (sv[0], msg, -1, t0 + 300, &err);
  ck_assert_int_eq (r, -1);
  ck_assert_int_eq (err->category, BOXER_ERR_RUNTIME);
  ck_assert_int_ge (boxer_now_ms () - t0, 300);
  ck_assert_int_lt (boxer_now_ms () - t0, 5000);
  json_object_put (msg);
  close (sv[0]);
  close (sv[1]);
}
END_TEST

START_TEST (test_run_hostile)
{
  struct
  {
    const char *path;   /* "request.limits" style: the object and key */
    const char *json;   /* the new value; NULL removes the key */
  } cases[] = {
    { "id", "\"r_../../etc\"" },
    { "id", "\"r_0123456789ABCDEF0123456789abcdef\"" },
    { "id", "7" },
    { "image.digest", "\"sha256:../../../../etc\"" },
    { "image.digest", "\"sha512:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"" },
    { "image.digest", NULL },
    { "image.env", "[\"A\\u0000B=1\"]" },
    { "image", "[]" },
    { "request.limits.memory_mb", "1048576" },
    { "request.limits.memory_mb", "1" },
    { "request.limits.wall_clock_secs", "100000" },
    { "request.limits.pids_limit", "-1" },
    { "request.limits.cpu_cores", "1e308" },
    { "request.limits.cpu_cores", "\"1\"" },
    { "request.limits.nofile", NULL },
    { "request.network", "\"host\"" },
    { "request.network", "\"bridge\"" },
    { "request.cmd", "[]" },
    { "request.cmd", "[\"\"]" },
    { "request.cmd", "[\"a\\u0000b\"]" },
    { "request.cmd", "[1]" },
    { "request.env", "[\"=x\"]" },
    { "request.env", "[\"K\"]" },
    { "request.workdir", "\"relative\"" },
    { "request.stdin", "\"not base64!\"" },
    { "request.stdin", "\"QQ=A\"" },
    { "request.files", "[{\"id\": \"f_x\", \"path\": \"/a\"}]" },
    { "request.files", "[{\"id\": \"f_0123456789abcdef0123456789abcdef\", \"path\": \"a\"}]" },
    { "request.files", "[{\"id\": \"f_0123456789abcdef0123456789abcdef\", \"path\": \"/a/../b\"}]" },
    { "request.files", "[{\"id\": \"f_0123456789abcdef0123456789abcdef\", \"path\": \"/a\"},"
                       " {\"id\": \"f_0123456789abcdef0123456789abcdef\", \"path\": \"/a\"}]" },
    { "request", NULL },
    { "type", "\"result\"" },
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      cleanup_error struct boxer_error *err = NULL;
      json_object *msg = good_run (), *obj = msg;
      cleanup_free char *path = xstrdup (cases[i].path);
      char *key = path, *dot;
      struct boxer_proto_run run;

      while ((dot = strchr (key, '.')) != NULL)
        {
          *dot = '\0';
          ck_assert (json_object_object_get_ex (obj, key, &obj));
          key = dot + 1;
        }
      if (cases[i].json)
        json_object_object_add (obj, key, json_tokener_parse (cases[i].json));
      else
        json_object_object_del (obj, key);
      ck_assert_msg (boxer_proto_decode_run (msg, &cfg, &run, &err) < 0, "case %zu (%s) accepted",
                     i, cases[i].path);
      ck_assert_msg (err->category == BOXER_ERR_INVALID || err->category == BOXER_ERR_FORBIDDEN
                       || err->category == BOXER_ERR_INTERNAL,
                     "case %zu: category %d", i, err->category);
      boxer_proto_run_release (&run);
      json_object_put (msg);
    }
}
END_TEST

START_TEST (test_stdin_over_the_upload_limit)
{
  cleanup_error struct boxer_error *err = NULL;
  json_object *msg = good_run ();
  struct boxer_proto_run run;

  cfg.upload_limit_bytes = 5;   /* the good run's stdin is 6 bytes */
  ck_assert_int_lt (boxer_proto_decode_run (msg, &cfg, &run, &err), 0);
  ck_assert_msg (strstr (err->msg, "stdin"), "%s", err->msg);
  boxer_proto_run_release (&run);
  json_object_put (msg);
}
END_TEST

START_TEST (test_result_round_trip)
{
  cleanup_error struct boxer_error *err = NULL;
  struct boxer_run_output outs[] = { { (char *) "a/b.txt", 3 } };
  struct boxer_run_result res = {
    .id = "r_0123456789abcdef0123456789abcdef",
    .exit_code = 137,
    .signal = 9,
    .timed_out = true,
    .stdout_data = (char *) "\xff\x00out",
    .stdout_len = 5,
    .stderr_data = (char *) "",
    .wall_ms = 1234,
    .memory_peak_bytes = -1,
    .started_at = 100,
    .finished_at = 101,
    .outputs = outs,
    .noutputs = 1,
    .outputs_truncated = true,
  };
  json_object *msg = boxer_proto_encode_result (&res);
  struct boxer_run_result got;

  ck_assert_msg (boxer_proto_decode_result (msg, &cfg, &got, &err) == 0, "%s",
                 err ? err->msg : "");
  ck_assert_int_eq (got.exit_code, 137);
  ck_assert_int_eq (got.signal, 9);
  ck_assert (got.timed_out && !got.oom_killed);
  ck_assert_uint_eq (got.stdout_len, 5);
  ck_assert (memcmp (got.stdout_data, "\xff\x00out", 5) == 0);
  ck_assert_uint_eq (got.stderr_len, 0);
  ck_assert_int_eq (got.memory_peak_bytes, -1);
  ck_assert_uint_eq (got.noutputs, 1);
  ck_assert_str_eq (got.outputs[0].path, "a/b.txt");
  ck_assert (got.outputs_truncated);
  boxer_run_result_release (&got);
  json_object_put (msg);
}
END_TEST

START_TEST (test_error_round_trip)
{
  cleanup_error struct boxer_error *err = NULL;
  struct boxer_error busy = { .category = BOXER_ERR_BUSY, .msg = (char *) "4 runs are running" };
  json_object *msg = boxer_proto_error (&busy);

  ck_assert_int_lt (boxer_proto_expect (msg, "admitted", &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_BUSY);
  ck_assert_str_eq (err->msg, "4 runs are running");
  json_object_put (msg);
  boxer_error_release (&err);

  /* An unknown category is an internal error, never a client's.  */
  msg = json_tokener_parse ("{\"type\": \"error\", \"category\": \"nope\", \"message\": \"m\"}");
  ck_assert_int_lt (boxer_proto_expect (msg, "result", &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_INTERNAL);
  json_object_put (msg);
}
END_TEST

START_TEST (test_open_hostile)
{
  const char *cases[] = {
    "{\"type\": \"run\"}",
    "{\"type\": \"run\", \"version\": 2}",
    "{\"type\": \"shell\", \"version\": 1}",
    "{\"type\": 1, \"version\": 1}",
    "{\"version\": 1}",
    "{\"type\": \"run\", \"version\": 1, \"key\": 7}",
    "{\"type\": \"run\", \"version\": 1, \"key\": \"a\\u0000b\"}",
    "{\"type\": \"run\", \"version\": 1, \"key\": "
    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      cleanup_error struct boxer_error *err = NULL;
      json_object *msg = json_tokener_parse (cases[i]);
      const char *type = NULL, *key = NULL;

      ck_assert_msg (boxer_proto_decode_open (msg, &type, &key, &err) < 0, "'%s' accepted", cases[i]);
      ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
      json_object_put (msg);
    }
}
END_TEST

/* A run's open frame names its image for the warm pool: checked, and
   absent from an older worker.  */
START_TEST (test_run_hint)
{
  const char *digest = "sha256:" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  const char *bad[] = {
    "{\"digest\": \"sha256:12\"}",
    "{\"digest\": 5}",
    "{\"image\": [\"x\"]}",
    "{\"image\": \"a\\u0000b\"}",
    "{\"network\": true}",
    "{\"network\": \"bridge\"}",
    "{\"network\": \"\"}",
  };
  const char *image, *d;
  int network;
  json_object *msg = boxer_proto_open_run ("k", "localhost:5000/a/b:1", digest,
                                           BOXER_NETWORK_SANDBOX);

  ck_assert_int_eq (boxer_proto_decode_run_hint (msg, &image, &d, &network, NULL), 0);
  ck_assert_str_eq (image, "localhost:5000/a/b:1");
  ck_assert_str_eq (d, digest);
  ck_assert_int_eq (network, BOXER_NETWORK_SANDBOX);
  json_object_put (msg);
  msg = boxer_proto_open_run ("k", "localhost:5000/a/b:1", digest, BOXER_NETWORK_NONE);
  ck_assert_int_eq (boxer_proto_decode_run_hint (msg, &image, &d, &network, NULL), 0);
  ck_assert_int_eq (network, BOXER_NETWORK_NONE);
  json_object_put (msg);
  msg = boxer_proto_open ("run", NULL);
  ck_assert_int_eq (boxer_proto_decode_run_hint (msg, &image, &d, &network, NULL), 0);
  ck_assert_ptr_null (image);
  ck_assert_ptr_null (d);
  ck_assert_int_eq (network, -1);
  json_object_put (msg);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      cleanup_error struct boxer_error *err = NULL;
      msg = json_tokener_parse (bad[i]);
      ck_assert_msg (boxer_proto_decode_run_hint (msg, &image, &d, &network, &err) < 0,
                     "'%s' accepted", bad[i]);
      ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
      json_object_put (msg);
    }
}
END_TEST

START_TEST (test_hello_warm_pool)
{
  struct boxer_proto_hello h = { .runsc_version = (char *) "v", .platform = (char *) "systrap",
                                 .cgroup = (char *) "v2" }, back;
  json_object *msg = boxer_proto_encode_hello (&h);
  json_object *pool = json_tokener_parse (
    "[{\"image\": \"python:3\", \"network\": \"none\", \"size\": 2, \"ready\": 1}]");

  /* Without a pool, none; with one, each entry.  */
  ck_assert_int_eq (boxer_proto_decode_hello (msg, &back, NULL), 0);
  ck_assert_uint_eq (back.n_warm_pool, 0);
  boxer_proto_hello_release (&back);
  json_object_object_add (msg, "warm_pool", pool);
  ck_assert_int_eq (boxer_proto_decode_hello (msg, &back, NULL), 0);
  ck_assert_uint_eq (back.n_warm_pool, 1);
  ck_assert_str_eq (back.warm_pool[0].image, "python:3");
  ck_assert_int_eq (back.warm_pool[0].size, 2);
  ck_assert_int_eq (back.warm_pool[0].ready, 1);
  boxer_proto_hello_release (&back);
  {
    cleanup_error struct boxer_error *err = NULL;
    json_object_object_add (msg, "warm_pool", json_tokener_parse (
      "[{\"image\": \"python:3\", \"network\": \"none\", \"size\": 2, \"ready\": 99}]"));
    ck_assert_int_eq (boxer_proto_decode_hello (msg, &back, &err), -1);
    ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
  }
  json_object_put (msg);
}
END_TEST

START_TEST (test_report_and_metrics)
{
  cleanup_error struct boxer_error *err = NULL;
  struct boxer_proto_report rep = { .status = 503, .run_error = "busy", .pull_ms = 12,
                                    .pulled_bytes = 4096 }, back;
  json_object *msg = boxer_proto_encode_report (&rep);
  const char *type, *key, *text;
  static const char *const hostile[] = {
    "{\"type\": \"report\", \"version\": 1}",
    "{\"type\": \"report\", \"version\": 1, \"status\": 99, \"pull_ms\": 0, "
    "\"pulled_bytes\": 0}",
    "{\"type\": \"report\", \"version\": 1, \"status\": 200, \"pull_ms\": -2, "
    "\"pulled_bytes\": 0}",
    "{\"type\": \"report\", \"version\": 1, \"status\": 200, \"pull_ms\": 0, "
    "\"pulled_bytes\": -1}",
    "{\"type\": \"report\", \"version\": 1, \"status\": 200, \"pull_ms\": 0, "
    "\"pulled_bytes\": 0, \"run_error\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
    "{\"type\": \"report\", \"version\": 1, \"status\": \"200\", \"pull_ms\": 0, "
    "\"pulled_bytes\": 0}",
  };

  /* The report is its own open frame.  */
  ck_assert_int_eq (boxer_proto_decode_open (msg, &type, &key, &err), 0);
  ck_assert_str_eq (type, "report");
  ck_assert_ptr_null (key);
  ck_assert_int_eq (boxer_proto_decode_report (msg, &back, &err), 0);
  ck_assert_int_eq (back.status, 503);
  ck_assert_str_eq (back.run_error, "busy");
  ck_assert_int_eq (back.pull_ms, 12);
  ck_assert_int_eq (back.pulled_bytes, 4096);
  json_object_put (msg);
  for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++)
    {
      json_object *h = json_tokener_parse (hostile[i]);
      ck_assert_ptr_nonnull (h);
      ck_assert_msg (boxer_proto_decode_report (h, &back, &err) < 0, "'%s' accepted", hostile[i]);
      ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
      boxer_error_release (&err);
      json_object_put (h);
    }

  msg = boxer_proto_open ("metrics", NULL);
  ck_assert_int_eq (boxer_proto_decode_open (msg, &type, &key, &err), 0);
  ck_assert_str_eq (type, "metrics");
  json_object_put (msg);
  msg = boxer_proto_encode_metrics ("# TYPE x counter\nx 1\n");
  ck_assert_int_eq (boxer_proto_decode_metrics (msg, &text, &err), 0);
  ck_assert_str_eq (text, "# TYPE x counter\nx 1\n");
  json_object_put (msg);
}
END_TEST

/* A session's description crosses from its keeper to the worker whole,
   its network too.  */
START_TEST (test_session_info)
{
  struct boxer_session_info in = {
    .id = "s_0123456789abcdef0123456789abcdef", .image = (char *) "localhost:5000/a/b:1",
    .digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    .network = BOXER_NETWORK_SANDBOX, .limits = cfg.defaults, .idle_timeout_secs = 60,
    .ttl_secs = 600, .created_at = 1, .last_used_at = 2, .execs = 3,
  };
  struct boxer_session_info out;
  json_object *msg = boxer_proto_encode_session_info (&in);

  ck_assert_int_eq (boxer_proto_decode_session_info (msg, &cfg, &out, NULL), 0);
  ck_assert_int_eq (out.network, BOXER_NETWORK_SANDBOX);
  ck_assert_str_eq (out.image, in.image);
  ck_assert_int_eq (out.execs, 3);
  boxer_session_info_release (&out);
  json_object_object_add (msg, "network", json_object_new_string ("bridge"));
  {
    cleanup_error struct boxer_error *err = NULL;
    ck_assert_int_eq (boxer_proto_decode_session_info (msg, &cfg, &out, &err), -1);
    ck_assert_ptr_null (out.image);
  }
  json_object_put (msg);
}
END_TEST

static Suite *
protocol_suite (void)
{
  Suite *s = suite_create ("protocol");
  TCase *tc = tcase_create ("check");

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_frame_round_trip_with_fd);
  tcase_add_test (tc, test_frame_bounds);
  tcase_add_test (tc, test_frame_eof_and_silence);
  tcase_add_test (tc, test_frame_extra_fds);
  tcase_add_test (tc, test_run_round_trip);
  tcase_add_test (tc, test_run_stream_flag);
  tcase_add_test (tc, test_output_frames);
  tcase_add_test (tc, test_send_until_gives_up);
  tcase_add_test (tc, test_run_hostile);
  tcase_add_test (tc, test_stdin_over_the_upload_limit);
  tcase_add_test (tc, test_result_round_trip);
  tcase_add_test (tc, test_error_round_trip);
  tcase_add_test (tc, test_open_hostile);
  tcase_add_test (tc, test_run_hint);
  tcase_add_test (tc, test_hello_warm_pool);
  tcase_add_test (tc, test_report_and_metrics);
  tcase_add_test (tc, test_session_info);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  SRunner *sr = srunner_create (protocol_suite ());
  int failed;

  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
