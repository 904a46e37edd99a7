#include <config.h>

#include "utf8.h"

#include <stdbool.h>

#include "util.h"

/* The length of the sequence lead byte c begins, and the range of its
   second byte; 0 if c begins none (RFC 3629, Table 3-7 of the Unicode
   standard).  */
static size_t
seq_shape (unsigned char c, unsigned char *lo, unsigned char *hi)
{
  *lo = 0x80;
  *hi = 0xbf;
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    return 2;
  if (c >= 0xe0 && c <= 0xef)
    {
      if (c == 0xe0)
        *lo = 0xa0;      /* no overlong forms */
      else if (c == 0xed)
        *hi = 0x9f;      /* no surrogates */
      return 3;
    }
  if (c >= 0xf0 && c <= 0xf4)
    {
      if (c == 0xf0)
        *lo = 0x90;
      else if (c == 0xf4)
        *hi = 0x8f;      /* nothing above U+10FFFF */
      return 4;
    }
  return 0;
}

/* Whether the avail (< the sequence's length) bytes after s's lead byte
   are how a valid sequence goes on.  */
static bool
valid_start (const unsigned char *s, size_t avail, unsigned char lo, unsigned char hi)
{
  if (avail > 1 && (s[1] < lo || s[1] > hi))
    return false;
  for (size_t i = 2; i < avail; i++)
    if (s[i] < 0x80 || s[i] > 0xbf)
      return false;
  return true;
}

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one.  */
static size_t
valid_seq (const unsigned char *s, size_t avail)
{
  unsigned char lo, hi;
  size_t n = seq_shape (s[0], &lo, &hi);

  if (n == 0 || avail < n || !valid_start (s, n, lo, hi))
    return 0;
  return n;
}

size_t
boxer_utf8_incomplete_tail (const char *data, size_t len)
{
  const unsigned char *s = (const unsigned char *) data;

  for (size_t k = 1; k <= 3 && k <= len; k++)
    {
      unsigned char lo, hi;
      const unsigned char *start = s + len - k;
      size_t n;

      if (*start >= 0x80 && *start <= 0xbf)
        continue;       /* a continuation byte: look further back */
      n = seq_shape (*start, &lo, &hi);
      return n > k && valid_start (start, k, lo, hi) ? k : 0;
    }
  return 0;
}

char *
boxer_utf8_sanitize (const char *data, size_t len, size_t *len_out)
{
  const unsigned char *s = (const unsigned char *) data;
  /* Worst case every byte becomes the three bytes of U+FFFD.  */
  char *out = xmalloc (len * 3 + 1);
  size_t o = 0;

  for (size_t i = 0; i < len;)
    {
      size_t n = valid_seq (s + i, len - i);
      if (n == 0)
        {
          memcpy (out + o, "\xef\xbf\xbd", 3);
          o += 3;
          i++;
          continue;
        }
      memcpy (out + o, s + i, n);
      o += n;
      i += n;
    }
  out[o] = '\0';
  if (len_out)
    *len_out = o;
  return out;
}
