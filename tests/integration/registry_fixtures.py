"""Real registries on loopback for the pull tests: Debian's docker-registry
(the reference Distribution implementation) run per test with a config of
its own, anonymous, with htpasswd basic auth or with token auth against a
small token issuer; images pushed with skopeo or through the registry's own
push API; a fault-injecting reverse proxy (stalls, redirects to a separate
"blob storage" server); and OCI images built in memory with exactly the
layers a test wants.

Everything listens on 127.0.0.1 only, on ports the caller hands out."""

import base64
import gzip
import hashlib
import http.client
import http.server
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.parse
import warnings
from pathlib import Path

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

ACCESS_LINE = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP/[\d.]+" (\d{3})')


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def wait_port(port, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/v2/")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers on 127.0.0.1:{port}")


def bcrypt_hash(password):
    """A bcrypt hash as htpasswd files hold them, from the C library's crypt
    (cost 4: the registry checks it on every request)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))


# --- building images ------------------------------------------------------

def tar_layer(entries):
    """An uncompressed tar of entries: (name, kind, arg) with kind one of
    "file" (arg: bytes or str), "dir", "symlink" (arg: target), "hardlink"
    (arg: target), "exec" (arg: bytes, mode 0755), "setuid" (arg: bytes,
    mode 06755, owned by root), "fifo", "chardev" (arg: (major, minor))."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, arg in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            data = None
            if kind in ("file", "exec"):
                data = arg.encode() if isinstance(arg, str) else arg
                info.size = len(data)
                info.mode = 0o755 if kind == "exec" else 0o644
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = arg
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = arg
            elif kind == "setuid":
                data = arg.encode() if isinstance(arg, str) else arg
                info.size = len(data)
                info.mode = 0o6755
                info.uid = info.gid = 0
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
                info.mode = 0o644
            elif kind == "chardev":
                info.type = tarfile.CHRTYPE
                info.devmajor, info.devminor = arg
                info.mode = 0o666
            else:
                raise ValueError(kind)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def busybox_entries():
    """A minimal userland: the host's static busybox and a few applets."""
    data = Path("/bin/busybox").read_bytes()
    entries = [("bin/", "dir", None), ("bin/busybox", "exec", data), ("tmp/", "dir", None)]
    for applet in ("sh", "cat", "echo", "sleep", "ls", "true", "test"):
        entries.append((f"bin/{applet}", "symlink", "busybox"))
    return entries


class Blob:
    def __init__(self, data, media_type):
        self.data, self.media_type = data, media_type
        self.digest = digest_of(data)

    def descriptor(self, **extra):
        d = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}
        d.update(extra)
        return d


def compress(raw, how):
    if how == "gzip":
        return gzip.compress(raw, mtime=0)
    if how == "zstd":
        return subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True,
                              check=True).stdout
    if how == "none":
        return raw
    raise ValueError(how)


