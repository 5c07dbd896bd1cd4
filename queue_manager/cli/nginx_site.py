"""`comfy-workshop nginx-site`: the nginx site for this host's nginx (USE_HOST_NGINX=true), or for
an nginx container, rendered by `queue_manager.deploy.nginx_site`; checked with the real
`nginx -t` on a copy in a private temp prefix (the system's nginx and /etc/nginx are never
touched), written atomically (mode 0644) to --out or printed, and followed by the next steps.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from queue_manager.deploy.nginx_site import (
    CERTBOT_LIVE,
    SiteOptionError,
    SiteOptions,
    render_site,
)
from queue_manager.settings import Settings

CHECK_TIMEOUT = 30.0  # seconds for `nginx -t`
SNAKEOIL = ("/etc/ssl/certs/ssl-cert-snakeoil.pem", "/etc/ssl/private/ssl-cert-snakeoil.key")
# What /etc/nginx/mime.types gives the ACME files; only so that the wrapper is complete.
_MIME_TYPES = "types { text/plain txt; text/html html; }\ndefault_type application/octet-stream;"


def add_arguments(sub: Any) -> None:
    p = sub.add_parser(
        "nginx-site",
        help="render the nginx site (TLS, WebSockets, worker uploads) and check it with nginx -t",
    )
    p.add_argument("--domain", action="append", required=True, help="host name (repeatable)")
    p.add_argument("--cert", help="certificate (full chain); default: certbot's for the domain")
    p.add_argument("--key", help="private key; default: certbot's for the first domain")
    p.add_argument(
        "--upstream",
        action="append",
        metavar="HOST:PORT",
        help="a queue-manager replica (repeatable; default 127.0.0.1:8188)",
    )
    p.add_argument("--http-port", type=int, default=80, help="plain HTTP port (default 80)")
    p.add_argument("--https-port", type=int, default=443, help="HTTPS port (default 443)")
    p.add_argument(
        "--public-port", type=int, help="the HTTPS port browsers use, when a proxy or Docker "
        "publishes --https-port on another one (default: --https-port)",
    )  # fmt: skip
    p.add_argument("--listen-address", help="listen on this IP only (default: all)")
    p.add_argument("--no-ipv6", action="store_true", help="no [::] listen lines")
    p.add_argument(
        "--acme-webroot", default="/var/www/letsencrypt", help="certbot's --webroot folder"
    )
    p.add_argument(
        "--metrics-allow", action="append", metavar="ADDR", help="who may read /metrics "
        "(IP or network, repeatable; default loopback only)",
    )  # fmt: skip
    p.add_argument(
        "--resolver", action="append", metavar="ADDR", help="DNS server that re-resolves the "
        "upstream name every 10 s (Docker: 127.0.0.11)",
    )  # fmt: skip
    p.add_argument("--out", type=Path, help="write the site here (default: standard output)")
    p.add_argument("--no-check", action="store_true", help="do not run nginx -t on it")


def run_nginx_site_command(settings: Settings, args: argparse.Namespace) -> int:
    try:
        options = site_options(args, settings.max_upload_bytes)
    except SiteOptionError as exc:
        return _fail(str(exc), 2)
    text = render_site(options)
    if not args.no_check:
        check = check_site(text, find_nginx())
        if check.ok is False:
            return _fail(f"nginx -t refused the site: {check.message}", 1)
        print(f"nginx -t: {check.message}", file=sys.stderr)
    if args.out is None:
        sys.stdout.write(text)
    else:
        try:
            write_atomically(args.out, text)
        except OSError as exc:
            return _fail(
                f"cannot write {args.out}: {exc.strerror}: run it as root (sudo) or choose "
                "another --out",
                1,
            )
        print(f"wrote {args.out}", file=sys.stderr)
    print(next_steps(options, args.out), file=sys.stderr)
    return 0


def _fail(message: str, code: int) -> int:
    print(f"comfy-workshop nginx-site: {message}", file=sys.stderr)
    return code


def site_options(args: argparse.Namespace, max_upload_bytes: int) -> SiteOptions:
    if (args.cert is None) != (args.key is None):
        raise SiteOptionError("give --cert and --key together (or neither: certbot's pair)")
    given: dict[str, Any] = {
        "upstreams": args.upstream,
        "metrics_allow": args.metrics_allow,
        "resolver": args.resolver,
        "public_https_port": args.public_port,
        "listen_address": args.listen_address,
    }
    paths = {"cert": args.cert, "key": args.key, "acme_webroot": args.acme_webroot}
    chosen: dict[str, Any] = {
        "domains": tuple(args.domain),
        "http_port": args.http_port,
        "https_port": args.https_port,
        "ipv6": not args.no_ipv6,
        "max_upload_bytes": max_upload_bytes,
        **{k: tuple(v) if isinstance(v, list) else v for k, v in given.items() if v is not None},
        **{k: os.path.abspath(v) for k, v in paths.items() if v is not None},
    }
    return SiteOptions(**chosen)


# --- nginx -t --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    ok: bool | None  # None: skipped (no nginx here)
    message: str  # one line


def find_nginx() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def check_site(text: str, binary: str | None) -> Check:
    """`nginx -t` on `text` inside a minimal nginx.conf of our own, in a temp prefix."""
    if binary is None:
        return Check(None, "nginx is not installed here, the check was skipped (run "
                     "`sudo nginx -t` where the site is used)")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="cw-nginx-check-") as tmp:
        prefix = Path(tmp)
        (prefix / "logs").mkdir()
        (prefix / "temp").mkdir()
        (prefix / "site.conf").write_text(text)
        (prefix / "nginx.conf").write_text(_wrapper(prefix))
        command = [binary, "-t", "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf")]
        if _has_early_error_log(binary):
            command += ["-e", str(prefix / "logs" / "error.log")]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=CHECK_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            return Check(False, f"nginx -t did not answer in {CHECK_TIMEOUT:.0f} s; or --no-check")
    if done.returncode == 0:
        return Check(True, "the site is accepted")
    return Check(False, explain(done.stderr, str(prefix / "site.conf")))


def _wrapper(prefix: Path) -> str:
    """An nginx.conf around the site: every file nginx opens lies in `prefix`."""
    temp = "".join(
        f"    {kind}_temp_path {prefix / 'temp' / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"pid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'logs' / 'error.log'};\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        f"    {_MIME_TYPES}\n"
        f"    access_log {prefix / 'logs' / 'access.log'};\n"
        f"{temp}"
        f"    include {prefix / 'site.conf'};\n"
        "}\n"
    )


def _has_early_error_log(binary: str) -> bool:
    """`-e file` exists from nginx 1.19.5 on; without it the start-up log is the system's."""
    usage = subprocess.run(
        [binary, "-h"], capture_output=True, text=True, timeout=CHECK_TIMEOUT, check=False
    )
    return "-e filename" in usage.stdout + usage.stderr


