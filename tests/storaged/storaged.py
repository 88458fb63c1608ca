#!/usr/bin/env python3
"""storaged - the reference server of the storaged protocol (schemas/storaged.md).

A small object store over HTTP/1.1 for vectord's http(s):// store backend and
its tests: PUT/GET/DELETE whole objects under <base>/storage/{key}, list keys
by prefix with GET <base>/storage?prefix=P&after=K&limit=N. Python 3.11
standard library only.

    storaged.py --root DIR [--bind 127.0.0.1] [--port 0] [--port-file F]
                [--base /PATH] [--token T] [--fail-file F]
                [--tls-cert PEM --tls-key PEM] [--verbose]

Design notes
- Bodies are streamed in 1 MiB chunks both ways; nothing reads a whole
  object into memory (tests move 256 MiB objects).
- A PUT writes a temp file in the object's directory, fsyncs it, renames it
  over the object and fsyncs the directory: a reader sees the old or the new
  object, never a part. A GET keeps its open file across a concurrent
  rename, so it sends the version it opened, whole.
- On disk, a key is a path of prefixed names, so that "a" and "a/b" can both
  be objects, temp files can never be mistaken for objects, and segments
  longer than a file name (vectord escapes 249-byte index names into one
  segment of up to ~750 bytes) still fit:
      "d" + piece   a directory: piece, then '/'
      "c" + piece   a directory: piece, continued by what is inside
      "o" + piece   an object: piece ends the key
      "t..."        a temp file of a PUT in progress (never listed)
  Each piece is at most 200 bytes of one segment. Example: the key
  "_manifests/t/3.json" is ROOT/d_manifests/dt/o3.json.
- Fault injection: while --fail-file exists, every request is answered with
  500, or with the status written in the file (e.g. 503, 429); "503 TEXT"
  fails only the requests whose decoded path and query contain TEXT.
- One server per root: temp files left by a killed server are removed at
  start.
"""

import argparse
import errno
import hmac
import http.server
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

CHUNK = 1 << 20
PIECE = 200  # bytes of a key segment per on-disk name (NAME_MAX is 255)
MAX_KEY = 1024  # bytes, like S3 and vd_store_key_valid
LIST_MAX = 1000
DISCARD_MAX = 1 << 20  # a rejected request's body up to this is read and dropped
UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~$&+,:;=@")


class HTTPError(Exception):
    """An answer other than success: status and a short text/plain message."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


# ------------------------------------------------------------ keys & paths --


def pct_decode(s, what):
    """Percent-decodes s (str, as sent) exactly once into bytes. '+' stays
    '+'. A '%' not followed by two hex digits is an error."""
    # http.server decodes the request line as Latin-1: this gives back the
    # bytes the client sent.
    raw = s.encode("latin-1")
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x25:  # '%'
            h = raw[i + 1:i + 3]
            try:
                if len(h) != 2:
                    raise ValueError
                out.append(int(h, 16))
            except ValueError:
                raise HTTPError(400, f"{what}: bad percent-escape at byte {i}") from None
            i += 3
        else:
            out.append(c)
            i += 1
    return bytes(out)


def pct_encode(b):
    """Escapes bytes like Go's url.PathEscape (for messages and tests)."""
    return "".join(chr(c) if c in UNRESERVED else f"%{c:02X}" for c in b)


def check_key(key):
    """Raises HTTPError(400) unless key (bytes) is a valid key."""
    if not key:
        raise HTTPError(400, "key: empty")
    if len(key) > MAX_KEY:
        raise HTTPError(400, f"key: longer than {MAX_KEY} bytes")
    for c in key:
        if c < 0x20 or c == 0x7F:
            raise HTTPError(400, f"key: control byte 0x{c:02x}")
    try:
        key.decode("utf-8", "strict")
    except UnicodeDecodeError:
        raise HTTPError(400, "key: not valid UTF-8") from None
    for seg in key.split(b"/"):
        if seg in (b"", b".", b".."):
            raise HTTPError(400, f"key: empty, '.' or '..' segment in {pct_encode(key)}")


def key_names(key):
    """The on-disk names (bytes) of key's object, from the root down."""
    names = []
    segs = key.split(b"/")
    for i, seg in enumerate(segs):
        pieces = [seg[j:j + PIECE] for j in range(0, len(seg), PIECE)]
        names += [b"c" + p for p in pieces[:-1]]
        names.append((b"o" if i == len(segs) - 1 else b"d") + pieces[-1])
    return names


