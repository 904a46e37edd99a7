#!/usr/bin/env python3
"""Render Boxer's nginx templates from a Boxer config file.

    render-config.py site       [--config FILE] --socket SOCK [--listen ADDR] [-o FILE]
                                [--share-dir DIR] [--swagger-ui DIR]
                                [--tls-cert FILE --tls-key FILE]
    render-config.py standalone [--config FILE] --socket SOCK --prefix DIR
                                [--listen ADDR] [--daemon on|off]
                                [--share-dir DIR] [--swagger-ui DIR]
                                [--tls-cert FILE --tls-key FILE]
    render-config.py values     [--config FILE] [--listen ADDR] [--tls-cert FILE]

site prints the server block (contrib/nginx/boxer.conf.in) for a distro
nginx. standalone writes DIR/nginx.conf and DIR/boxer-site.conf for an nginx
that lives entirely in DIR (contrib/nginx/nginx-standalone.conf.in) and then
prints the values below. values prints KEY=VALUE lines for scripts:

    listen        nginx's listen parameter
    url           base URL to reach it from this host, e.g. http://127.0.0.1:8080
                  (https:// with --tls-cert)
    body_max      client_max_body_size in bytes
    read_timeout  fastcgi_read_timeout in seconds
    stop_grace    seconds a stopping pool may take to finish its runs

With --tls-cert and --tls-key (PEM files nginx reads at start-up), nginx
terminates TLS on the listen address (TLS 1.2 and 1.3 only) and passes the
Authorization header, which carries API keys, through to Boxer.

nginx serves GET /openapi.yaml and /swagger/ itself, from static files:
--share-dir is where `make install` put openapi.yaml and swagger/index.html
($(datadir)/boxer, e.g. /usr/local/share/boxer); without it, this
checkout's openapi.yaml and contrib/swagger/index.html. --swagger-ui is the
directory contrib/swagger-ui.sh prints, by default
${BOXER_CACHE:-/var/cache/boxer}/npm/node_modules/swagger-ui-dist.

Only three fields of the config are read, with the server's defaults when
absent: listen_addr (":8080"), upload_limit_bytes (10485760) and
max_limits.wall_clock_secs (600). The file is otherwise boxer-fcgi's to
check. Python's standard library only.
"""

import argparse
import json
import os
import pwd
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKOUT = os.path.dirname(HERE)
SITE_TEMPLATE = os.path.join(HERE, "nginx", "boxer.conf.in")
STANDALONE_TEMPLATE = os.path.join(HERE, "nginx", "nginx-standalone.conf.in")

DEFAULTS = {"listen_addr": ":8080", "upload_limit_bytes": 10485760, "wall_clock_secs": 600}

# Room above upload_limit_bytes for multipart framing and the JSON request
# part, so that Boxer, not nginx, judges an upload and answers with its 413.
BODY_MARGIN = 1 << 20
# fastcgi_read_timeout beyond the longest run: an image pull on first use.
TIMEOUT_MARGIN = 300
# boxer-fcgi lets workers finish a run for wall_clock_secs + 10 after
# SIGTERM; a supervisor should wait a little longer than that.
STOP_MARGIN = 15


class Error(Exception):
    pass


def nginx_user_line():
    """As root, nginx's workers run as Debian's www-data (who alone may
    reach the FastCGI socket, contrib/pool.sh), never as root; elsewhere
    they keep the caller's user."""
    if os.geteuid() != 0:
        return ""
    try:
        pwd.getpwnam("www-data")
        return "user www-data www-data;"
    except KeyError:
        return "user root;"


def load_config(path):
    values = dict(DEFAULTS)
    if path is None:
        return values
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise Error("cannot read config '%s': %s" % (path, e))
    if not isinstance(doc, dict):
        raise Error("config '%s': not a JSON object" % path)

    def integer(value, name):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise Error("config '%s': %s must be a positive integer" % (path, name))
        return value

    if "listen_addr" in doc:
        if not isinstance(doc["listen_addr"], str) or not doc["listen_addr"]:
            raise Error("config '%s': listen_addr must be a non-empty string" % path)
        values["listen_addr"] = doc["listen_addr"]
    if "upload_limit_bytes" in doc:
        values["upload_limit_bytes"] = integer(doc["upload_limit_bytes"], "upload_limit_bytes")
    max_limits = doc.get("max_limits", {})
    if isinstance(max_limits, dict) and "wall_clock_secs" in max_limits:
        values["wall_clock_secs"] = integer(max_limits["wall_clock_secs"],
                                            "max_limits.wall_clock_secs")
    return values