class Image:
    """An image built in memory: layers (each a list of tar entries),
    config and manifest, OCI media types unless docker=True."""

    def __init__(self, layers, arch="amd64", os_name="linux", cmd=None, env=None,
                 compression="gzip", docker=False):
        self.blobs = []
        diff_ids, descs = [], []
        for entries in layers:
            raw = tar_layer(entries)
            diff_ids.append(digest_of(raw))
            if docker:
                media = DOCKER_LAYER_GZIP
            else:
                media = {"gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD,
                         "none": "application/vnd.oci.image.layer.v1.tar"}[compression]
            blob = Blob(compress(raw, "gzip" if docker else compression), media)
            self.blobs.append(blob)
            descs.append(blob.descriptor())
        config = {
            "architecture": arch, "os": os_name,
            "config": {"Env": env or ["PATH=/bin"], "Cmd": cmd or ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
        self.config = Blob(json.dumps(config, sort_keys=True).encode(),
                           DOCKER_CONFIG if docker else OCI_CONFIG)
        self.blobs.append(self.config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
            "config": self.config.descriptor(),
            "layers": descs,
        }
        self.manifest = Blob(json.dumps(manifest, sort_keys=True).encode(),
                             DOCKER_MANIFEST if docker else OCI_MANIFEST)
        self.layers = self.blobs[:-1]
        self.arch, self.os = arch, os_name


class Index:
    """An image index over images, each with its platform."""

    def __init__(self, images, extra=None, docker=False):
        self.images = images
        manifests = [img.manifest.descriptor(platform={"os": img.os, "architecture": img.arch})
                     for img in images]
        manifests += extra or []
        media = DOCKER_LIST if docker else OCI_INDEX
        self.manifest = Blob(json.dumps({"schemaVersion": 2, "mediaType": media,
                                         "manifests": manifests}).encode(), media)


# --- the token issuer -----------------------------------------------------

class TokenIssuer:
    """The token server of the registry's token auth: issues RS256 JWTs
    the registry trusts (signed with a key whose certificate is the
    registry's rootcertbundle), anonymously for pull or for the users it
    knows, and counts the requests it serves."""

    def __init__(self, port, workdir, service, issuer="boxer-test-issuer", users=None,
                 anonymous=True, expires_in=300):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID
        import datetime

        self.port, self.service, self.issuer = port, service, issuer
        self.users = users or {}
        self.anonymous, self.expires_in = anonymous, expires_in
        self.requests = []          # (scope, user or None)
        self.lock = threading.Lock()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "boxer test token issuer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .sign(self.key, hashes.SHA256()))
        self.cert_path = Path(workdir) / "token-cert.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        # libtrust's key id, by which the registry finds the key.
        b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
        self.kid = ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self):
        return f"http://127.0.0.1:{self.port}/token"

    def _jwt(self, subject, access):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        def b64(raw):
            return base64.urlsafe_b64encode(raw).decode().rstrip("=")

        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "iat": now,
                  "nbf": now - 10, "exp": now + self.expires_in,
                  "jti": base64.b16encode(os.urandom(8)).decode(), "access": access}
        signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        sig = self.key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing}.{b64(sig)}"

    def _handler(self):
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                q = urllib.parse.parse_qs(url.query)
                user = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                    if issuer.users.get(u) != p:
                        return self._answer(401, {"details": "bad credentials"})
                    user = u
                elif not issuer.anonymous:
                    return self._answer(401, {"details": "credentials required"})
                scopes = q.get("scope", [])
                with issuer.lock:
                    issuer.requests.append((" ".join(scopes), user))
                if url.path != "/token" or q.get("service") != [issuer.service]:
                    return self._answer(400, {"details": "bad request"})
                access = []
                for scope in scopes:
                    for one in scope.split(" "):
                        kind, _, rest = one.partition(":")
                        name, _, actions = rest.rpartition(":")
                        allowed = [a for a in actions.split(",")
                                   if a == "pull" or (user and a in ("push", "delete"))]
                        access.append({"type": kind, "name": name, "actions": allowed})
                token = issuer._jwt(user or "", access)
                self._answer(200, {"token": token, "access_token": token,
                                   "expires_in": issuer.expires_in})

            def _answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def count(self):
        with self.lock:
            return len(self.requests)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# --- the registry ---------------------------------------------------------

