"""The long-lived clients a running API holds, created once at start-up and closed at shutdown."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import stripe
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from payments.api.admission import Admission
from payments.api.auth import TokenVerifier
from payments.api.jwks import JwksKeys
from payments.api.metrics import count_party_lookup
from payments.api.rate_limit import RateLimiter
from payments.api.replay_cache import ReplayCache
from payments.api.single_flight import SingleFlight
from payments.config.codec import EncryptionCodec
from payments.config.keyring import Keyring
from payments.config.redis import redis_client
from payments.config.settings import Settings
from payments.config.stripe_client import stripe_client, stripe_http
from payments.config.temporal import connect
from payments.schema.database import create_engine, create_probe_engine, session_factory
from payments.schema.messages import PaymentView
from payments.schema.party_cache import PartyCache

API_APPLICATION_NAME = "payments-api"


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    probe_engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    verifier: TokenVerifier
    limiter: RateLimiter
    stripe_webhook_limiter: RateLimiter  # Stripe's webhooks from its own addresses
    codec: EncryptionCodec
    keyring: Keyring  # opens and seals secrets at rest (webhook endpoints)
    replays: ReplayCache
    parties: PartyCache
    stripe_http: stripe.HTTPClient  # the Stripe client's connections, closed by close()
    stripe: stripe.StripeClient
    admission: Admission  # payment inits in flight (payments/api/admission.py)
    jwks: JwksKeys | None  # RS256: the identity provider's keys, refreshed in the background
    inits: SingleFlight[PaymentView] = field(default_factory=SingleFlight)  # one authorization a key at once
    _temporal: Client | None = None
    _temporal_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def start(cls, settings: Settings) -> Services:
        if not settings.database_url or not settings.redis_url:
            raise RuntimeError("PAYMENTS_DATABASE_URL and PAYMENTS_REDIS_URL must be set for the API")
        engine = create_engine(
            settings.database_url,
            settings.db_pool_size,
            pool_timeout=settings.db_pool_timeout_seconds,
            application_name=API_APPLICATION_NAME,
        )
        redis = redis_client(settings.redis_url)
        keyring = Keyring.from_spec(settings.encryption_keys.get_secret_value())
        jwks = None
        if settings.jwt_algorithm == "RS256" and settings.jwt_jwks_url:
            jwks = JwksKeys(
                settings.jwt_jwks_url,
                refresh_every=settings.jwt_jwks_refresh_interval.total_seconds(),
                max_age=settings.jwt_jwks_max_age.total_seconds(),
                unknown_kid_every=settings.jwt_jwks_unknown_kid_interval.total_seconds(),
            )
            jwks.start()  # in the app's event loop (lifespan), stopped by close()
        http = stripe_http(settings)
        return cls(
            settings=settings,
            engine=engine,
            probe_engine=create_probe_engine(settings.database_url),
            sessions=session_factory(engine),
            redis=redis,
            verifier=TokenVerifier(settings, jwks),
            limiter=RateLimiter(redis, settings.rate_limit_per_second, settings.rate_limit_burst),
            stripe_webhook_limiter=RateLimiter(
                redis, settings.stripe_webhook_rate_limit_per_second, settings.stripe_webhook_rate_limit_burst
            ),
            codec=EncryptionCodec(keyring),
            keyring=keyring,
            replays=ReplayCache(redis, keyring),
            parties=PartyCache(redis, counted=count_party_lookup),
            stripe_http=http,
            stripe=stripe_client(settings, http),
            admission=Admission(settings.max_inits_in_flight),
            jwks=jwks,
        )

    async def temporal(self) -> Client:
        """Connect on first use, so the API starts (and says 503) while Temporal is still down."""
        async with self._temporal_lock:
            if self._temporal is None:
                self._temporal = await connect(self.settings)
            return self._temporal

    async def close(self) -> None:
        if self.jwks is not None:
            await self.jwks.close()
        await self.redis.aclose()
        await self.stripe_http.close_async()
        await self.engine.dispose()
        await self.probe_engine.dispose()
