"""Reading nginx/comfy-workshop.conf, and running it in a real nginx of our own (no root).

`parse` turns the config text into directives (nginx's own grammar: words, quoted strings,
`;`, blocks, `#` comments), `location_for` picks the location nginx would pick for a path,
and `effective` answers "which value applies there" with nginx's inheritance rules. Tests
assert on those rather than on the raw text, and `site_variant` renders the documented example
(queue_manager/deploy/nginx_site.py) with only the upstream, listen ports, certificate and ACME
webroot swapped out.

`Nginx` runs that variant with `-p <tmp>`: pid, logs and temp directories all inside the test's
folder, `daemon off` so the process we start is the master we stop, never the system nginx.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from queue_manager.deploy.nginx_site import EXAMPLE, SiteOptions, render_site
from tests.support.paths import ROOT

SITE_CONF = ROOT / "nginx" / "comfy-workshop.conf"  # render_site(EXAMPLE), committed


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


# --- Parsing ---------------------------------------------------------------------------------


@dataclass
class Directive:
    name: str
    args: list[str]  # as written, quotes included
    block: list[Directive] | None = None

    @property
    def values(self) -> list[str]:
        """The arguments with their quotes removed."""
        return [_unquote(a) for a in self.args]

    def children(self, name: str) -> list[Directive]:
        return [d for d in self.block or () if d.name == name]

    def child(self, name: str) -> Directive:
        found = self.children(name)
        assert len(found) == 1, f"expected one {name!r} in {self.name} {self.args}, got {found}"
        return found[0]


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    return token


def _tokens(text: str) -> Iterator[str]:
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "{};":
            yield c
            i += 1
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise ValueError(f"unterminated string at offset {i}")
            yield text[i : j + 1]
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in ";{}":
                if text[j] == "$" and text[j + 1 : j + 2] == "{":  # ${variable}
                    j = text.index("}", j) + 1
                else:
                    j += 1
            yield text[i:j]
            i = j


def parse(text: str) -> list[Directive]:
    stack: list[list[Directive]] = [[]]
    words: list[str] = []
    for token in _tokens(text):
        if token == ";":
            if not words:
                raise ValueError("empty directive")
            stack[-1].append(Directive(words[0], words[1:]))
            words = []
        elif token == "{":
            if not words:
                raise ValueError("block without a name")
            block: list[Directive] = []
            stack[-1].append(Directive(words[0], words[1:], block))
            stack.append(block)
            words = []
        elif token == "}":
            if words or len(stack) == 1:
                raise ValueError("unbalanced '}' or a directive without ';'")
            stack.pop()
        else:
            words.append(token)
    if words or len(stack) != 1:
        raise ValueError("unterminated directive or block")
    return stack[0]


def render(directives: list[Directive], indent: int = 0) -> str:
    out = []
    pad = "    " * indent
    for d in directives:
        head = " ".join([d.name, *d.args])
        if d.block is None:
            out.append(f"{pad}{head};\n")
        else:
            out.append(f"{pad}{head} {{\n{render(d.block, indent + 1)}{pad}}}\n")
    return "".join(out)


# --- Questions nginx answers at run time -----------------------------------------------------


def https_server(site: list[Directive]) -> Directive:
    (server,) = [s for s in site if s.name == "server" and _listens_tls(s)]
    return server


def http_server(site: list[Directive]) -> Directive:
    (server,) = [s for s in site if s.name == "server" and not _listens_tls(s)]
    return server


def _listens_tls(server: Directive) -> bool:
    return any("ssl" in d.args for d in server.children("listen"))


def _modifier_and_pattern(location: Directive) -> tuple[str, str]:
    values = location.values
    return (values[0], values[1]) if len(values) == 2 else ("", values[0])


def location_for(server: Directive, path: str) -> Directive:
    """The location nginx picks: `=` exact, else the longest prefix if it is `^~`, else the
    first matching regex in file order, else the longest prefix."""
    longest: tuple[str, Directive] | None = None
    for loc in server.children("location"):
        modifier, pattern = _modifier_and_pattern(loc)
        if modifier == "=" and path == pattern:
            return loc
        prefix = modifier in ("", "^~") and path.startswith(pattern)
        if prefix and (longest is None or len(pattern) > len(longest[0])):
            longest = (pattern, loc)
    if longest and _modifier_and_pattern(longest[1])[0] == "^~":
        return longest[1]
    for loc in server.children("location"):
        modifier, pattern = _modifier_and_pattern(loc)
        flags = re.IGNORECASE if modifier == "~*" else 0
        if modifier in ("~", "~*") and re.search(pattern, path, flags):
            return loc
    assert longest, f"no location for {path}"
    return longest[1]


def effective(server: Directive, path: str, name: str) -> list[list[str]]:
    """Each occurrence of `name` that applies to `path` (values unquoted), following nginx's
    inheritance: a level that has the directive at all replaces everything from above."""
    for level in (location_for(server, path), server):
        found = level.children(name)
        if found:
            return [d.values for d in found]
    return []


def single(server: Directive, path: str, name: str) -> str | None:
    values = effective(server, path, name)
    if not values:
        return None
    assert len(values) == 1 and len(values[0]) == 1, f"{name} at {path}: {values}"
    return values[0][0]


def proxy_headers(server: Directive, path: str) -> dict[str, str]:
    return {k.lower(): v for k, v in effective(server, path, "proxy_set_header")}


_TIME_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}


def seconds(value: str) -> float:
    parts = re.findall(r"(\d+)(ms|[smhdw]?)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not an nginx time: {value!r}"
    return sum(int(n) * _TIME_UNITS[u or "s"] for n, u in parts)


def size(value: str) -> int:
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert m, f"not an nginx size: {value!r}"
    return int(m[1]) * _SIZE_UNITS[m[2].lower()]


# --- The test variant ------------------------------------------------------------------------


@dataclass(frozen=True)
class Ports:
    http: int
    https: int
    upstream: int


def site_options(
    ports: Ports,
    cert: Path,
    key: Path,
    acme_root: Path,
    upstreams: tuple[str, ...] | None = None,
) -> SiteOptions:
    """The documented example (nginx/comfy-workshop.conf) with only what must differ here:
    the upstream(s), the listen ports (loopback, IPv4 only; browsers still see 443), the
    certificate and the ACME webroot."""
    return replace(
        EXAMPLE,
        upstreams=upstreams or (f"127.0.0.1:{ports.upstream}",),
        http_port=ports.http,
        https_port=ports.https,
        public_https_port=443,
        listen_address="127.0.0.1",
        ipv6=False,
        cert=str(cert),
        key=str(key),
        acme_webroot=str(acme_root),
    )


def site_variant(
    ports: Ports,
    cert: Path,
    key: Path,
    acme_root: Path,
    upstreams: tuple[str, ...] | None = None,
) -> list[Directive]:
    """The site as `comfy-workshop nginx-site` renders it for `site_options`, parsed."""
    return parse(render_site(site_options(ports, cert, key, acme_root, upstreams)))


# --- A self-signed certificate -----------------------------------------------------------------


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """(certificate, key) for `host` (an IP address), valid two days; `cryptography` when it
    is installed, else the openssl command line."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        _with_cryptography(cert, key, host)
    except ImportError:
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RuntimeError(
                "neither the cryptography package nor openssl is available"
            ) from None
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "2", "-subj", "/CN=comfy-workshop test",
             "-addext", f"subjectAltName=IP:{host}", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
    return cert, key


