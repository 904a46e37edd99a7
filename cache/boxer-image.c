/* boxer-image: manage the image store the server runs from.

     boxer-image [--config FILE] [--home DIR] load LAYOUT_DIR REFERENCE
     boxer-image [--config FILE] [--home DIR] pull REFERENCE
     boxer-image [--config FILE] [--home DIR] inspect REFERENCE
     boxer-image [--config FILE] [--home DIR] list
     boxer-image [--config FILE] [--home DIR] rm REFERENCE

   The store is <home>/images, with home taken from --home, else from the
   server's config (boxer_config_load ()), whose registry settings pulls
   use.  Errors go to stderr; exit 1 on
   failure, 2 on bad usage.  */
#include <config.h>

#include <getopt.h>
#include <json-c/json.h>

#include "cache/cache.h"
#include "common/config.h"
#include "common/json.h"
#include "common/layout.h"

#define EXIT_USAGE 2

static const char usage_text[] =
  "usage: boxer-image [--config FILE] [--home DIR] COMMAND [ARGS]\n"
  "\n"
  "commands:\n"
  "  load LAYOUT_DIR REFERENCE  import the image of an OCI image layout as REFERENCE\n"
  "  pull REFERENCE             pull REFERENCE from its registry (as POST /images/pull)\n"
  "  inspect REFERENCE          print the stored image as JSON\n"
  "  list                       print every reference with its digest and size\n"
  "  rm REFERENCE               forget REFERENCE (the image stays until collected)\n"
  "\n"
  "options:\n"
  "  --config FILE  server config to take 'home' from (default: as the server)\n"
  "  --home DIR     the server's home directory; the store is DIR/images\n";

static int
usage (const char *msg)
{
  if (msg)
    fprintf (stderr, "boxer-image: %s\n", msg);
  fputs (usage_text, stderr);
  return EXIT_USAGE;
}

static int
fail (struct boxer_error *err)
{
  fprintf (stderr, "boxer-image: %s\n", err ? err->msg : "unknown error");
  boxer_error_free (err);
  return EXIT_FAILURE;
}