class Registry:
    """docker-registry serving from a directory of its own on 127.0.0.1:port.
    auth: None, ("htpasswd", {user: password}) or ("token", TokenIssuer)."""

    def __init__(self, port, auth=None):
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="boxer-registry-"))
        self.storage = self.dir / "storage"
        self.log_path = self.dir / "registry.log"
        self.auth = auth
        self.users = {}
        lines = [
            "version: 0.1",
            "log:",
            "  level: warn",
            "  accesslog:",
            "    disabled: false",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.storage}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: 127.0.0.1:{port}",
            "  secret: boxer-test-secret",
        ]
        if auth and auth[0] == "htpasswd":
            self.users = dict(auth[1])
            htpasswd = self.dir / "htpasswd"
            htpasswd.write_text("".join(f"{u}:{bcrypt_hash(p)}\n" for u, p in self.users.items()))
            lines += ["auth:", "  htpasswd:", "    realm: boxer-test", f"    path: {htpasswd}"]
        elif auth and auth[0] == "token":
            issuer = auth[1]
            self.users = dict(issuer.users)
            lines += ["auth:", "  token:", f"    realm: {issuer.realm}",
                      f"    service: {issuer.service}", f"    issuer: {issuer.issuer}",
                      f"    rootcertbundle: {issuer.cert_path}"]
        (self.dir / "config.yml").write_text("\n".join(lines) + "\n")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(self.dir / "config.yml")],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_port(port)
        except Exception:
            self.stop()
            raise

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def requests(self):
        """(method, path, status) of every request in the access log."""
        self.log.flush()
        text = self.log_path.read_text(errors="replace")
        return [(m.group(1), m.group(2), int(m.group(3))) for m in ACCESS_LINE.finditer(text)]

    def blob_gets(self, repo=None):
        """GETs of blobs (of repo), as a {digest: count} map."""
        counts = {}
        for method, path, _ in self.requests():
            m = re.match(r"/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$", path)
            if method == "GET" and m and (repo is None or m.group(1) == repo):
                counts[m.group(2)] = counts.get(m.group(2), 0) + 1
        return counts

    def blob_path(self, digest):
        hexd = digest.split(":", 1)[1]
        return (self.storage / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data")

    def push_layout(self, layout, ref, creds=None):
        """Push an OCI layout (its one image) with skopeo."""
        cmd = ["skopeo", "copy", "-q", "--dest-tls-verify=false"]
        if creds:
            cmd += ["--dest-creds", f"{creds[0]}:{creds[1]}"]
        subprocess.run(cmd + [f"oci:{layout}", f"docker://{self.host}/{ref}"], check=True,
                       capture_output=True, timeout=120)

    # The registry's push API, for images skopeo would rewrite.

    def _client(self, creds):
        return RegistryClient(self.host, creds or (next(iter(self.users.items()))
                                                    if self.users else None))

    def push_image(self, repo, tag, image, creds=None):
        client = self._client(creds)
        for blob in image.blobs:
            client.push_blob(repo, blob.data)
        client.put_manifest(repo, tag, image.manifest)
        return image.manifest.digest

    def push_index(self, repo, tag, index, creds=None):
        client = self._client(creds)
        for img in index.images:
            for blob in img.blobs:
                client.push_blob(repo, blob.data)
            client.put_manifest(repo, img.manifest.digest, img.manifest)
        client.put_manifest(repo, tag, index.manifest)
        return index.manifest.digest

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class RegistryClient:
    """Just enough of a registry client to push, with basic or token auth."""

    def __init__(self, host, creds):
        self.host, self.creds = host, creds
        self.tokens = {}

    def _auth_header(self, challenge, scope):
        if challenge.startswith("Basic"):
            raw = f"{self.creds[0]}:{self.creds[1]}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        url = urllib.parse.urlparse(params["realm"])
        query = urllib.parse.urlencode({"service": params["service"], "scope": scope})
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        headers = {}
        if self.creds:
            raw = f"{self.creds[0]}:{self.creds[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        conn.request("GET", f"{url.path}?{query}", headers=headers)
        resp = conn.getresponse()
        body = json.loads(resp.read())
        conn.close()
        return "Bearer " + body["token"]

    def _request(self, method, path, body=None, headers=None, repo=None):
        headers = dict(headers or {})
        scope = f"repository:{repo}:pull,push"
        for _ in range(2):
            if scope in self.tokens:
                headers["Authorization"] = self.tokens[scope]
            conn = http.client.HTTPConnection(self.host, timeout=60)
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            if resp.status != 401:
                return resp, data
            self.tokens[scope] = self._auth_header(resp.getheader("WWW-Authenticate"), scope)
        raise RuntimeError(f"{method} {path}: still 401")

    def push_blob(self, repo, data):
        digest = digest_of(data)
        resp, _ = self._request("HEAD", f"/v2/{repo}/blobs/{digest}", repo=repo)
        if resp.status == 200:
            return digest
        resp, _ = self._request("POST", f"/v2/{repo}/blobs/uploads/", body=b"", repo=repo)
        assert resp.status == 202, resp.status
        loc = urllib.parse.urlparse(resp.getheader("Location"))
        query = (loc.query + "&" if loc.query else "") + urllib.parse.urlencode({"digest": digest})
        resp, body = self._request("PUT", f"{loc.path}?{query}", body=data, repo=repo,
                                   headers={"Content-Type": "application/octet-stream"})
        assert resp.status == 201, (resp.status, body)
        return digest

    def put_manifest(self, repo, ref, blob):
        resp, body = self._request("PUT", f"/v2/{repo}/manifests/{ref}", body=blob.data,
                                   headers={"Content-Type": blob.media_type}, repo=repo)
        assert resp.status == 201, (resp.status, body)


# --- a fault-injecting proxy ----------------------------------------------

class ConnectionCounter:
    """A TCP listener on 127.0.0.1:port that counts the connections it
    accepts and closes them: what must never be contacted."""

    def __init__(self, port):
        import socket
        self.port = port
        self.count = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.count += 1
            conn.close()

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.stopping.set()
        self.thread.join()
        self.sock.close()


class Proxy:
    """A reverse proxy to a registry on 127.0.0.1:port that counts what
    it forwards and can misbehave on request:

    stall_blobs: blob bodies stop after their first half until released
    stall_all: every response waits until released
    trickle: blob bodies are sent 512 bytes every 0.2 s, never stalling
      long enough for a stall timeout
    storage_port: blob GETs are redirected (307) to a separate "blob
      storage" server on that port, which serves them and records whether
      any request reached it with an Authorization header (with
      serve_storage=False, someone else listens there)
    rewrite: fn(path, status, body) -> body or None, to answer with other
      bytes (Content-Length follows them)."""

    def __init__(self, port, upstream_port, storage_port=None, upstream_auth=None,
                 serve_storage=True):
        self.port, self.upstream_port = port, upstream_port
        self.upstream_auth = upstream_auth
        self.release = threading.Event()
        self.stalled = threading.Event()
        self.stall_blobs = False
        self.stall_all = False
        self.trickle = False
        self.rewrite = None
        self.paths = []
        self.storage_paths = []
        self.storage_auth_seen = []
        self.lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                                      self._handler(storage=False))
        self.server.daemon_threads = True
        self.servers = [self.server]
        self.storage_port = storage_port
        if storage_port and serve_storage:
            storage = http.server.ThreadingHTTPServer(("127.0.0.1", storage_port),
                                                      self._handler(storage=True))
            storage.daemon_threads = True
            self.servers.append(storage)
        for s in self.servers:
            threading.Thread(target=s.serve_forever, daemon=True).start()

    def _upstream(self, method, path, headers):
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        return conn, resp, resp.read()

    def _handler(self, storage):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self._serve("GET")

            def do_HEAD(self):
                self._serve("HEAD")

            def _serve(self, method):
                with proxy.lock:
                    (proxy.storage_paths if storage else proxy.paths).append(self.path)
                    if storage:
                        proxy.storage_auth_seen.append(self.headers.get("Authorization"))
                if proxy.stall_all:
                    proxy.stalled.set()
                    proxy.release.wait(60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("accept", "authorization")}
                path = self.path
                if storage:
                    # /_storage/<repo path>/blobs/<digest> from the registry itself.
                    path = "/v2/" + self.path[len("/_storage/"):]
                    headers = {}
                    if proxy.upstream_auth:
                        raw = ":".join(proxy.upstream_auth).encode()
                        headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
                is_blob = "/blobs/sha256:" in path
                if (not storage and proxy.storage_port and is_blob and method == "GET"):
                    # Only requests the registry would answer get redirected.
                    conn, resp, body = proxy._upstream("HEAD", path, headers)
                    conn.close()
                    if resp.status == 200:
                        target = (f"http://127.0.0.1:{proxy.storage_port}/_storage/"
                                  + path[len("/v2/"):])
                        self.send_response(307)
                        self.send_header("Location", target)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                conn, resp, body = proxy._upstream(method, path, headers)
                conn.close()
                length = resp.getheader("Content-Length")
                if proxy.rewrite and method == "GET":
                    other = proxy.rewrite(path, resp.status, body)
                    if other is not None:
                        body, length = other, str(len(other))
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() in ("content-type", "www-authenticate", "docker-content-digest",
                                     "location"):
                        self.send_header(k, v)
                if length is not None:
                    self.send_header("Content-Length", length)
                self.end_headers()
                if method == "HEAD":
                    return
                if proxy.stall_blobs and is_blob and resp.status == 200:
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    proxy.stalled.set()
                    proxy.release.wait(60)
                    self.close_connection = True
                    return
                if proxy.trickle and is_blob and resp.status == 200:
                    try:
                        for i in range(0, len(body), 512):
                            if proxy.release.is_set():
                                break
                            self.wfile.write(body[i:i + 512])
                            self.wfile.flush()
                            time.sleep(0.2)
                    except OSError:
                        pass
                    self.close_connection = True
                    return
                self.wfile.write(body)

        return Handler

    def blob_paths(self):
        with self.lock:
            return [p for p in self.paths if "/blobs/" in p]

    def stop(self):
        self.release.set()
        for s in self.servers:
            s.shutdown()
            s.server_close()
