/* GET /images, POST /images/pull, DELETE /images/{reference}: the image
   store seen through the API.  Pulls go through cache/, which answers
   404 image_not_found for what a registry does not have and 502
   registry_error for registries that are unreachable or broken.  */
#include <config.h>

#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>

#include "auth.h"
#include "cache/registry.h"
#include "handlers.h"
#include "response.h"

/* {"image": "<reference>"}: a reference is at most 512 bytes (API.md), so this
   leaves room for white space and escapes, and no more.  */
#define PULL_BODY_MAX 8192
#define IMAGE_MAX_BYTES 512

static json_object *
image_entry (const struct boxer_image *image)
{
  json_object *o = json_object_new_object ();
  char when[32];

  boxer_format_time (when, image->last_used);
  json_object_object_add (o, "reference", json_object_new_string (image->reference));
  json_object_object_add (o, "digest", json_object_new_string (image->digest));
  json_object_object_add (o, "size", json_object_new_int64 (image->size));
  json_object_object_add (o, "last_used", json_object_new_string (when));
  return o;
}

int
boxer_handle_images_list (struct boxer_server *srv, struct boxer_http *http,
                          struct boxer_error **err)
{
  struct boxer_image **images = NULL;
  json_object *body, *list;
  size_t n = 0;

  if (boxer_cache_list (srv->cache, &images, &n, err) < 0)
    return -1;
  list = json_object_new_array ();
  for (size_t i = 0; i < n; i++)
    {
      json_object_array_add (list, image_entry (images[i]));
      boxer_image_free (images[i]);
    }
  free (images);
  body = json_object_new_object ();
  json_object_object_add (body, "images", list);
  boxer_reply_json (http->fcgi, 200, body, NULL);
  json_object_put (body);
  http->status = 200;
  return 0;
}

static int
parse_fields (json_object *root, char **image_out, struct boxer_error **err)
{
  json_object *image = NULL;
  bool found = false;

  json_object_object_foreach (root, key, val)
    {
      cleanup_free char *q = NULL;
      if (strcmp (key, "image") == 0)
        {
          image = val;          /* NULL for null */
          found = true;
          continue;
        }
      q = boxer_quote_str (key);
      return boxer_error_make (err, BOXER_ERR_INVALID,
                               "unknown field '%s'; POST /images/pull takes only 'image'", q);
    }
  if (!found)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "'image' is missing; send {\"image\": \"<reference>\"}");
  if (image == NULL || !json_object_is_type (image, json_type_string) || json_object_get_string_len (image) == 0)
    return boxer_error_make (err, BOXER_ERR_INVALID, "'image' must be a non-empty string");
  if ((size_t) json_object_get_string_len (image) > IMAGE_MAX_BYTES
      || strlen (json_object_get_string (image)) != (size_t) json_object_get_string_len (image))
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "'image' must be an image reference of at most %d bytes without "
                             "NUL bytes",
                             IMAGE_MAX_BYTES);
  *image_out = xstrdup (json_object_get_string (image));
  return 0;
}

int
boxer_images_parse_pull (const char *body, size_t len, char **image_out,
                         struct boxer_error **err)
{
  json_tokener *tok;
  json_object *root;
  enum json_tokener_error jerr;
  size_t end = 0;
  int r;

  if (len == 0 || len > INT_MAX)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "request body is empty; send {\"image\": \"<reference>\"}");
  tok = json_tokener_new_ex (4);
  if (tok == NULL)
    abort ();
  json_tokener_set_flags (tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
  root = json_tokener_parse_ex (tok, body, (int) len);
  jerr = json_tokener_get_error (tok);
  if (root && jerr == json_tokener_success)
    end = json_tokener_get_parse_end (tok);
  json_tokener_free (tok);
  if (root == NULL || jerr != json_tokener_success)
    {
      json_object_put (root);
      return boxer_error_make (err, BOXER_ERR_INVALID, "request body is not valid JSON: %s",
                               json_tokener_error_desc (jerr == json_tokener_continue
                                                          ? json_tokener_error_parse_eof
                                                          : jerr));
    }
  for (; end < len; end++)
    if (!strchr (" \t\r\n", body[end]) || body[end] == '\0')
      {
        json_object_put (root);
        return boxer_error_make (err, BOXER_ERR_INVALID,
                                 "request body is not valid JSON: unexpected data after the "
                                 "object");
      }
  if (!json_object_is_type (root, json_type_object))
    r = boxer_error_make (err, BOXER_ERR_INVALID,
                          "request body must be a JSON object: {\"image\": \"<reference>\"}");
  else
    r = parse_fields (root, image_out, err);
  json_object_put (root);
  return r;
}

int
boxer_handle_images_pull (struct boxer_server *srv, struct boxer_http *http,
                          struct boxer_error **err)
{
  cleanup_free char *body = NULL;
  cleanup_free char *reference = NULL;
  cleanup_image struct boxer_image *image = NULL;
  json_object *reply;
  size_t len;

  if (boxer_auth_check_images (http, "pull", err) < 0)
    return -1;
  if (!boxer_http_content_type_is (http, "application/json"))
    return boxer_error_make (err, BOXER_ERR_UNSUPPORTED_MEDIA,
                             "POST /images/pull takes a JSON body; send Content-Type: "
                             "application/json");
  if (boxer_http_read_body (http, PULL_BODY_MAX, &body, &len, err) < 0
      || boxer_images_parse_pull (body, len, &reference, err) < 0)
    return -1;
  {
    uint64_t bytes0 = boxer_registry_bytes_received ();
    int r = boxer_cache_pull (srv->cache, reference, true, &image, err);
    http->pulled_bytes = (int64_t) (boxer_registry_bytes_received () - bytes0);
    if (r < 0)
      return -1;
  }
  reply = image_entry (image);
  boxer_reply_json (http->fcgi, 200, reply, NULL);
  json_object_put (reply);
  http->status = 200;
  return 0;
}

int
boxer_handle_images_delete (struct boxer_server *srv, struct boxer_http *http,
                            struct boxer_error **err)
{
  if (boxer_auth_check_images (http, "delete", err) < 0)
    return -1;
  if (boxer_cache_remove (srv->cache, http->params[0], err) < 0)
    return -1;
  boxer_reply_empty (http->fcgi, 204);
  http->status = 204;
  return 0;
}