static void
print_image (const struct boxer_image *image)
{
  json_object *o = json_object_new_object ();

  json_object_object_add (o, "reference", boxer_json_string_or_null (image->reference));
  json_object_object_add (o, "digest", boxer_json_string_or_null (image->digest));
  json_object_object_add (o, "rootfs", boxer_json_string_or_null (image->rootfs));
  json_object_object_add (o, "env", boxer_json_strv (image->env));
  json_object_object_add (o, "entrypoint", boxer_json_strv (image->entrypoint));
  json_object_object_add (o, "cmd", boxer_json_strv (image->cmd));
  json_object_object_add (o, "workdir", boxer_json_string_or_null (image->workdir));
  json_object_object_add (o, "user", boxer_json_string_or_null (image->user));
  json_object_object_add (o, "size", json_object_new_int64 (image->size));
  puts (json_object_to_json_string_ext (o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
                                               | JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put (o);
}

static int
cmd_load (struct boxer_cache *cache, char **args, int n)
{
  cleanup_image struct boxer_image *image = NULL;
  struct boxer_error *err = NULL;

  if (n != 2)
    return usage ("load takes LAYOUT_DIR and REFERENCE");
  if (boxer_cache_load_oci_layout (cache, args[0], args[1], &image, &err) < 0)
    return fail (err);
  printf ("%s %s\n", image->reference, image->digest);
  return EXIT_SUCCESS;
}

static int
cmd_pull (struct boxer_cache *cache, char **args, int n)
{
  cleanup_image struct boxer_image *image = NULL;
  struct boxer_error *err = NULL;

  if (n != 1)
    return usage ("pull takes REFERENCE");
  if (boxer_cache_pull (cache, args[0], false, &image, &err) < 0)
    return fail (err);
  printf ("%s %s\n", image->reference, image->digest);
  return EXIT_SUCCESS;
}

static int
cmd_inspect (struct boxer_cache *cache, char **args, int n)
{
  cleanup_image struct boxer_image *image = NULL;
  struct boxer_error *err = NULL;

  if (n != 1)
    return usage ("inspect takes REFERENCE");
  if (boxer_cache_lookup (cache, args[0], &image, &err) < 0)
    return fail (err);
  print_image (image);
  return EXIT_SUCCESS;
}

static int
cmd_list (struct boxer_cache *cache, char **args, int n)
{
  struct boxer_image **images = NULL;
  struct boxer_error *err = NULL;
  size_t count = 0;

  if (n != 0)
    return usage ("list takes no arguments");
  if (boxer_cache_list (cache, &images, &count, &err) < 0)
    return fail (err);
  for (size_t i = 0; i < count; i++)
    {
      printf ("%s %s %lld\n", images[i]->reference, images[i]->digest,
              (long long) images[i]->size);
      boxer_image_free (images[i]);
    }
  free (images);
  return EXIT_SUCCESS;
}

static int
cmd_rm (struct boxer_cache *cache, char **args, int n)
{
  struct boxer_error *err = NULL;

  if (n != 1)
    return usage ("rm takes REFERENCE");
  if (boxer_cache_remove (cache, args[0], &err) < 0)
    return fail (err);
  return EXIT_SUCCESS;
}

static const struct
{
  const char *name;
  int (*run) (struct boxer_cache *cache, char **args, int n);
} commands[] = {
  { "load", cmd_load },
  { "pull", cmd_pull },
  { "inspect", cmd_inspect },
  { "list", cmd_list },
  { "rm", cmd_rm },
  { NULL, NULL },
};

/* The server's config, with home replaced by --home if given.  */
static int
load_config (const char *home_opt, const char *config_path, struct boxer_config *cfg)
{
  struct boxer_error *err = NULL;

  if (boxer_config_load (cfg, config_path, NULL, &err) < 0)
    {
      boxer_config_release (cfg);
      return fail (err);
    }
  if (home_opt)
    {
      free (cfg->home);
      cfg->home = xstrdup (home_opt);
    }
  return 0;
}

int
main (int argc, char **argv)
{
  static const struct option options[] = {
    { "config", required_argument, NULL, 'c' },
    { "home", required_argument, NULL, 'H' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *home_opt = NULL, *config_path = NULL;
  struct boxer_config cfg;
  struct boxer_cache *cache = NULL;
  struct boxer_error *err = NULL;
  size_t c;
  int opt, status;

  while ((opt = getopt_long (argc, argv, "+h", options, NULL)) != -1)
    switch (opt)
      {
      case 'c':
        config_path = optarg;
        break;
      case 'H':
        home_opt = optarg;
        break;
      case 'h':
        fputs (usage_text, stdout);
        return EXIT_SUCCESS;
      default:
        return usage (NULL);
      }
  if (optind >= argc)
    return usage ("no command given");
  for (c = 0; commands[c].name; c++)
    if (strcmp (commands[c].name, argv[optind]) == 0)
      break;
  if (commands[c].name == NULL)
    return usage ("unknown command");

  if ((status = load_config (home_opt, config_path, &cfg)) != 0)
    return status;
  /* The store is the workers': written as their user, so that they can
     update and collect what the operator loads, and never unpacked as
     root.  */
  if (cfg.worker_user && geteuid () == 0
      && (boxer_layout_prepare (&cfg, &err) < 0 || boxer_layout_drop_to_worker (&cfg, &err) < 0))
    {
      boxer_config_release (&cfg);
      return fail (err);
    }
  if (boxer_cache_open (&cache, cfg.home, &err) < 0
      || boxer_cache_configure (cache, &cfg, &err) < 0)
    {
      boxer_cache_free (cache);
      boxer_config_release (&cfg);
      return fail (err);
    }
  status = commands[c].run (cache, argv + optind + 1, argc - optind - 1);
  boxer_cache_free (cache);
  boxer_config_release (&cfg);
  if (fflush (stdout) != 0)
    {
      fprintf (stderr, "boxer-image: write output: %s\n", strerror (errno));
      return EXIT_FAILURE;
    }
  return status;
}