def parse_listen(addr):
    """listen_addr -> (nginx listen parameter, host to connect to, port)."""
    m = re.fullmatch(r"(?:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.*-]*):)?([0-9]{1,5})", addr)
    if not m or not 1 <= int(m.group(2)) <= 65535:
        raise Error("listen_addr '%s' is not [HOST]:PORT" % addr)
    host, port = m.group(1) or "", m.group(2)
    listen = "%s:%s" % (host, port) if host else port
    if host in ("", "*", "0.0.0.0"):
        connect = "127.0.0.1"
    elif host == "[::]":
        connect = "[::1]"
    else:
        connect = host
    return listen, connect, port


def compute(config, listen_override, tls=False):
    listen, host, port = parse_listen(listen_override or config["listen_addr"])
    wall = config["wall_clock_secs"]
    return {
        "listen": listen,
        "url": "%s://%s:%s" % ("https" if tls else "http", host, port),
        "body_max": config["upload_limit_bytes"] + BODY_MARGIN,
        "read_timeout": wall + TIMEOUT_MARGIN,
        "stop_grace": wall + 10 + STOP_MARGIN,
    }


def render(template, subst):
    with open(template, encoding="utf-8") as f:
        text = f.read()
    for key, value in subst.items():
        text = text.replace("@%s@" % key, str(value))
    left = sorted(set(re.findall(r"@[A-Z_]+@", text)))
    if left:
        raise Error("%s: no value for %s" % (template, ", ".join(left)))
    return text


