"""What the nginx tests share: the nginx binary (skipped, saying so, where none is installed) and
a self-signed certificate for 127.0.0.1 that clients verify against."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.nginx import nginx_binary, self_signed


@pytest.fixture(scope="session")
def nginx_bin() -> str:
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install nginx): these tests run a real one")
    return binary


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(certificate, key): the certificate is also the CA file clients verify with."""
    return self_signed(tmp_path_factory.mktemp("tls"))