def _with_cryptography(cert_path: Path, key_path: Path, host: str) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "comfy-workshop test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


# --- Running it ------------------------------------------------------------------------------

# What /etc/nginx/mime.types would give the few files nginx serves itself (ACME challenges).
_MIME_TYPES = """
types {
    text/html html;
    text/css css;
    application/javascript js mjs;
    application/json json;
    image/png png;
    text/plain txt;
}
default_type application/octet-stream;
"""


@dataclass
class Nginx:
    """One nginx master we start (foreground, our user) under `prefix`, and only we stop."""

    binary: str
    prefix: Path
    site: list[Directive]
    ports: Ports
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for sub in ("logs", "temp"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
        self._write_site()
        (self.prefix / "nginx.conf").write_text(
            "daemon off;\n"
            "master_process on;\n"
            f"{_same_user()}"
            "worker_processes 1;\n"
            "worker_shutdown_timeout 5s;\n"  # a forgotten socket never holds the shutdown
            f"pid {self.prefix / 'nginx.pid'};\n"
            f"error_log {self.error_log} info;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            f"{_MIME_TYPES}"
            f"    access_log {self.prefix / 'logs' / 'access.log'};\n"
            # Compiled-in defaults live under /var/lib/nginx, which we may not (and must not)
            # write to: every temp path goes into our folder.
            + "".join(
                f"    {kind}_temp_path {self.temp(kind)};\n"
                for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            )
            + f"    include {self.prefix / 'site.conf'};\n"
            "}\n"
        )

    def _write_site(self) -> None:
        (self.prefix / "site.conf").write_text(render(self.site))

    @property
    def error_log(self) -> Path:
        return self.prefix / "logs" / "error.log"

    def temp(self, kind: str) -> Path:
        return self.prefix / "temp" / kind

    def temp_files(self) -> list[Path]:
        """Files nginx spooled to disk (request or response bodies); directories excluded."""
        return [p for p in (self.prefix / "temp").rglob("*") if p.is_file()]

    def command(self, *extra: str) -> list[str]:
        cmd = [self.binary, "-p", f"{self.prefix}/", "-c", str(self.prefix / "nginx.conf")]
        if _supports_early_error_log(self.binary):
            # The startup log would otherwise be the compiled-in /var/log/nginx/error.log.
            cmd += ["-e", str(self.error_log)]
        return [*cmd, *extra]

    def check(self) -> subprocess.CompletedProcess[str]:
        """`nginx -t` on our files."""
        return subprocess.run(
            self.command("-t"), capture_output=True, text=True, timeout=30, check=False
        )

    def logs(self) -> str:
        return self.error_log.read_text() if self.error_log.exists() else "(no error log)"

    def start(self, timeout: float = 15.0, attempts: int = 3) -> None:
        """Runs nginx until its pid file names it (written once it has bound its ports). A
        port some other process took since we picked it: new ports, another try."""
        for attempt in range(attempts):
            try:
                self._start(timeout)
                return
            except PortTaken:
                if attempt == attempts - 1:
                    raise
                self.ports = Ports(
                    http=free_port(), https=free_port(), upstream=self.ports.upstream
                )
                for server, port in ((http_server(self.site), self.ports.http),
                                     (https_server(self.site), self.ports.https)):  # fmt: skip
                    server.child("listen").args[0] = f"127.0.0.1:{port}"
                self._write_site()

    def _start(self, timeout: float) -> None:
        pid_file = self.prefix / "nginx.pid"
        pid_file.unlink(missing_ok=True)
        self.process = process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while not _names(pid_file, process.pid):
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                self.process = None
                if process.stderr:
                    process.stderr.close()
                failure = f"nginx exited ({process.returncode}): {stderr}\n{self.logs()}"
                if "Address already in use" in failure:
                    raise PortTaken(failure)
                raise RuntimeError(failure)
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not start within {timeout} s:\n{self.logs()}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Graceful quit (SIGQUIT) of the master we started, then SIGTERM, then SIGKILL."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            for sig, wait in ((signal.SIGQUIT, 10), (signal.SIGTERM, 5)):
                if process.poll() is not None:
                    break
                process.send_signal(sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(wait)
            if process.poll() is None:
                process.kill()
                process.wait(5)
        finally:
            if process.stderr:
                process.stderr.close()


def _same_user() -> str:
    """Workers run as whoever runs the tests. As root, nginx would otherwise switch them to
    `nobody`, who cannot read our temp folder; as anyone else it cannot switch (and warns)."""
    if os.geteuid() != 0:
        return ""
    import grp
    import pwd

    return f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};\n"


class PortTaken(RuntimeError):
    """Another process bound a port between our choosing it and nginx binding it."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _names(pid_file: Path, pid: int) -> bool:
    try:
        return pid_file.read_text().strip() == str(pid)
    except FileNotFoundError:
        return False


_early_log: dict[str, bool] = {}


def _supports_early_error_log(binary: str) -> bool:
    """`-e file` exists from nginx 1.19.5 on (Ubuntu 22.04 still ships 1.18)."""
    if binary not in _early_log:
        usage = subprocess.run([binary, "-h"], capture_output=True, text=True, check=False)
        _early_log[binary] = "-e filename" in usage.stdout + usage.stderr
    return _early_log[binary]
