"""The nginx site in front of the queue manager (TLS, WebSockets, worker uploads), rendered from
a few options. Pure: no file, no process, no clock; `comfy-workshop nginx-site` writes and checks
what this returns, and nginx/comfy-workshop.conf is its rendering of `EXAMPLE`.

Stable API (docker compose and the tests build on it):

    SiteOptions(
        domains=("workshop.example.org",),   # server_name: one or more DNS names or IPs
        cert="", key="",                     # default: certbot's live/<first domain>/ pair
        upstreams=("127.0.0.1:8188",),       # HOST:PORT of each queue-manager replica
        http_port=80, https_port=443,        # where nginx listens
        public_https_port=None,              # the port browsers use (default: https_port)
        listen_address=None,                 # an IP to listen on (default: all addresses)
        ipv6=True,                           # also listen on [::] (without listen_address)
        acme_webroot="/var/www/letsencrypt", # certbot --webroot -w DIR
        metrics_allow=("127.0.0.1", "::1"),  # who may read /metrics (IPs or networks)
        resolver=(),                         # DNS server(s) to re-resolve the upstream name
        max_upload_bytes=100 MiB,            # CW_MAX_UPLOAD_BYTES; nginx allows 10 % more
    )
    render_site(options) -> str              # the site file (goes inside nginx's http {})

Every value is checked when `SiteOptions` is made (`SiteOptionError` names the option): the
output is nginx syntax, so no value may carry a space, `;`, a brace, a quote or a `$`.

Several upstreams are several replicas: nginx spreads requests over them round robin, sockets
included; any replica serves any socket and any job (events go through Redis), so no
stickiness. In a container, `upstreams=("queue-manager:8188",)` names every replica at once:
without a resolver nginx 1.22 resolves the name once, at start, uses all its A records, and
refuses to start while the name does not resolve; with `resolver=("127.0.0.11",)` (Docker's
DNS) it asks again every 10 s, so replicas added or restarted later are reached, at the cost of
keepalive connections to the app (a resolved name has no `upstream` block to keep them in).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

MiB = 2**20
DEFAULT_UPSTREAM = "127.0.0.1:8188"
CERTBOT_LIVE = "/etc/letsencrypt/live"
UPSTREAM_NAME = "comfy_workshop"  # the upstream block's name
UPSTREAM_VARIABLE = "$cw_upstream"  # with a resolver: proxy_pass to this (re-resolved)

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# Upstream names may also have `_` (docker compose service names such as queue_manager).
_HOST_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_-]{1,63})*")
_PATH = re.compile(r"/[A-Za-z0-9._+@=,:~/-]*")


class SiteOptionError(ValueError):
    """An option that would make a wrong (or injected) site; the message names it."""


@dataclass(frozen=True)
class SiteOptions:
    domains: tuple[str, ...]
    cert: str = ""
    key: str = ""
    upstreams: tuple[str, ...] = (DEFAULT_UPSTREAM,)
    http_port: int = 80
    https_port: int = 443
    public_https_port: int | None = None
    listen_address: str | None = None
    ipv6: bool = True
    acme_webroot: str = "/var/www/letsencrypt"
    metrics_allow: tuple[str, ...] = ("127.0.0.1", "::1")
    resolver: tuple[str, ...] = ()
    max_upload_bytes: int = 100 * MiB

    def __post_init__(self) -> None:
        domains = tuple(_domain(d) for d in _several("domain", self.domains))
        first = domains[0].strip("[]")
        fixed = {
            "domains": domains,
            "cert": _path("cert", self.cert or f"{CERTBOT_LIVE}/{first}/fullchain.pem"),
            "key": _path("key", self.key or f"{CERTBOT_LIVE}/{first}/privkey.pem"),
            "upstreams": tuple(_upstream(u) for u in _several("upstream", self.upstreams)),
            "acme_webroot": _path("acme_webroot", self.acme_webroot),
            "metrics_allow": tuple(
                _network(a) for a in _strings("metrics_allow", self.metrics_allow)
            ),
            "resolver": tuple(_resolver(r) for r in _strings("resolver", self.resolver)),
            "listen_address": _listen_address(self.listen_address),
        }
        for name, value in fixed.items():
            object.__setattr__(self, name, value)
        for name in ("http_port", "https_port", "public_https_port"):
            _port(name, getattr(self, name))
        if self.http_port == self.https_port:
            raise SiteOptionError(f"http_port and https_port are both {self.http_port}")
        if self.resolver and len(self.upstreams) != 1:
            raise SiteOptionError(
                "a resolver re-resolves one upstream name (its A records are the replicas): "
                "give one upstream with it, or several without it"
            )
        if isinstance(self.max_upload_bytes, bool) or not isinstance(self.max_upload_bytes, int):
            raise SiteOptionError(f"max_upload_bytes must be an integer: {self.max_upload_bytes!r}")
        if self.max_upload_bytes < 1:
            raise SiteOptionError(f"max_upload_bytes must be positive: {self.max_upload_bytes}")

    @property
    def public_port(self) -> int:
        return self.public_https_port or self.https_port

    @property
    def participant_body_limit(self) -> str:
        """client_max_body_size: the app's limit plus 10 %, in whole MiB."""
        total = self.max_upload_bytes + self.max_upload_bytes // 10
        return f"{-(-total // MiB)}m"