# ----------------------------------------------------------------- storage --


class Store:
    """The objects under root. Methods raise HTTPError or OSError."""

    def __init__(self, root, fsync=True):
        self.root = os.fsencode(os.path.abspath(root))
        self.fsync = fsync
        # Serialises creating directories (PUT) against removing empty ones
        # (DELETE), so a PUT never loses its directory under it.
        self.dir_lock = threading.Lock()
        os.makedirs(self.root, exist_ok=True)
        self._remove_temps(self.root)

    def _remove_temps(self, d):
        with os.scandir(d) as it:
            for e in it:
                if e.name.startswith(b"t") and e.is_file(follow_symlinks=False):
                    os.unlink(e.path)
                elif e.name[:1] in (b"d", b"c") and e.is_dir(follow_symlinks=False):
                    self._remove_temps(e.path)

    def path(self, key):
        return os.path.join(self.root, *key_names(key))

    def open_temp(self, key):
        """Creates the object's directories and a temp file in the last one.
        Returns (fd, temp path, final path)."""
        final = self.path(key)
        d = os.path.dirname(final)
        tmp = os.path.join(d, b"t" + uuid.uuid4().hex.encode())
        with self.dir_lock:
            try:
                os.makedirs(d, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                # Cannot happen with the prefixed layout unless someone wrote
                # into the root by hand.
                raise HTTPError(409, "key: a path component is not a directory on the server") from None
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        return fd, tmp, final

    def commit(self, fd, tmp, final):
        """fsyncs the temp file, renames it over the object, fsyncs the dir."""
        try:
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if os.path.isdir(final):
            os.unlink(tmp)
            raise HTTPError(409, "key: names a directory on the server")
        os.rename(tmp, final)
        if self.fsync:
            dfd = os.open(os.path.dirname(final), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def open_read(self, key):
        """Returns (file object, size); HTTPError(404) when absent."""
        try:
            f = open(self.path(key), "rb", buffering=0)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise HTTPError(404, "no such key") from None
        return f, os.fstat(f.fileno()).st_size

    def delete(self, key):
        p = self.path(key)
        with self.dir_lock:
            try:
                os.unlink(p)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                raise HTTPError(404, "no such key") from None
            # Drop directories left empty, up to the root.
            d = os.path.dirname(p)
            while d != self.root:
                try:
                    os.rmdir(d)
                except OSError:
                    break
                d = os.path.dirname(d)

    def keys(self, prefix):
        """All keys (bytes) that start with prefix, unsorted."""
        out = []
        self._walk(self.root, b"", prefix, out)
        return out

    def _walk(self, d, sofar, prefix, out):
        try:
            it = os.scandir(d)
        except FileNotFoundError:  # removed by a concurrent DELETE
            return
        with it:
            for e in it:
                kind, piece = e.name[:1], e.name[1:]
                if kind == b"o":
                    k = sofar + piece
                    if k.startswith(prefix) and e.is_file(follow_symlinks=False):
                        out.append(k)
                    continue
                if kind == b"d":
                    k = sofar + piece + b"/"
                elif kind == b"c":
                    k = sofar + piece
                else:
                    continue  # temp files and anything foreign
                # Descend only where keys can still match the prefix.
                n = min(len(k), len(prefix))
                if k[:n] == prefix[:n] and e.is_dir(follow_symlinks=False):
                    self._walk(e.path, k, prefix, out)


# ------------------------------------------------------------------- HTTP --


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "storaged/1"
    timeout = 120  # idle keep-alive connections and stalled bodies

    # --- plumbing

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("storaged: %s %s\n" % (self.address_string(), fmt % args))

    def send_error(self, code, message=None, explain=None):
        # Also used by http.server for malformed requests: plain text, close.
        self.close_connection = True
        self.reply(code, message or self.responses.get(code, ("error",))[0], close=True)

    def reply(self, status, text=None, headers=None, close=False):
        """Sends a complete response with a text/plain body (none for 204)."""
        body = b"" if status in (204, 304) or status < 200 else (text or "").encode() + b"\n"
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if status not in (204, 304):
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def fail(self, e):
        """Answers HTTPError e; drops a small unread body or closes."""
        close = self.close_connection or not self.drain_body()
        self.reply(e.status, e.message, e.headers, close=close)

    def drain_body(self):
        """Reads and drops an unread request body when small. False when the
        connection cannot be reused (body too big, chunked, or malformed)."""
        if self.body_read:
            return True
        if self.headers.get("Transfer-Encoding"):
            return False
        cl = self.headers.get("Content-Length", "0")
        if not cl.isdigit() or int(cl) > DISCARD_MAX:
            return False
        n = int(cl)
        while n > 0:
            b = self.rfile.read(min(n, CHUNK))
            if not b:
                return False
            n -= len(b)
        self.body_read = True
        return True

    # --- routing and checks shared with the 100-continue decision

    def route(self):
        """Returns ("list", query) or ("key", key bytes); raises HTTPError."""
        path, _, query = self.path.partition("?")
        base = self.server.base + "/storage"
        if path == base:
            return "list", query
        if not path.startswith(base + "/"):
            raise HTTPError(404, f"no such endpoint (the API is under {base})")
        seg = path[len(base) + 1:]
        if "/" in seg:
            raise HTTPError(400, "key: must be ONE path segment (escape '/' as %2F)")
        key = pct_decode(seg, "key")
        check_key(key)
        return "key", key

    def precheck(self):
        """Fault injection, auth, routing and method. Returns the route."""
        self.server.inject_fault(self.path)
        tok = self.server.token
        if tok is not None:
            got = self.headers.get("Authorization", "")
            if not (got.startswith("Bearer ") and hmac.compare_digest(got[7:].strip().encode(), tok.encode())):
                raise HTTPError(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        kind, arg = self.route()
        allowed = ("GET", "HEAD") if kind == "list" else ("GET", "HEAD", "PUT", "DELETE")
        if self.command not in allowed:
            raise HTTPError(405, f"method {self.command} not allowed here", {"Allow": ", ".join(allowed)})
        if self.command == "PUT":
            if self.headers.get("Transfer-Encoding"):
                raise HTTPError(411, "Content-Length required (chunked uploads are not supported)")
            cl = self.headers.get("Content-Length")
            if cl is None:
                raise HTTPError(411, "Content-Length required")
            if not cl.isdigit():
                raise HTTPError(400, "bad Content-Length")
        return kind, arg

    def handle_expect_100(self):
        # Decide before the client sends the body: a rejected PUT gets its
        # final status instead of 100 Continue, and the connection is closed
        # (the client may or may not send the body anyway).
        try:
            self.precheck()
        except HTTPError as e:
            self.reply(e.status, e.message, e.headers, close=True)
            return False
        self.send_response_only(100)
        self.end_headers()
        return True

    def dispatch(self):
        self.body_read = False
        try:
            kind, arg = self.precheck()
            if kind == "list":
                self.do_list(arg)
            elif self.command == "PUT":
                self.do_put(arg)
            elif self.command in ("GET", "HEAD"):
                self.do_get(arg)
            else:
                self.server.store.delete(arg)
                self.reply(204)
        except HTTPError as e:
            self.fail(e)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        except OSError as e:
            status = 507 if e.errno in (errno.ENOSPC, errno.EDQUOT) else 500
            self.log_error("%s %s: %s", self.command, self.path, e)
            self.fail(HTTPError(status, f"server error: {e.strerror or e}"))

    do_GET = do_HEAD = do_PUT = do_DELETE = dispatch
    do_POST = do_PATCH = do_OPTIONS = dispatch

    # --- the operations

    def do_put(self, key):
        n = int(self.headers["Content-Length"])
        store = self.server.store
        fd, tmp, final = store.open_temp(key)
        try:
            left = n
            while left > 0:
                b = self.rfile.read(min(left, CHUNK))
                if not b:
                    raise ConnectionResetError("client closed the connection mid-body")
                _write_all(fd, b)
                left -= len(b)
            self.body_read = True
            self.server.stall(key)
            store.commit(fd, tmp, final)
            fd = -1
        except BaseException:
            if fd >= 0:
                os.close(fd)
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        self.reply(204)

    def do_get(self, key):
        f, size = self.server.store.open_read(key)
        with f:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if self.command == "HEAD":
                return
            left = size
            while left > 0:
                b = f.read(min(left, CHUNK))
                if not b:  # cannot happen: the open file does not change
                    self.close_connection = True
                    return
                self.wfile.write(b)
                left -= len(b)

    def do_list(self, query):
        params = {}
        for part in query.split("&") if query else []:
            name, eq, value = part.partition("=")
            name = pct_decode(name, "query")
            if name in params:
                raise HTTPError(400, f"query: {name.decode(errors='replace')} given twice")
            params[name] = pct_decode(value, name.decode(errors="replace"))
        prefix = params.get(b"prefix", b"")
        after = params.get(b"after")
        limit = LIST_MAX
        if b"limit" in params:
            v = params[b"limit"]
            if not v.isdigit() or int(v) < 1:
                raise HTTPError(400, "limit: want an integer >= 1")
            limit = min(int(v), LIST_MAX)
        keys = sorted(self.server.store.keys(prefix))
        if after is not None:
            keys = [k for k in keys if k > after]
        page = keys[:limit]
        body = json.dumps({"keys": [k.decode("utf-8") for k in page], "truncated": len(keys) > limit},
                          ensure_ascii=False).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _write_all(fd, b):
    mv = memoryview(b)
    while mv:
        mv = mv[os.write(fd, mv):]


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, addr, store, base, token, fail_file, verbose, tls, stall_file=None):
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        self.store, self.base, self.token = store, base, token
        self.fail_file, self.verbose, self.tls = fail_file, verbose, tls
        self.stall_file = stall_file
        super().__init__(addr, Handler)

    def get_request(self):
        conn, addr = super().get_request()
        # Headers and body go out in separate writes: without TCP_NODELAY
        # the body waits for the client's delayed ACK of the headers (40 ms
        # a request on a kept-alive connection).
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls:
            # The handshake happens on first use, in the handler's thread.
            conn = self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, addr

    def inject_fault(self, path):
        if not self.fail_file:
            return
        try:
            with open(self.fail_file, "rb") as f:
                text = f.read(4096).decode("utf-8", "replace").strip()
        except FileNotFoundError:
            return
        code, _, only = text.partition(" ")
        if only and only.strip() not in urllib.parse.unquote(path):
            return
        status = int(code) if code.isdigit() and 400 <= int(code) <= 599 else 500
        raise HTTPError(status, f"injected failure ({self.fail_file} exists)")


    def stall(self, key):
        """Test hook (--stall-file F): F holds a substring of keys. The first
        PUT whose key contains it claims F by renaming it to F.held (then
        holding that key), and waits, body read but not yet stored, until
        F.held is removed. Other PUTs go through."""
        if not self.stall_file:
            return
        try:
            with open(self.stall_file, "rb") as f:
                want = f.read(4096).decode("utf-8", "replace").strip()
        except FileNotFoundError:
            return
        name = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
        if not want or want not in name:
            return
        held = self.stall_file + ".held"
        try:
            os.rename(self.stall_file, held)
        except FileNotFoundError:
            return  # another PUT claimed it
        with open(held, "w") as f:
            f.write(name + "\n")
        while os.path.exists(held):
            time.sleep(0.05)


def write_atomic(path, text):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True, help="directory holding the objects")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free one")
    ap.add_argument("--port-file", help="write the port here once listening (atomically)")
    ap.add_argument("--base", default="", help="URL path prefix, e.g. /v1 (default none)")
    ap.add_argument("--token", default=os.environ.get("STORAGED_TOKEN") or None,
                    help="require 'Authorization: Bearer T' (default $STORAGED_TOKEN)")
    ap.add_argument("--fail-file", help="while this file exists, answer 500 (or the status it holds)")
    ap.add_argument("--stall-file", help="test hook: hold the first PUT whose key contains "
                    "this file's text until FILE.held is removed")
    ap.add_argument("--tls-cert", help="serve https with this PEM certificate chain")
    ap.add_argument("--tls-key", help="private key for --tls-cert")
    ap.add_argument("--no-fsync", action="store_true", help="skip fsync (faster, not durable)")
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    a = ap.parse_args(argv)

    base = a.base.rstrip("/")
    if base and not base.startswith("/"):
        ap.error("--base must start with '/'")
    tls = None
    if a.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(a.tls_cert, a.tls_key)
    elif a.tls_key:
        ap.error("--tls-key needs --tls-cert")

    store = Store(a.root, fsync=not a.no_fsync)
    srv = Server((a.bind, a.port), store, base, a.token, a.fail_file, a.verbose, tls,
                 a.stall_file)
    port = srv.server_address[1]
    if a.port_file:
        write_atomic(a.port_file, f"{port}\n")
    scheme = "https" if tls else "http"
    host = f"[{a.bind}]" if ":" in a.bind else a.bind
    print(f"storaged: listening on {scheme}://{host}:{port}{base} root={a.root}"
          f"{' token=on' if a.token else ''}", file=sys.stderr, flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    t.start()
    while not stop.wait(1.0):
        if not t.is_alive():
            return 1
    srv.shutdown()
    srv.server_close()
    print("storaged: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
