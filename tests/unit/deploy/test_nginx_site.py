"""The nginx site renderer (pure): every option lands where nginx reads it, and no option can
smuggle nginx syntax in. The rendering is read back with the nginx grammar parser the nginx
tests use (tests/support/nginx.py), never by searching the text."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from queue_manager.deploy.nginx_site import (
    EXAMPLE,
    MiB,
    SiteOptionError,
    SiteOptions,
    command_line,
    render_site,
)
from tests.support.nginx import (
    Directive,
    effective,
    http_server,
    https_server,
    location_for,
    parse,
    proxy_headers,
    single,
)

PROXIED = ["/user001/", "/user001/ws", "/admin/ws", "/user001/api/view", "/worker/v1/claim",
           "/metrics"]  # fmt: skip


def site(**changes: Any) -> list[Directive]:
    return parse(render_site(replace(EXAMPLE, **changes)))


def upstream_servers(directives: list[Directive]) -> list[str]:
    (upstream,) = [d for d in directives if d.name == "upstream"]
    return [d.args[0] for d in upstream.children("server")]


def listens(server: Directive) -> list[list[str]]:
    return [d.args for d in server.children("listen")]


def test_defaults_are_the_host_deployment() -> None:
    options = SiteOptions(domains=("workshop.example.org",))
    directives = parse(render_site(options))
    assert [d.name for d in directives] == ["upstream", "map", "server", "server"]
    assert upstream_servers(directives) == ["127.0.0.1:8188"]
    plain, tls = http_server(directives), https_server(directives)
    assert listens(plain) == [["80"], ["[::]:80"]]
    assert listens(tls) == [["443", "ssl", "http2"], ["[::]:443", "ssl", "http2"]]
    live = "/etc/letsencrypt/live/workshop.example.org"
    assert tls.child("ssl_certificate").args == [f"{live}/fullchain.pem"]
    assert tls.child("ssl_certificate_key").args == [f"{live}/privkey.pem"]
    acme = location_for(plain, "/.well-known/acme-challenge/t")
    assert acme.child("root").args == ["/var/www/letsencrypt"]
    assert effective(tls, "/metrics", "allow") == [["127.0.0.1"], ["::1"]]
    assert effective(tls, "/metrics", "deny") == [["all"]]
    assert single(tls, "/user001/api/upload/image", "client_max_body_size") == "110m"
    assert location_for(plain, "/x").child("return").args == ["301", "https://$host$request_uri"]
    assert not tls.children("resolver")
    for path in PROXIED:
        assert location_for(tls, path).child("proxy_pass").args == ["http://comfy_workshop"]
        assert proxy_headers(tls, path)["host"] == "$host"


def test_every_option_lands_where_nginx_reads_it() -> None:
    directives = site(
        domains=("a.example.org", "b.example.org"),
        cert="/etc/nginx/certs/site.crt",
        key="/etc/nginx/certs/site.key",
        upstreams=("10.1.2.3:9000",),
        http_port=8080,
        https_port=8443,
        acme_webroot="/srv/acme",
        metrics_allow=("10.0.0.0/8", "192.0.2.7"),
        max_upload_bytes=10 * MiB,
        listen_address="127.0.0.1",
    )
    plain, tls = http_server(directives), https_server(directives)
    assert upstream_servers(directives) == ["10.1.2.3:9000"]
    for server in (plain, tls):
        assert server.child("server_name").args == ["a.example.org", "b.example.org"]
    assert listens(plain) == [["127.0.0.1:8080"]]
    assert listens(tls) == [["127.0.0.1:8443", "ssl", "http2"]]
    assert tls.child("ssl_certificate").args == ["/etc/nginx/certs/site.crt"]
    assert tls.child("ssl_certificate_key").args == ["/etc/nginx/certs/site.key"]
    assert location_for(plain, "/.well-known/acme-challenge/t").child("root").args == ["/srv/acme"]
    assert effective(tls, "/metrics", "allow") == [["10.0.0.0/8"], ["192.0.2.7"]]
    assert single(tls, "/user001/api/upload/image", "client_max_body_size") == "11m"
    # Browsers use port 8443: Host keeps it (the app compares Origin with it), and the
    # redirect names it.
    assert proxy_headers(tls, "/user001/")["host"] == "$http_host"
    assert proxy_headers(tls, "/user001/ws")["host"] == "$http_host"
    assert location_for(plain, "/x").child("return").args == [
        "301",
        "https://$host:8443$request_uri",
    ]


def test_a_public_port_other_than_the_listen_port_decides_host_and_redirect() -> None:
    directives = site(https_port=8443, public_https_port=443, ipv6=False)
    tls = https_server(directives)
    assert listens(tls) == [["8443", "ssl", "http2"]]
    assert proxy_headers(tls, "/user001/")["host"] == "$host"
    redirect = location_for(http_server(directives), "/x").child("return").args
    assert redirect == ["301", "https://$host$request_uri"]


def test_several_upstreams_are_replicas_of_one_upstream_block() -> None:
    directives = site(upstreams=("127.0.0.1:8188", "127.0.0.1:8189", "[::1]:8190"))
    assert upstream_servers(directives) == ["127.0.0.1:8188", "127.0.0.1:8189", "[::1]:8190"]
    (upstream,) = [d for d in directives if d.name == "upstream"]
    assert upstream.child("keepalive").args == ["16"]
    assert not upstream.children("ip_hash") and not upstream.children("hash")  # no stickiness


def test_a_resolver_re_resolves_the_upstream_name_through_a_variable() -> None:
    directives = site(upstreams=("queue-manager:8188",), resolver=("127.0.0.11",))
    assert not [d for d in directives if d.name == "upstream"]
    tls = https_server(directives)
    assert tls.child("resolver").args == ["127.0.0.11", "valid=10s"]
    assert tls.child("set").args == ["$cw_upstream", "queue-manager:8188"]
    for path in PROXIED:
        assert location_for(tls, path).child("proxy_pass").args == ["http://$cw_upstream"]


def test_without_ipv6_only_the_ipv4_listen_lines_remain() -> None:
    directives = site(ipv6=False)
    assert listens(http_server(directives)) == [["80"]]
    assert listens(https_server(directives)) == [["443", "ssl", "http2"]]


@pytest.mark.parametrize(
    ("given", "rendered"),
    [("Workshop.Example.ORG", "workshop.example.org"), ("192.0.2.1", "192.0.2.1"),
     ("2001:db8::1", "[2001:db8::1]"), ("[::1]", "[::1]"), ("localhost", "localhost")],
)  # fmt: skip
def test_domains_are_dns_names_or_ip_addresses(given: str, rendered: str) -> None:
    options = SiteOptions(domains=(given,))
    assert options.domains == (rendered,)
    assert https_server(parse(render_site(options))).child("server_name").args == [rendered]
    assert options.cert == f"/etc/letsencrypt/live/{rendered.strip('[]')}/fullchain.pem"


@pytest.mark.parametrize(
    ("max_upload", "limit"), [(100 * MiB, "110m"), (10 * MiB, "11m"), (1, "1m"), (MiB + 1, "2m")]
)
def test_the_participant_body_limit_is_a_bit_above_the_apps(max_upload: int, limit: str) -> None:
    assert SiteOptions(domains=("a.org",), max_upload_bytes=max_upload).participant_body_limit == (
        limit
    )


INJECTIONS: list[tuple[str, object]] = [
    ("domains", ("a.org;",)),
    ("domains", ("a.org b.org",)),
    ("domains", ("a.org; } server { listen 81",)),
    ("domains", ('a.org"',)),
    ("domains", ("a.org'",)),
    ("domains", ("$host",)),
    ("domains", ("a.org\n",)),
    ("domains", ("a{b}.org",)),
    ("domains", ("-a.org",)),
    ("domains", ("*.a.org",)),
    ("domains", ("a..org",)),
    ("domains", ("a" * 64 + ".org",)),
    ("domains", ("",)),
    ("domains", ()),
    ("cert", "relative/fullchain.pem"),
    ("cert", "/a b/fullchain.pem"),
    ("cert", "/a;b.pem"),
    ("cert", "/a{b}.pem"),
    ("cert", '/a".pem'),
    ("key", "/a'.pem"),
    ("key", "/$document_root/key.pem"),
    ("key", "/a#b.pem"),
    ("key", "/a\\b.pem"),
    ("key", "/a\nb.pem"),
    ("acme_webroot", "/srv/acme; autoindex on"),
    ("upstreams", ("127.0.0.1:8188;",)),
    ("upstreams", ("127.0.0.1:8188 backup",)),
    ("upstreams", ("127.0.0.1",)),
    ("upstreams", ("127.0.0.1:99999",)),
    ("upstreams", ("127.0.0.1:0",)),
    ("upstreams", ("[::1:8188",)),
    ("upstreams", ("[nothost]:8188",)),
    ("upstreams", ("a}b:8188",)),
    ("upstreams", ()),
    ("metrics_allow", ("all",)),
    ("metrics_allow", ("10.0.0.1; allow all",)),
    ("resolver", ("dns.example.org",)),
    ("resolver", ("127.0.0.11; x",)),
    ("resolver", ("127.0.0.11:99999",)),
    ("listen_address", "0.0.0.0; x"),
    ("listen_address", "localhost"),
    ("http_port", 0),
    ("https_port", 65536),
    ("https_port", True),
    ("https_port", "443"),
    ("public_https_port", 0),
    ("max_upload_bytes", 0),
    ("max_upload_bytes", 1.5),
]


@pytest.mark.parametrize(("name", "value"), INJECTIONS, ids=lambda v: repr(v)[:40])
def test_options_that_are_not_plain_values_are_refused(name: str, value: object) -> None:
    with pytest.raises(SiteOptionError):
        replace(EXAMPLE, **{name: value})


def test_inconsistent_options_are_refused() -> None:
    with pytest.raises(SiteOptionError, match="both 8080"):
        replace(EXAMPLE, http_port=8080, https_port=8080)
    with pytest.raises(SiteOptionError, match="one upstream"):
        replace(EXAMPLE, upstreams=("a:1", "b:2"), resolver=("127.0.0.11",))


def test_the_header_names_the_command_that_renders_it_again() -> None:
    options = replace(
        EXAMPLE,
        domains=("a.org", "b.org"),
        upstreams=("qm:8188",),
        resolver=("127.0.0.11",),
        ipv6=False,
        cert="/c/f.pem",
        key="/c/k.pem",
    )
    assert command_line(options) == (
        "comfy-workshop nginx-site --domain a.org --domain b.org --cert /c/f.pem --key /c/k.pem "
        "--upstream qm:8188 --resolver 127.0.0.11 --no-ipv6"
    )
    assert f"# Rendered by: {command_line(options)}\n" in render_site(options)
    assert command_line(EXAMPLE) == "comfy-workshop nginx-site --domain workshop.example.org"