# What to do about nginx's most likely refusals, by a phrase of its message.
_ADVICE = (
    ("cannot load certificate key", "nginx cannot read the key: run it as root (sudo), pass "
     "--cert/--key of a pair you can read, or skip the check with --no-check"),
    ("cannot load certificate", "the certificate files do not exist (yet): run certbot first "
     f"(nginx/README.md: start with Debian's snakeoil pair, --cert {SNAKEOIL[0]} --key "
     f"{SNAKEOIL[1]}), pass --cert/--key of your own, or skip the check with --no-check"),
    ("host not found in upstream", "this machine cannot resolve the --upstream name (a "
     "container's?): render it with --resolver ADDR, check it inside the container, or "
     "--no-check"),
)  # fmt: skip


_FIX_IT = "fix the option behind it, or skip the check with --no-check"


def explain(stderr: str, site_path: str) -> str:
    """nginx's error, in one line, with what to do about it."""
    lines = stderr.strip().splitlines() or ["(no message)"]
    # [emerg] is the refusal; an [alert] about the system's log file comes first as non-root.
    first = next((line for line in lines if "[emerg]" in line), lines[0])
    message = re.sub(r"^nginx: \[\w+\] ", "", first)
    message = message.split(" (SSL:")[0]  # OpenSSL's error stack: long and no help here
    message = message.replace(f" in {site_path}:", " at line ")
    advice = next((a for phrase, a in _ADVICE if phrase in message), _FIX_IT)
    return f"{message}; {advice}"


# --- Writing and what comes next ---------------------------------------------------------------


def write_atomically(path: Path, text: str) -> None:
    """Readers (a reloading nginx) see the old file or the new one, never half of one."""
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
            out.flush()
            os.fchmod(out.fileno(), 0o644)
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def next_steps(options: SiteOptions, out: Path | None) -> str:
    site = out.absolute() if out else Path("/etc/nginx/sites-available/comfy-workshop.conf")
    save = "" if out else f"  save it (--out {site}), then:\n"
    enable = (
        "" if site.parent.name in ("sites-enabled", "conf.d")
        else f"  sudo ln -sf {site} /etc/nginx/sites-enabled/\n"
    )  # fmt: skip
    domains = " ".join(f"-d {d}" for d in options.domains)
    certbot = (
        f"  sudo certbot certonly --webroot -w {options.acme_webroot} {domains} "
        '--deploy-hook "systemctl reload nginx"\n'
    )
    after = (
        "    (once; renewals then run by themselves)\n"
        if options.cert.startswith(CERTBOT_LIVE + "/")
        else "    then render it again without --cert/--key (certbot's pair) and reload\n"
    )
    return (
        "next steps on this host:\n"
        f"{save}{enable}"
        "  sudo rm -f /etc/nginx/sites-enabled/default    # it also claims port 80\n"
        f"  sudo mkdir -p {options.acme_webroot}\n"
        "  sudo nginx -t && sudo systemctl reload nginx\n"
        f"{certbot}{after}"
        "  the queue manager on loopback only, cookies over HTTPS only:\n"
        "    CW_HOST=127.0.0.1 CW_COOKIE_SECURE=true comfy-workshop serve"
    )
