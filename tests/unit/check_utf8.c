/* Unit tests for common/utf8.c: making process output valid UTF-8.  */
#include <config.h>

#include <check.h>
#include <stdlib.h>

#include "common/utf8.h"
#include "common/util.h"

#define FFFD "\xef\xbf\xbd"

/* Sanitize in (in_len bytes) and compare with want (want_len bytes).  */
static void
expect_len (const char *in, size_t in_len, const char *want, size_t want_len)
{
  size_t len = 12345;
  cleanup_free char *out = boxer_utf8_sanitize (in, in_len, &len);

  ck_assert_ptr_nonnull (out);
  ck_assert_uint_eq (len, want_len);
  ck_assert_mem_eq (out, want, want_len);
  ck_assert_int_eq (out[len], '\0');
}

static void
expect (const char *in, const char *want)
{
  expect_len (in, strlen (in), want, strlen (want));
}

static void
expect_unchanged (const char *in)
{
  expect (in, in);
}

START_TEST (test_ascii)
{
  expect_unchanged ("");
  expect_unchanged ("hello, world\n");
  expect_unchanged ("\t\r\n\x01\x1f\x7f ~");
}
END_TEST

START_TEST (test_valid_multibyte)
{
  expect_unchanged ("\xc2\x80");                 /* U+0080, smallest 2-byte */
  expect_unchanged ("caf\xc3\xa9");              /* é */
  expect_unchanged ("\xdf\xbf");                 /* U+07FF */
  expect_unchanged ("\xe0\xa0\x80");             /* U+0800, smallest 3-byte */
  expect_unchanged ("\xe2\x82\xac");             /* € */
  expect_unchanged ("\xed\x9f\xbf");             /* U+D7FF, just below the surrogates */
  expect_unchanged ("\xee\x80\x80");             /* U+E000, just above them */
  expect_unchanged ("\xef\xbf\xbd");             /* U+FFFD itself */
  expect_unchanged ("\xef\xbf\xbf");             /* U+FFFF */
  expect_unchanged ("\xf0\x90\x80\x80");         /* U+10000, smallest 4-byte */
  expect_unchanged ("\xf0\x9d\x84\x9e");         /* 𝄞 */
  expect_unchanged ("\xf4\x8f\xbf\xbf");         /* U+10FFFF, the largest */
  expect_unchanged ("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
}
END_TEST

START_TEST (test_invalid_continuation)
{
  expect ("a\xc3(b", "a" FFFD "(b");
  expect ("\xe2\x28\xa1", FFFD "(" FFFD);
  expect ("\xe2\x82\x28", FFFD FFFD "(");
  expect ("\xf0\x9d\x84\x28", FFFD FFFD FFFD "(");
  /* Lone continuation bytes.  */
  expect ("\x80", FFFD);
  expect ("\xbf\x80", FFFD FFFD);
  /* A lead byte followed by another lead byte.  */
  expect ("\xc3\xc3\xa9", FFFD "\xc3\xa9");
}
END_TEST

START_TEST (test_overlong)
{
  expect ("\xc0\x80", FFFD FFFD);                /* NUL as two bytes */
  expect ("\xc1\xbf", FFFD FFFD);
  expect ("\xe0\x80\x80", FFFD FFFD FFFD);       /* NUL as three bytes */
  expect ("\xe0\x9f\xbf", FFFD FFFD FFFD);       /* U+07FF as three bytes */
  expect ("\xf0\x80\x80\x80", FFFD FFFD FFFD FFFD);
  expect ("\xf0\x8f\xbf\xbf", FFFD FFFD FFFD FFFD);
  expect ("a\xc0\xafz", "a" FFFD FFFD "z");     /* the classic overlong '/' */
}
END_TEST

START_TEST (test_surrogates)
{
  expect ("\xed\xa0\x80", FFFD FFFD FFFD);       /* U+D800 */
  expect ("\xed\xbf\xbf", FFFD FFFD FFFD);       /* U+DFFF */
  expect ("\xed\xa0\xbd\xed\xb8\x80", FFFD FFFD FFFD FFFD FFFD FFFD);  /* CESU-8 pair */
}
END_TEST

START_TEST (test_above_max)
{
  expect ("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD);      /* U+110000 */
  expect ("\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD);
  expect ("\xf7\xbf\xbf\xbf", FFFD FFFD FFFD FFFD);
  expect ("\xf8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD);
  expect ("\xfe\xff", FFFD FFFD);
}
END_TEST

START_TEST (test_truncated_at_end)
{
  /* Each byte of a cut-off sequence becomes its own U+FFFD.  */
  expect ("ab\xc3", "ab" FFFD);
  expect ("ab\xe2\x82", "ab" FFFD FFFD);
  expect ("ab\xf0\x9d\x84", "ab" FFFD FFFD FFFD);
  expect ("\xf0", FFFD);
}
END_TEST

START_TEST (test_nul_kept)
{
  expect_len ("a\0b", 3, "a\0b", 3);
  expect_len ("\0", 1, "\0", 1);
  expect_len ("\0\xff\0", 3, "\0" FFFD "\0", 5);
}
END_TEST

START_TEST (test_mixed)
{
  expect ("ok \xe2\x82\xac \xff \xed\xa0\x80 caf\xc3\xa9 \xc0\x80 \xf0\x9f\x98\x80 end\xe2",
          "ok \xe2\x82\xac " FFFD " " FFFD FFFD FFFD " caf\xc3\xa9 " FFFD FFFD
          " \xf0\x9f\x98\x80 end" FFFD);
}
END_TEST

START_TEST (test_len_out_optional)
{
  cleanup_free char *out = boxer_utf8_sanitize ("a\xff", 2, NULL);

  ck_assert_str_eq (out, "a" FFFD);
}
END_TEST

/* Whatever goes in, the output is valid UTF-8: sanitizing it again changes
   nothing.  */
START_TEST (test_random_idempotent)
{
  unsigned int seed = 12345;
  char in[257];

  for (int round = 0; round < 2000; round++)
    {
      size_t n = (size_t) (rand_r (&seed) % 256);
      size_t len1, len2;
      cleanup_free char *once = NULL;
      cleanup_free char *twice = NULL;

      for (size_t i = 0; i < n; i++)
        {
          /* Bias towards the interesting high bytes.  */
          int r = rand_r (&seed);
          in[i] = (char) (r % 3 ? 0x80 + (r >> 4) % 0x80 : (r >> 4) % 0x100);
        }
      once = boxer_utf8_sanitize (in, n, &len1);
      twice = boxer_utf8_sanitize (once, len1, &len2);
      ck_assert_uint_eq (len1, len2);
      ck_assert_mem_eq (once, twice, len1);
      ck_assert_uint_le (len1, n * 3);
    }
}
END_TEST

START_TEST (test_incomplete_tail)
{
  ck_assert_uint_eq (boxer_utf8_incomplete_tail ("", 0), 0);
  ck_assert_uint_eq (boxer_utf8_incomplete_tail ("abc", 3), 0);
  ck_assert_uint_eq (boxer_utf8_incomplete_tail ("a\xc3", 2), 1);
  ck_assert_uint_eq (boxer_utf8_incomplete_tail ("a\xc3\xa9", 3), 0);
  ck_assert_uint_eq (boxer_utf8_incomplete_tail ("a\xe2\x82", 3), 2);
  ck_assert_uint_eq (boxer_utf8_incomplete_tail ("\xe2\x82\xac", 3), 0);
  ck_assert_uint_eq (boxer_utf8_incomplete_tail ("\xf0\x9f\x98", 3), 3);
  ck_assert_uint_eq (boxer_utf8_incomplete_tail ("\xf0\x9f\x98\x80", 4), 0);
  /* Beginnings no more bytes can make valid: sanitized at once.  */
  ck_assert_uint_eq (boxer_utf8_incomplete_tail ("\xed\xa0", 2), 0);   /* a surrogate */
  ck_assert_uint_eq (boxer_utf8_incomplete_tail ("\xe0\x80", 2), 0);   /* overlong */
  ck_assert_uint_eq (boxer_utf8_incomplete_tail ("\xf4\x90", 2), 0);   /* past U+10FFFF */
  ck_assert_uint_eq (boxer_utf8_incomplete_tail ("\xf5", 1), 0);
  ck_assert_uint_eq (boxer_utf8_incomplete_tail ("\x80\x80\x80", 3), 0);
  ck_assert_uint_eq (boxer_utf8_incomplete_tail ("\xe2\xc3", 2), 1);
}
END_TEST

/* Output sanitized piece by piece, each piece's incomplete tail carried to
   the next, reads exactly as the whole output sanitized at once, wherever
   it was cut.  */
START_TEST (test_pieces_read_as_whole)
{
  unsigned int seed = 54321;
  unsigned char in[64];

  for (int round = 0; round < 3000; round++)
    {
      size_t n = (size_t) (rand_r (&seed) % sizeof in);
      size_t whole_len;
      cleanup_free char *whole = NULL;
      char streamed[sizeof in * 3 + 1];
      char carry[sizeof in + 4];
      size_t slen = 0, clen = 0, pos = 0;

      for (size_t i = 0; i < n; i++)
        {
          int r = rand_r (&seed);
          in[i] = (unsigned char) (r % 3 ? 0x80 + (r >> 4) % 0x80 : (r >> 4) % 0x100);
        }
      whole = boxer_utf8_sanitize ((const char *) in, n, &whole_len);
      while (pos < n || clen > 0)
        {
          size_t take = pos < n ? 1 + (size_t) rand_r (&seed) % (n - pos) : 0;
          size_t keep, out_len;
          cleanup_free char *out = NULL;

          memcpy (carry + clen, in + pos, take);
          clen += take;
          pos += take;
          /* At the end nothing more comes: the tail is sanitized too.  */
          keep = pos < n ? boxer_utf8_incomplete_tail (carry, clen) : 0;
          out = boxer_utf8_sanitize (carry, clen - keep, &out_len);
          memcpy (streamed + slen, out, out_len);
          slen += out_len;
          memmove (carry, carry + clen - keep, keep);
          clen = keep;
        }
      ck_assert_uint_eq (slen, whole_len);
      ck_assert_mem_eq (streamed, whole, slen);
    }
}
END_TEST

static Suite *
utf8_suite (void)
{
  Suite *s = suite_create ("utf8");
  TCase *tc = tcase_create ("sanitize");

  tcase_add_test (tc, test_ascii);
  tcase_add_test (tc, test_valid_multibyte);
  tcase_add_test (tc, test_invalid_continuation);
  tcase_add_test (tc, test_overlong);
  tcase_add_test (tc, test_surrogates);
  tcase_add_test (tc, test_above_max);
  tcase_add_test (tc, test_truncated_at_end);
  tcase_add_test (tc, test_nul_kept);
  tcase_add_test (tc, test_mixed);
  tcase_add_test (tc, test_len_out_optional);
  tcase_add_test (tc, test_random_idempotent);
  tcase_add_test (tc, test_incomplete_tail);
  tcase_add_test (tc, test_pieces_read_as_whole);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  SRunner *sr = srunner_create (utf8_suite ());
  int failed;

  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
