"""Merchant webhooks: a merchant's endpoints (create, list, delete, rotate the secret), its
deliveries (list by event or status, the attempts of one, retry one now). Delivery itself runs in
the worker (payments/workers/merchant_webhook_fanout.py, WebhookDeliveryWorkflow): nothing of it is in a request."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from sqlalchemy import select
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy

from payments.api.access import own_merchant
from payments.api.contract import errors
from payments.api.deps import CurrentPrincipal, ServicesDep, Session, TemporalClient
from payments.api.errors import ApiError, NotFound
from payments.api.ids import new_id
from payments.api.models import (
    DELIVERY_ID,
    ENDPOINT_ID,
    EVENT_ID,
    WebhookAttemptList,
    WebhookAttemptOut,
    WebhookDeliveryList,
    WebhookDeliveryOut,
    WebhookEndpointCreate,
    WebhookEndpointList,
    WebhookEndpointOut,
)
from payments.api.pagination import InvalidCursor, Limit, newest_first
from payments.api.temporal_calls import waiting_on_temporal
from payments.config.keyring import Keyring
from payments.config.merchant_webhook_signing import new_secret
from payments.config.merchant_webhook_urls import UnsafeWebhookUrl, check_webhook_url
from payments.schema.tables import WebhookAttempt, WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from payments.workflows import search_attributes as sa
from payments.workflows.merchant_webhook_delivery import WebhookDeliveryWorkflow, delivery_request, workflow_id
from payments.workflows.policies import WORKFLOW_TASK_TIMEOUT

router = APIRouter(tags=["webhooks"])
EndpointId = Annotated[str, Path(pattern=ENDPOINT_ID)]
DeliveryId = Annotated[str, Path(pattern=DELIVERY_ID)]


class InvalidWebhookUrl(ApiError):
    status, code = 422, "invalid_webhook_url"
    message = "Webhooks go to https URLs of public hosts only."


class WebhookEndpointDisabled(ApiError):
    status, code = 409, "webhook_endpoint_disabled"
    message = "The endpoint is disabled (it failed for days); create a new one."


def endpoint_out(endpoint: WebhookEndpoint, secret: str | None = None) -> WebhookEndpointOut:
    return WebhookEndpointOut(
        id=endpoint.id,
        merchant_id=endpoint.merchant_id,
        url=endpoint.url,
        enabled_events=endpoint.enabled_events,
        status=endpoint.status,
        created_at=endpoint.created_at,
        secret=secret,
    )


def delivery_out(delivery: WebhookDelivery) -> WebhookDeliveryOut:
    return WebhookDeliveryOut(
        id=delivery.id,
        event_id=str(delivery.event_id),
        endpoint_id=delivery.endpoint_id,
        status=delivery.status,
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
    )


def _seal(keyring: Keyring, endpoint_id: str, secret: str) -> tuple[str, bytes]:
    """(key id, blob), bound to the endpoint (see payments/activities/webhook_records.open_secret)."""
    sealed = keyring.seal(secret.encode(), endpoint_id.encode())
    return sealed.key_id, sealed.blob


async def _own_endpoint(session: Session, merchant_id: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if endpoint is None or endpoint.merchant_id != merchant_id:
        raise NotFound()
    return endpoint


async def _own_delivery(session: Session, merchant_id: str, delivery_id: str) -> WebhookDelivery:
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.merchant_id != merchant_id:
        raise NotFound()
    return delivery


@router.post(
    "/merchants/{merchant_id}/webhook_endpoints",
    status_code=status.HTTP_201_CREATED,
    summary="Add a webhook endpoint; its secret is shown once (merchant: self, operator)",
    responses=errors(NotFound, InvalidWebhookUrl),
)
async def create_endpoint(
    merchant_id: str, body: WebhookEndpointCreate, principal: CurrentPrincipal, services: ServicesDep, session: Session
) -> WebhookEndpointOut:
    merchant = await own_merchant(session, principal, merchant_id)
    try:
        await check_webhook_url(body.url, services.settings.env == "development")
    except UnsafeWebhookUrl as exc:
        raise InvalidWebhookUrl(str(exc)) from None
    endpoint_id, secret = new_id("we"), new_secret()
    key_id, sealed = _seal(services.keyring, endpoint_id, secret)
    events = sorted(set(body.enabled_events))
    endpoint = WebhookEndpoint(
        id=endpoint_id,
        merchant_id=merchant.id,
        url=body.url,
        enabled_events=events,
        status="enabled",
        secret=sealed,
        secret_key_id=key_id,
    )
    session.add(endpoint)
    await session.commit()
    return endpoint_out(endpoint, secret)


@router.get(
    "/merchants/{merchant_id}/webhook_endpoints",
    summary="A merchant's webhook endpoints, newest first (merchant: self, operator)",
    responses=errors(NotFound, InvalidCursor),
)
async def list_endpoints(
    merchant_id: str, principal: CurrentPrincipal, session: Session, limit: Limit = 20, cursor: str | None = None
) -> WebhookEndpointList:
    await own_merchant(session, principal, merchant_id)
    query = select(WebhookEndpoint).where(WebhookEndpoint.merchant_id == merchant_id)
    page, next_cursor = await newest_first(
        session, query, WebhookEndpoint.created_at, WebhookEndpoint.id, limit, cursor
    )
    return WebhookEndpointList(data=[endpoint_out(e) for e in page], next_cursor=next_cursor)


@router.delete(
    "/merchants/{merchant_id}/webhook_endpoints/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a webhook endpoint and its deliveries (merchant: self, operator)",
    responses=errors(NotFound),
)
async def delete_endpoint(
    merchant_id: str, endpoint_id: EndpointId, principal: CurrentPrincipal, session: Session
) -> Response:
    """Deliveries under way stop at their next attempt."""
    await own_merchant(session, principal, merchant_id)
    await session.delete(await _own_endpoint(session, merchant_id, endpoint_id))
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/merchants/{merchant_id}/webhook_endpoints/{endpoint_id}/rotate_secret",
    summary="A new signing secret; the old one still signs beside it for 24 h (merchant: self, operator)",
    responses=errors(NotFound),
)
async def rotate_secret(
    merchant_id: str, endpoint_id: EndpointId, principal: CurrentPrincipal, services: ServicesDep, session: Session
) -> WebhookEndpointOut:
    """Only the secret being replaced keeps signing: rotating twice in the overlap retires the older one."""
    await own_merchant(session, principal, merchant_id)
    endpoint = await _own_endpoint(session, merchant_id, endpoint_id)
    secret = new_secret()
    endpoint.previous_secret, endpoint.previous_secret_key_id = endpoint.secret, endpoint.secret_key_id
    endpoint.previous_secret_expires_at = datetime.now(UTC) + services.settings.webhook_secret_overlap
    endpoint.secret_key_id, endpoint.secret = _seal(services.keyring, endpoint.id, secret)
    await session.commit()
    return endpoint_out(endpoint, secret)


@router.get(
    "/merchants/{merchant_id}/webhook_deliveries",
    summary="A merchant's webhook deliveries, newest first, by event or status (merchant: self, operator)",
    responses=errors(NotFound, InvalidCursor),
)
async def list_deliveries(
    merchant_id: str,
    principal: CurrentPrincipal,
    session: Session,
    event_id: Annotated[str | None, Query(pattern=EVENT_ID)] = None,
    delivery_status: Annotated[WebhookDeliveryStatus | None, Query(alias="status")] = None,
    limit: Limit = 20,
    cursor: str | None = None,
) -> WebhookDeliveryList:
    await own_merchant(session, principal, merchant_id)
    query = select(WebhookDelivery).where(WebhookDelivery.merchant_id == merchant_id)
    if event_id is not None:
        query = query.where(WebhookDelivery.event_id == int(event_id))
    if delivery_status is not None:
        query = query.where(WebhookDelivery.status == delivery_status)
    page, next_cursor = await newest_first(
        session, query, WebhookDelivery.created_at, WebhookDelivery.id, limit, cursor
    )
    return WebhookDeliveryList(data=[delivery_out(d) for d in page], next_cursor=next_cursor)


@router.get(
    "/merchants/{merchant_id}/webhook_deliveries/{delivery_id}/attempts",
    summary="The attempts of one delivery, newest first (merchant: self, operator)",
    responses=errors(NotFound, InvalidCursor),
)
async def list_attempts(
    merchant_id: str,
    delivery_id: DeliveryId,
    principal: CurrentPrincipal,
    session: Session,
    limit: Limit = 20,
    cursor: str | None = None,
) -> WebhookAttemptList:
    await own_merchant(session, principal, merchant_id)
    delivery = await _own_delivery(session, merchant_id, delivery_id)
    query = select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery.id)
    page, next_cursor = await newest_first(
        session, query, WebhookAttempt.attempted_at, WebhookAttempt.id, limit, cursor
    )
    return WebhookAttemptList(
        data=[WebhookAttemptOut.model_validate(a, from_attributes=True) for a in page], next_cursor=next_cursor
    )


@router.post(
    "/merchants/{merchant_id}/webhook_deliveries/{delivery_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Attempt a delivery again now (merchant: self, operator)",
    responses=errors(NotFound, WebhookEndpointDisabled),
)
async def retry_delivery(
    merchant_id: str,
    delivery_id: DeliveryId,
    principal: CurrentPrincipal,
    services: ServicesDep,
    session: Session,
    temporal: TemporalClient,
) -> WebhookDeliveryOut:
    """A delivery still retrying attempts at once (a signal to its workflow); a finished one
    (delivered or failed) gets a new run of one attempt: signal-with-start does either."""
    await own_merchant(session, principal, merchant_id)
    delivery = await _own_delivery(session, merchant_id, delivery_id)
    endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
    if endpoint is None or endpoint.status != "enabled":
        raise WebhookEndpointDisabled()
    request = delivery_request(
        services.settings, delivery.endpoint_id, delivery.event_id, merchant_id, single_attempt=True
    )
    async with waiting_on_temporal(session):
        await temporal.start_workflow(
            WebhookDeliveryWorkflow.run,
            request,
            id=workflow_id(delivery.endpoint_id, delivery.event_id),
            task_queue=services.settings.webhook_task_queue,
            task_timeout=WORKFLOW_TASK_TIMEOUT,
            start_signal="retry_now",
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=TypedSearchAttributes([SearchAttributePair(sa.MERCHANT_ID, merchant_id)]),
        )
    return delivery_out(delivery)