def write_file(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def check_path(name, path):
    # nginx would split a path with blanks or ';' into several arguments.
    if not os.path.isabs(path) or re.search(r"[\s;{}'\"\\]", path):
        raise Error("%s must be an absolute path without blanks, quotes or ;{}: '%s'"
                    % (name, path))


def public_copies(static, prefix):
    """nginx's www-data workers may not read a checkout under a private
    directory (root's home): its two small files are served from copies in
    the prefix instead.  swagger-ui-dist stays where contrib/swagger-ui.sh
    put it, world-readable."""
    out = dict(static)
    os.makedirs(os.path.join(prefix, "static"), mode=0o755, exist_ok=True)
    for key, name in (("OPENAPI", "openapi.yaml"), ("SWAGGER_PAGE", "index.html")):
        dest = os.path.join(prefix, "static", name)
        with open(static[key], "rb") as src, open(dest + ".tmp", "wb") as dst:
            dst.write(src.read())
        os.chmod(dest + ".tmp", 0o644)
        os.replace(dest + ".tmp", dest)
        out[key] = dest
    return out


def static_paths(share_dir, swagger_ui):
    """The files nginx serves itself: the template's OPENAPI, SWAGGER_PAGE
    and SWAGGER_UI."""
    if share_dir:
        share_dir = os.path.abspath(share_dir)
        openapi = os.path.join(share_dir, "openapi.yaml")
        page = os.path.join(share_dir, "swagger", "index.html")
        hint = "run `make install` for it"
    else:
        openapi = os.path.join(CHECKOUT, "openapi.yaml")
        page = os.path.join(HERE, "swagger", "index.html")
        hint = "pass --share-dir for an installed Boxer"
    if not swagger_ui:
        swagger_ui = os.path.join(os.environ.get("BOXER_CACHE") or "/var/cache/boxer",
                                  "npm", "node_modules", "swagger-ui-dist")
    swagger_ui = os.path.abspath(swagger_ui)
    for name, path, fix in (("openapi.yaml", openapi, hint), ("Swagger UI page", page, hint),
                            ("swagger-ui-dist", os.path.join(swagger_ui, "swagger-ui-bundle.js"),
                             "run contrib/swagger-ui.sh and pass the directory it prints"
                             " as --swagger-ui")):
        check_path(name, path)
        if not os.path.isfile(path):
            raise Error("no %s at '%s': %s" % (name, path, fix))
    return {"OPENAPI": openapi, "SWAGGER_PAGE": page, "SWAGGER_UI": swagger_ui}


def tls_lines(cert, key):
    """The TLS directives of the server block, or a comment without TLS."""
    if not cert:
        return ("    # Plain HTTP here: render with --tls-cert/--tls-key, or terminate TLS\n"
                "    # in a proxy in front that passes Authorization through.")
    for name, path in (("--tls-cert", cert), ("--tls-key", key)):
        check_path(name, path)
        if not os.access(path, os.R_OK):
            raise Error("%s %s is not readable" % (name, path))
    return "\n".join([
        "    ssl_certificate %s;" % cert,
        "    ssl_certificate_key %s;" % key,
        "    ssl_protocols TLSv1.2 TLSv1.3;",
        "    ssl_prefer_server_ciphers off;",
        "    ssl_session_cache shared:boxer_tls:1m;",
        "    ssl_session_timeout 1h;",
    ])


def site_text(values, socket, static, cert=None, key=None):
    check_path("--socket", socket)
    return render(SITE_TEMPLATE, dict(static, **{
        "LISTEN_SSL": " ssl" if cert else "",
        "TLS": tls_lines(cert, key),
        "LISTEN": values["listen"],
        "BODY_MAX": values["body_max"],
        "SOCKET": socket,
        "READ_TIMEOUT": values["read_timeout"],
    }))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("command", choices=("site", "standalone", "values"))
    p.add_argument("--config", metavar="FILE", help="Boxer config (JSON); defaults if omitted")
    p.add_argument("--listen", metavar="ADDR", help="overrides the config's listen_addr")
    p.add_argument("--socket", metavar="PATH", help="the pool's FastCGI socket")
    p.add_argument("--prefix", metavar="DIR", help="standalone: nginx's private directory")
    p.add_argument("--daemon", choices=("on", "off"), default="on", help="standalone: nginx daemon directive")
    p.add_argument("-o", "--output", metavar="FILE", help="site: write here instead of stdout")
    p.add_argument("--share-dir", metavar="DIR",
                   help="where openapi.yaml and swagger/index.html are installed; default: this checkout")
    p.add_argument("--swagger-ui", metavar="DIR", help="swagger-ui-dist's files (contrib/swagger-ui.sh)")
    p.add_argument("--tls-cert", metavar="FILE", help="PEM certificate (chain): nginx terminates TLS")
    p.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    args = p.parse_args()
    if args.command != "values" and bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    tls = [os.path.abspath(f) if f else None for f in (args.tls_cert, args.tls_key)]

    try:
        values = compute(load_config(args.config), args.listen, bool(args.tls_cert))
        if args.command == "values":
            pass
        elif args.command == "site":
            if not args.socket:
                p.error("site needs --socket")
            text = site_text(values, args.socket, static_paths(args.share_dir, args.swagger_ui),
                             *tls)
            if args.output:
                write_file(args.output, text)
            else:
                sys.stdout.write(text)
            return
        else:
            if not args.socket or not args.prefix:
                p.error("standalone needs --socket and --prefix")
            prefix = os.path.abspath(args.prefix)
            check_path("--prefix", prefix)
            site = os.path.join(prefix, "boxer-site.conf")
            os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
            static = static_paths(args.share_dir, args.swagger_ui)
            if nginx_user_line().startswith("user www-data"):
                static = public_copies(static, prefix)
            write_file(site, site_text(values, args.socket, static, *tls))
            write_file(os.path.join(prefix, "nginx.conf"), render(STANDALONE_TEMPLATE, {
                "PREFIX": prefix,
                "SITE": site,
                "DAEMON": args.daemon,
                "USER_LINE": nginx_user_line(),
            }))
    except Error as e:
        sys.exit("render-config: %s" % e)
    for key in ("listen", "url", "body_max", "read_timeout", "stop_grace"):
        print("%s=%s" % (key, values[key]))


if __name__ == "__main__":
    main()