# --- Validation ------------------------------------------------------------------------------


def _strings(name: str, values: object) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    if not isinstance(values, (tuple, list)) or not all(isinstance(v, str) for v in values):
        raise SiteOptionError(f"{name}: expected a list of strings, got {values!r}")
    return tuple(values)


def _several(name: str, values: object) -> tuple[str, ...]:
    found = _strings(name, values)
    if not found:
        raise SiteOptionError(f"at least one {name} is needed")
    return found


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _domain(text: str) -> str:
    """A DNS name (lowercased) or an IP address (IPv6 in brackets, as server_name wants it)."""
    address = _ip(text.strip("[]") if text.startswith("[") else text)
    if address is not None:
        return f"[{address}]" if address.version == 6 else str(address)
    name = text.lower().rstrip(".") if text.endswith(".") and len(text) > 1 else text.lower()
    if len(name) > 253 or not _DNS_NAME.fullmatch(name):
        raise SiteOptionError(
            f"domain {text!r} is not a host name (letters, digits, '-' and dots) or an IP address"
        )
    return name


def _upstream(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise SiteOptionError(f"upstream {text!r} must be HOST:PORT (e.g. {DEFAULT_UPSTREAM})")
    _port("upstream port", int(port))
    if host.startswith("[") and host.endswith("]"):
        address = _ip(host[1:-1])
        if address is None or address.version != 6:
            raise SiteOptionError(f"upstream {text!r}: {host} is not an IPv6 address")
        return f"[{address}]:{int(port)}"
    if _ip(host) is None and not (len(host) <= 253 and _HOST_NAME.fullmatch(host.lower())):
        raise SiteOptionError(
            f"upstream {text!r}: {host!r} is not a host name or an IP address "
            "(IPv6 goes in brackets: [::1]:8188)"
        )
    return f"{host.lower()}:{int(port)}"


def _resolver(text: str) -> str:
    """A DNS server nginx asks: an IP address, with an optional port (IPv6 in brackets)."""
    bracketed = re.fullmatch(r"\[([^\]]+)\](?::(\d{1,5}))?", text)
    host, port = (bracketed[1], bracketed[2]) if bracketed else (text, None)
    if not bracketed and text.count(":") == 1:
        host, port = text.split(":")
    address = _ip(host)
    if address is None or (port is not None and not port.isdigit()):
        raise SiteOptionError(
            f"resolver {text!r} must be an IP address, optionally with :PORT (e.g. 127.0.0.11)"
        )
    shown = f"[{address}]" if address.version == 6 else str(address)
    if port is None:
        return shown
    _port("resolver port", int(port))
    return f"{shown}:{int(port)}"


def _network(text: str) -> str:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise SiteOptionError(
            f"metrics_allow {text!r} is not an IP address or network (e.g. 10.0.0.0/8)"
        ) from None
    single = network.prefixlen == network.max_prefixlen
    return str(network.network_address) if single else str(network)


def _listen_address(text: str | None) -> str | None:
    if text is None:
        return None
    address = _ip(text.strip("[]"))
    if address is None:
        raise SiteOptionError(f"listen_address {text!r} is not an IP address")
    return f"[{address}]" if address.version == 6 else str(address)


def _path(name: str, text: str) -> str:
    if not isinstance(text, str) or not _PATH.fullmatch(text):
        raise SiteOptionError(
            f"{name} {text!r} must be an absolute path of letters, digits and ._+@=,:~/- "
            "(no spaces, quotes, ';', braces or '$')"
        )
    return text


def _port(name: str, value: object) -> None:
    if value is None and name == "public_https_port":
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise SiteOptionError(f"{name} must be a port number (1-65535): {value!r}")


# The documented example: nginx/comfy-workshop.conf is `render_site(EXAMPLE)`.
EXAMPLE = SiteOptions(domains=("workshop.example.org",))


# --- Rendering -------------------------------------------------------------------------------


def render_site(options: SiteOptions) -> str:
    """The whole site file for `options` (already checked when they were made)."""
    return "\n".join(
        (
            _header(options),
            _upstream_block(options),
            _UPGRADE_MAP,
            _http_server(options),
            _https_server(options),
        )
    )


def command_line(options: SiteOptions) -> str:
    """The `comfy-workshop nginx-site` command that renders `options` (for the file's header)."""
    default = SiteOptions(domains=options.domains)
    words = [f"--domain {d}" for d in options.domains]
    flags = (
        ("--cert", "cert"), ("--key", "key"), ("--http-port", "http_port"),
        ("--https-port", "https_port"), ("--public-port", "public_https_port"),
        ("--listen-address", "listen_address"), ("--acme-webroot", "acme_webroot"),
    )  # fmt: skip
    for flag, name in flags:
        if getattr(options, name) != getattr(default, name):
            words.append(f"{flag} {getattr(options, name)}")
    for flag, name in (("--upstream", "upstreams"), ("--metrics-allow", "metrics_allow")):
        if getattr(options, name) != getattr(default, name):
            words += [f"{flag} {value}" for value in getattr(options, name)]
    words += [f"--resolver {r}" for r in options.resolver]
    if not options.ipv6:
        words.append("--no-ipv6")
    env = "" if options.max_upload_bytes == default.max_upload_bytes else (
        f"CW_MAX_UPLOAD_BYTES={options.max_upload_bytes} "
    )  # fmt: skip
    return f"{env}comfy-workshop nginx-site {' '.join(words)}"


def _header(o: SiteOptions) -> str:
    return f"""\
# Comfy Workshop: nginx in front of the queue manager, with TLS.
#
# Rendered by: {command_line(o)}
# Other host names, certificate, upstreams, ports or webroot: render it again (see
# `comfy-workshop nginx-site --help`) rather than editing values by hand.
#
# A site file: it goes inside nginx's `http {{}}` block, so drop it into
# /etc/nginx/sites-enabled/ (Debian/Ubuntu) or /etc/nginx/conf.d/ (other layouts).
# See nginx/README.md for installing it, getting a certificate and testing it.
#
# tests/nginx/test_nginx.py runs this site in a real nginx (rendered with throwaway ports,
# upstream, certificate and webroot), and checks that nginx/comfy-workshop.conf is the
# rendering of the documented example.
"""


def _proxy_target(o: SiteOptions) -> str:
    return f"http://{UPSTREAM_VARIABLE if o.resolver else UPSTREAM_NAME}"


def _upstream_block(o: SiteOptions) -> str:
    if o.resolver:
        return f"""\
# --- Upstream -------------------------------------------------------------------------------

# {o.upstreams[0]} is resolved while nginx runs (see `resolver` in the HTTPS server), so
# there is no `upstream` block: every A record of the name is a replica, used round robin.
"""
    servers = "".join(f"    server {u};\n" for u in o.upstreams)
    replicas = (
        "    # Several replicas: requests and sockets are spread round robin; any replica serves\n"
        "    # any socket and any job (events go through Redis), so no stickiness is needed.\n"
        if len(o.upstreams) > 1
        else ""
    )
    return f"""\
# --- Upstream -------------------------------------------------------------------------------

upstream {UPSTREAM_NAME} {{
    # Where the queue manager listens (CW_HOST/CW_PORT). Keep it on loopback: the app
    # trusts X-Forwarded-For / X-Real-IP only from CW_TRUSTED_PROXIES (default: loopback).
{replicas}{servers}
    # Reuse connections to the app instead of one TCP handshake per request. Needs
    # proxy_http_version 1.1 and an empty Connection header (both set below).
    keepalive 16;
}}
"""


_UPGRADE_MAP = """\
# WebSocket upgrade: pass "Connection: upgrade" only when the client asked to upgrade.
# (The classic `$connection_upgrade` idiom, with our own variable name so it cannot clash with
# a map of the same name in another site file: nginx refuses duplicate map variables.)
map $http_upgrade $cw_connection_upgrade {
    default upgrade;
    ''      close;
}
"""


def _listens(o: SiteOptions, port: int, tls: str) -> str:
    if o.listen_address is not None:
        return f"    listen {o.listen_address}:{port}{tls};\n"
    lines = f"    listen {port}{tls};\n"
    return lines + (f"    listen [::]:{port}{tls};\n" if o.ipv6 else "")


def _names(o: SiteOptions) -> str:
    return " ".join(o.domains)


def _http_server(o: SiteOptions) -> str:
    port = "" if o.public_port == 443 else f":{o.public_port}"
    return f"""\
# --- Plain HTTP: certificate challenges, everything else redirected to HTTPS ----------------

server {{
{_listens(o, o.http_port, "")}    server_name {_names(o)};

    # Let's Encrypt HTTP-01 challenges (`certbot certonly --webroot -w {o.acme_webroot}`).
    # Served here, over plain HTTP, so renewals work while the site runs.
    location /.well-known/acme-challenge/ {{
        root {o.acme_webroot};
        default_type text/plain;
    }}

    location / {{
        # 301 is what browsers expect for "this site is HTTPS only". $host has no port, so
        # the target names the public HTTPS port when it is not the standard 443.
        return 301 https://$host{port}$request_uri;
    }}
}}
"""


def _resolver_lines(o: SiteOptions) -> str:
    if not o.resolver:
        return ""
    return f"""
    # Re-resolve the upstream name every 10 s (Docker's DNS: 127.0.0.11), so replicas that
    # start or move later are reached. Only a proxy_pass through a variable is resolved at run
    # time; a name in an `upstream` block is resolved once, at start (and nginx refuses to
    # start while it does not resolve).
    resolver {" ".join(o.resolver)} valid=10s;
    resolver_timeout 5s;
    set {UPSTREAM_VARIABLE} {o.upstreams[0]};
"""


# Too long for one line of the template.
_KEEPALIVE_CONNECTION = (
    '    proxy_set_header Connection "";'
    '  # keepalive to the upstream (nginx sends "close" by default)'
)


def _host_header(o: SiteOptions) -> tuple[str, str]:
    """The Host the app gets, and why: it compares the browser's Origin with it."""
    if o.public_port == 443:
        return "$host", (
            "    # $host is the name without the port, which matches the Origin of a site on the\n"
            "    # standard port 443.\n"
        )
    return "$http_host", (
        f"    # Published on port {o.public_port}: browsers send Origin https://<host>:"
        f"{o.public_port},\n"
        "    # so Host keeps the port the browser put in it ($http_host, not $host).\n"
    )


def _size(count: int) -> str:
    return f"{count // MiB} MiB" if count % MiB == 0 else f"{count} bytes"


def _forwarding(host: str, pad: str) -> str:
    return (
        f"{pad}proxy_set_header Host {host};\n"
        f"{pad}proxy_set_header X-Real-IP $remote_addr;\n"
        f"{pad}proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        f"{pad}proxy_set_header X-Forwarded-Proto $scheme;\n"
    )


def _https_server(o: SiteOptions) -> str:
    host, why = _host_header(o)
    target = _proxy_target(o)
    allow = "".join(f"        allow {a};\n" for a in o.metrics_allow)
    return f"""\
# --- HTTPS: the workshop --------------------------------------------------------------------

server {{
    # `http2` on the listen line works on every nginx from 1.9.5 on (1.25.1+ only warns and
    # prefers a separate `http2 on;`). Browsers open WebSockets over HTTP/1.1 regardless.
{_listens(o, o.https_port, " ssl http2")}    server_name {_names(o)};

    # Certificate (full chain) and private key.
    ssl_certificate     {o.cert};
    ssl_certificate_key {o.key};

    # Modern clients only (Mozilla "intermediate" profile); session cache saves handshakes
    # when 30 browsers reconnect at once.
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers off;
    ssl_session_cache shared:comfy_workshop_tls:10m;
    ssl_session_timeout 1d;
    ssl_session_tickets off;

    # Don't advertise the nginx version in headers and error pages.
    server_tokens off;
{_resolver_lines(o)}
    # --- Security headers -------------------------------------------------------------------
    # Conservative on purpose: the ComfyUI page loads ES module scripts (also from custom-node
    # extensions), inline styles, blob:/data: images and WebSockets, which a
    # Content-Security-Policy would break, so there is none.
    # `always` also adds them to error responses (403, 404, 413...).
    # NOTE: nginx drops ALL of these in any location that has an add_header of its own, so
    # the locations below deliberately have none.
    add_header X-Content-Type-Options "nosniff" always;       # no MIME sniffing of uploads
    add_header Referrer-Policy "same-origin" always;          # no workshop URLs to other sites
    add_header X-Frame-Options "SAMEORIGIN" always;           # no framing by other sites
    # HSTS: once HTTPS works for this host name, uncomment to make browsers refuse plain HTTP
    # for a year. Hard to undo for that host (browsers remember it), hence left to you.
    # add_header Strict-Transport-Security "max-age=31536000" always;

    # --- Compression ------------------------------------------------------------------------
    # The ComfyUI frontend is several MB of JS/CSS; object_info is a large JSON. text/html is
    # always compressed when gzip is on (listing it would only warn). Images and videos are
    # already compressed, so they are not listed.
    gzip on;
    gzip_vary on;           # caches must keep gzip and plain copies apart
    gzip_proxied any;       # compress even when the request came through another proxy
    gzip_min_length 1024;   # tiny responses don't gain anything
    gzip_comp_level 5;
    gzip_types text/css text/javascript application/javascript application/json
               application/manifest+json image/svg+xml text/plain;

    # --- Request bodies ---------------------------------------------------------------------
    # Participants upload images/videos of up to {_size(o.max_upload_bytes)} (CW_MAX_UPLOAD_BYTES,
    # ComfyUI's --max-upload-size). 10 % above it, so the app, not nginx, answers the
    # borderline cases with ComfyUI's own error message. Larger requests get 413 from nginx
    # before any byte of the body is read. The worker API lifts the limit (see /worker/v1/).
    client_max_body_size {o.participant_body_limit};

    # --- Proxying (inherited by every location below) ---------------------------------------
    # HTTP/1.1 to the app: needed for keepalive, WebSockets and streaming chunked uploads
    # (with 1.0 nginx would have to buffer a chunked body to learn its length).
    proxy_http_version 1.1;

    # The app compares the browser's Origin with Host (ComfyUI's CSRF rule), builds URLs from
    # Host, and logs the real client address: keep them.
{why}    # NOTE: a location with any proxy_set_header of its own inherits none of these (see /ws).
{_forwarding(host, "    ")}{_KEEPALIVE_CONNECTION}

    # Never spool responses to temporary files: a large download (an output video, a model
    # file) then streams at the client's pace instead of first filling the disk under
    # /var/lib/nginx. Small responses are still buffered in memory, which frees the app early.
    proxy_max_temp_file_size 0;

    # Everything else: pages, the participant API (/userNNN/api/...), /admin/, /login,
    # /healthz, /readyz. nginx's default 60 s timeouts suit these short requests.
    location / {{
        proxy_pass {target};
    }}

    # WebSockets: /userNNN/ws (each participant's ComfyUI socket) and /admin/ws (dashboard).
    # Any single path segment followed by /ws.
    location ~ ^/[^/]+/ws$ {{
        proxy_pass {target};

        # Upgrade handshake (hop-by-hop headers are not forwarded unless set explicitly).
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $cw_connection_upgrade;
        # Repeated from the server level: setting any proxy_set_header here drops all the
        # inherited ones.
{_forwarding(host, "        ")}
        # A socket stays open for the whole workshop; a quiet one (no job running, the tab in
        # the background) must not be cut after nginx's default 60 s.
        proxy_read_timeout 12h;
        proxy_send_timeout 12h;
    }}

    # Images, videos and previews shown in the page (/userNNN/api/view?filename=...; ComfyUI
    # also registers /userNNN/view). Streamed straight through: no buffering in nginx.
    location ~ ^/[^/]+/(api/)?view$ {{
        proxy_pass {target};
        proxy_buffering off;
    }}

    # Worker (GPU agent) API, authenticated by the app with worker tokens. `^~`: no regex
    # location above may take one of these paths.
    location ^~ /worker/v1/ {{
        proxy_pass {target};

        # Outputs (videos, 3D files, batches) can be many GB: no limit here (the app enforces
        # CW_MAX_OUTPUT_BYTES), and the body is streamed to the app as it arrives instead of
        # first being written whole to nginx's temp directory.
        client_max_body_size 0;
        proxy_request_buffering off;
        # Input files the agent downloads are streamed back the same way.
        proxy_buffering off;

        # POST /worker/v1/claim?wait=20 is a long poll (held up to CW_CLAIM_WAIT_SECONDS, 25 s
        # by default); a large upload may also take a while to be stored after its last byte.
        # Generous bounds, well above the default 60 s, so neither is ever cut mid-way.
        proxy_read_timeout 300s;
        proxy_send_timeout 300s;
        # Time allowed between two reads of a worker's upload (slow or busy uplinks).
        client_body_timeout 300s;
    }}

    # Prometheus metrics: internal only (render with --metrics-allow ADDR for your Prometheus).
    location = /metrics {{
{allow}        deny all;
        proxy_pass {target};
    }}
}}
"""
