"""Settings of the queue manager, from the environment (prefix CW_); built once at start-up."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, RedisDsn, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from queue_manager.core.cards import public_url
from queue_manager.core.ids import is_name
from queue_manager.core.scheduling import Mode
from queue_manager.core.throttling import LoginLimits, Network, parse_networks

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret"}
MAKE_A_SECRET = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def is_loopback(host: str) -> bool:
    """Only this machine can reach `host` (a name other than localhost may resolve anywhere)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CW_", env_file=".env", extra="ignore")

    # Where things are
    redis_url: RedisDsn = Field(
        default=RedisDsn("redis://127.0.0.1:6379/0"),
        description="Redis holding all state; `comfy-workshop up` starts a private one instead.",
    )
    key_prefix: str = Field(default="cw:", description="Prefix of every Redis key.")
    data_dir: Path = Field(default=Path("data"), description="Outputs, inputs, Redis AOF.")
    host: str = "127.0.0.1"
    port: int = 8188
    frontend_dir: Path | None = Field(
        default=None,
        description="A ComfyUI frontend's static folder to serve instead of the pinned "
        "comfyui-frontend-package (e.g. another version's `comfyui_frontend_package/static`).",
    )
    local_mode: bool = Field(
        default=True,
        description="Local/rehearsal mode: a placeholder secret is tolerated on a loopback "
        "address only (`comfy-workshop up` replaces it with one kept in DATA/secret_key).",
    )
    secret_key: SecretStr = Field(
        default=SecretStr("changeme"), description="Signs session cookies."
    )

    worker_tokens: SecretStr = Field(
        default=SecretStr(""),
        description="name:secret pairs (comma-separated) installed at start, for compose and "
        "rehearsals; otherwise use `comfy-workshop worker-token create`",
    )
    metrics_token: SecretStr = Field(
        default=SecretStr(""),
        description="Bearer token a Prometheus scraper sends for /metrics (at least 16 "
        "characters); empty: /metrics needs the instructor's login.",
    )
    public_api_docs: bool = Field(
        default=False,
        description="Serve /docs and /openapi.json without a login (else: the instructor only).",
    )
    session_hours: float = Field(default=12.0, gt=0, description="How long a login lasts.")
    cookie_secure: bool = Field(
        default=False, description="Send the session cookie over HTTPS only (behind TLS: true)."
    )
    public_url: str = Field(
        default="",
        description="The address participants open (https://workshop.example/), printed on "
        "login cards; empty: the address the dashboard is opened at (cards made there), the "
        "one `up` prints (`comfy-workshop cards`).",
    )

    # Logins: who is calling, and how wrong passwords are slowed (core/throttling.py)
    trusted_proxies: str = Field(
        default="127.0.0.0/8,::1",
        description="Addresses or networks (comma-separated) whose X-Forwarded-For/X-Real-IP "
        "name the client: the proxy in front (nginx on this host). Empty: trust none.",
    )
    login_free_failures: int = Field(
        default=5, ge=1, description="Wrong passwords per account and address before waits."
    )
    login_address_free_failures: int = Field(
        default=100, ge=1, description="Wrong passwords per address (all accounts): a room's NAT."
    )
    login_account_free_failures: int = Field(
        default=50, ge=1, description="Wrong passwords per account (all addresses): then slowed."
    )
    login_backoff_seconds: float = Field(
        default=1.0, gt=0, description="The first wait; it doubles with each further failure."
    )
    login_max_backoff_seconds: float = Field(default=60.0, gt=0, description="The longest wait.")
    login_failure_window_seconds: float = Field(
        default=900.0, gt=0, description="Failures are forgotten this long after the last one."
    )

    # Scheduling
    scheduling_mode: Mode = Mode.FAIR
    max_queued_per_user: int = Field(default=10, description="-1 for no limit; live-changeable.")
    max_running_per_user: int = Field(default=1, description="-1 for no limit; live-changeable.")
    max_attempts: int = Field(default=3, ge=1, description="Claims before a job is failed.")
    max_prompt_bytes: int = Field(default=4_000_000, ge=1024)
    max_prompt_nodes: int = Field(default=2000, ge=1)
    max_output_bytes: int = Field(
        default=50 * 2**30, ge=1, description="Largest single output a worker may upload."
    )
    max_upload_bytes: int = Field(
        default=100 * 2**20,
        ge=1,
        description="Largest file a participant may upload (ComfyUI's "
        "--max-upload-size), also told to the page in the feature flags.",
    )
    max_userdata_bytes: int = Field(
        default=20 * 2**20, ge=1, description="Largest workflow or file a participant may save."
    )
    max_workflow_bytes: int = Field(
        default=8 * 2**20, ge=1024, description="Largest workflow the instructor may publish."
    )

    # Leases and liveness
    lease_seconds: float = Field(default=30.0, gt=0)
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    worker_timeout_seconds: float = Field(default=30.0, gt=0)
    claim_wait_seconds: float = Field(default=25.0, gt=0, description="Long-poll length.")

    # Push endpoints (a GPU the queue manager calls itself)
    endpoint_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often a running job's history is asked for."
    )
    endpoint_lost_seconds: float = Field(
        default=90.0,
        gt=0,
        description="A submitted prompt no replica has listed (queue, history, socket) for this "
        "long is lost with its replica: the job goes back to the queue.",
    )
    endpoint_request_seconds: float = Field(
        default=30.0, gt=0, description="Timeout of one call to an endpoint."
    )

    # Events
    events_maxlen: int = Field(default=100_000, ge=1000)

    @field_validator("public_url")
    @classmethod
    def _a_public_url(cls, value: str) -> str:
        return public_url(value) if value.strip() else ""

    @field_validator("frontend_dir", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.lease_seconds < 2 * self.heartbeat_seconds:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds}) must be at least twice heartbeat_seconds "
                f"({self.heartbeat_seconds}), or one late heartbeat loses a healthy worker's job"
            )
        for pair in self.preset_worker_tokens():
            name, secret = pair
            if not is_name(name) or len(secret) < 16:
                raise ValueError(
                    "CW_WORKER_TOKENS holds name:secret pairs; names are lowercase letters, "
                    "digits, '-' and '_', secrets at least 16 characters"
                )
        token = self.metrics_token.get_secret_value()
        if token and (len(token) < 16 or token in PLACEHOLDER_SECRETS):
            raise ValueError(
                f"CW_METRICS_TOKEN must be a random value of at least 16 characters "
                f"(make one: {MAKE_A_SECRET}), or empty"
            )
        self._consistent_logins()
        if not self.local_mode and self.has_placeholder_secret():
            raise ValueError(
                f"CW_SECRET_KEY is a placeholder; set a real secret outside local mode "
                f"(make one: {MAKE_A_SECRET})"
            )
        return self

    def _consistent_logins(self) -> None:
        try:
            self.trusted_networks()
        except ValueError as exc:
            raise ValueError(
                f"CW_TRUSTED_PROXIES holds addresses or networks, comma-separated ({exc})"
            ) from None
        if not (
            self.login_backoff_seconds
            <= self.login_max_backoff_seconds
            <= self.login_failure_window_seconds
        ):
            raise ValueError(
                "login waits need login_backoff_seconds <= login_max_backoff_seconds <= "
                "login_failure_window_seconds, or a wait would outlive the failures behind it"
            )

    def trusted_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    def login_limits(self) -> LoginLimits:
        return LoginLimits(
            free=self.login_free_failures,
            address_free=self.login_address_free_failures,
            account_free=self.login_account_free_failures,
            backoff=self.login_backoff_seconds,
            max_backoff=self.login_max_backoff_seconds,
            window=self.login_failure_window_seconds,
        )

    def has_placeholder_secret(self) -> bool:
        return self.secret_key.get_secret_value() in PLACEHOLDER_SECRETS

    def listening_refusal(self) -> str | None:
        """Why the server must not listen with these settings, or None. Checked by whatever
        starts a server, after `up` has put its own secret in: whoever knows the placeholder
        can sign a session cookie for any account, the instructor's included."""
        if not self.has_placeholder_secret() or is_loopback(self.host):
            return None
        return (
            f"CW_SECRET_KEY is a placeholder and the server would listen on {self.host}, where "
            f"anyone who can reach it could forge a login (the instructor's too). Set "
            f"CW_SECRET_KEY to a random value (make one: {MAKE_A_SECRET}), or listen on "
            f"127.0.0.1; `comfy-workshop up` makes and keeps one in DATA/secret_key by itself."
        )

    def preset_worker_tokens(self) -> list[tuple[str, str]]:
        raw = self.worker_tokens.get_secret_value()
        pairs = [p.strip().partition(":") for p in raw.split(",") if p.strip()]
        return [(name, secret) for name, _, secret in pairs]
