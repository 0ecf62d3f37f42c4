"""The checkout page in a real browser (Debian's Chromium, driven by Playwright) on the real stack:
a card pays, 3-D Secure is approved or failed on the bank's page, a card is declined; saved cards
come first and pay in one click, the save box keeps a new card, a saved card is removed; after a
decline other cards pay for the same payment, up to the last card; and the card number goes only
to the card processor's origin, never to ours, our logs or our database.
Each test leaves screenshots in test-results/<test name>/ for a person to look at."""

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, ConsoleMessage, Locator, Page, Request, async_playwright, expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from payments.api.auth import mint_token
from payments.config.settings import Settings
from tests.integration.conftest import Parties, stripe_intent

VISA = "4242 4242 4242 4242"
AUTHENTICATION_REQUIRED = "4000 0025 0000 3155"
DECLINED = "4000 0000 0000 0002"
INSUFFICIENT_FUNDS = "4000 0000 0000 9995"
expect.set_options(timeout=30_000)  # two busy cores run the whole stack


@pytest_asyncio.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium for the session; Playwright cannot download its own here, so Debian's it is."""
    chromium = shutil.which("chromium")
    if chromium is None:
        missing = "chromium is not installed (`make test` installs it: apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium)
        yield launched
        await launched.close()


@dataclass
class Checkout:
    """A browser tab on the checkout page, with every request it made and what the console said."""

    page: Page
    api_url: str
    out: Path
    requests: list[Request] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    async def open(self, parties: Parties, settings: Settings, amount: int = 2500) -> None:
        order = {
            "user_id": parties.user_id,
            "merchant_id": parties.merchant_id,
            "merchant_name": "Seller",
            "amount": amount,
            "currency": "usd",
        }
        token = mint_token(settings, parties.user_id, "user")
        await self.page.goto(f"{self.api_url}/checkout?{urlencode(order)}#token={token}")

    async def fill_card(self, number: str, expiry: str = "12 / 34", cvc: str = "123") -> None:
        """Type into the card field, which lives in the card processor's iframe."""
        card = self.page.frame_locator("#card-element iframe")
        await card.locator("#number").fill(number)
        await card.locator("#expiry").fill(expiry)
        await card.locator("#cvc").fill(cvc)

    async def another_card(self) -> None:
        """After a decline: "Try another card", and the card field is emptied of the declined one."""
        await self.page.get_by_role("button", name="Try another card").click()
        await expect(self.page.frame_locator("#card-element iframe").locator("#number")).to_have_value("")

    async def pay_with(self, number: str, save: bool = False) -> None:
        await self.fill_card(number)
        if save:
            await self.page.get_by_label("Save this card for next time").check()
        await self.page.locator("#pay-button").click()

    def saved_card_names(self) -> Locator:
        return self.page.locator("#saved-list .saved-name")

    def sent_to_init(self) -> list[Any]:
        return [sent.post_data_json for sent in self.requests if sent.url == f"{self.api_url}/payments/init"]

    async def screenshot(self, name: str) -> None:
        await self.page.screenshot(path=self.out / f"{name}.png", full_page=True, animations="disabled")

    async def reference(self) -> str:
        return await self.page.locator("#result-reference").inner_text()

    async def sent_to(self, origin: str) -> list[str]:
        """URL, headers and body of every request the tab sent to `origin`."""
        sent = []
        for request in self.requests:
            if request.url.startswith(origin):
                body = request.post_data_buffer or b""
                sent.append(f"{request.url}\n{await request.all_headers()}\n{body.decode(errors='replace')}")
        return sent


@pytest_asyncio.fixture
async def checkout(browser: Browser, api_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Checkout]:
    context = await browser.new_context(viewport={"width": 760, "height": 820}, device_scale_factor=1)
    out = request.config.rootpath / "test-results" / request.node.name
    out.mkdir(parents=True, exist_ok=True)
    tab = Checkout(await context.new_page(), api_url, out)
    context.on("request", lambda sent: tab.requests.append(sent))
    tab.page.on("console", lambda message: tab.console.append(_console_line(message)))
    yield tab
    await context.close()


def _console_line(message: ConsoleMessage) -> str:
    return f"{message.type}: {message.text}"


def _traces(number: str) -> list[str]:
    """How a card number may be written: digits only, or in groups."""
    return [number.replace(" ", ""), number]


async def assert_card_number_stayed_with_stripe(
    tab: Checkout, number: str, stripe_api_base: str, log_file: Path, engine: AsyncEngine
) -> None:
    """Sent only from the card iframe to the card processor; not in a request to our origin, nor
    in our logs or database; and the page loaded nothing its CSP refused."""
    assert any(number.replace(" ", "") in sent for sent in await tab.sent_to(stripe_api_base)), "recorded"
    ours = await tab.sent_to(tab.api_url)
    assert ours and not [sent for sent in ours if any(trace in sent for trace in _traces(number))]
    log = log_file.read_text()
    assert not [trace for trace in _traces(number) if trace in log]
    async with engine.connect() as connection:
        tables = (await connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))).all()
        digits, grouped = _traces(number)
        traces = {"digits": f"%{digits}%", "grouped": f"%{grouped}%"}
        for (table,) in tables:
            # The table names come from pg_tables, not from any input.
            query = f'SELECT count(*) FROM "{table}" AS t WHERE t::text LIKE :digits OR t::text LIKE :grouped'  # noqa: S608
            found = (await connection.execute(text(query), traces)).scalar_one()
            assert found == 0, f"the card number is in {table}"
    assert not [line for line in tab.console if "Content Security Policy" in line]


async def test_a_visa_card_pays_and_the_api_shows_the_payment_confirmed(
    checkout: Checkout, parties: Parties, stack_settings: Settings, stripe_api_base: str, log_file: Path, engine
) -> None:
    await checkout.open(parties, stack_settings)
    pay = checkout.page.get_by_role("button", name="Pay $25.00")
    await expect(pay).to_be_disabled()
    await checkout.screenshot("order")
    await checkout.fill_card(VISA)
    await expect(pay).to_be_enabled()
    await checkout.screenshot("card")
    await pay.click()
    await expect(checkout.page.get_by_role("heading", name="Payment successful")).to_be_visible()
    await expect(checkout.page.locator("#result-card")).to_have_text("Visa •••• 4242")
    await checkout.screenshot("paid")
    tx = await parties.get(await checkout.reference())
    assert (tx["status"], tx["amount_captured"], tx["card"]) == ("confirmed", 2500, {"brand": "visa", "last4": "4242"})
    assert await parties.saved_cards() == []  # kept only when the save box is ticked
    await assert_card_number_stayed_with_stripe(checkout, VISA, stripe_api_base, log_file, engine)


async def test_saved_cards_come_first_the_default_on_top_and_one_click_pays(
    checkout: Checkout, parties: Parties, stack_settings: Settings
) -> None:
    await parties.saved_card("pm_card_visa")
    mastercard = await parties.saved_card("pm_card_mastercard")
    default_path = f"/users/{parties.user_id}/cards/{mastercard['id']}/default"
    default = await parties.api.post(default_path, headers=parties.as_user)
    assert default.status_code == 200, default.text
    await checkout.open(parties, stack_settings)
    await expect(checkout.saved_card_names()).to_have_text(["Mastercard •••• 4444", "Visa •••• 4242"])
    saved_box = await checkout.page.locator("#saved-cards").bounding_box()
    new_card_box = await checkout.page.locator("#card-element").bounding_box()
    assert saved_box and new_card_box and saved_box["y"] + saved_box["height"] <= new_card_box["y"]
    await checkout.screenshot("saved cards")
    await checkout.page.get_by_role("button", name="Pay $25.00 with Mastercard •••• 4444").click()
    await expect(checkout.page.get_by_role("heading", name="Payment successful")).to_be_visible()
    await expect(checkout.page.locator("#result-card")).to_have_text("Mastercard •••• 4444")
    await checkout.screenshot("paid")
    tx = await parties.get(await checkout.reference())
    assert (tx["status"], tx["card"]) == ("confirmed", {"brand": "mastercard", "last4": "4444"})
    assert [sent.get("saved_card_id") for sent in checkout.sent_to_init()] == [mastercard["id"]]
    assert not [sent for sent in checkout.sent_to_init() if "card_token" in sent]


async def test_the_save_box_keeps_a_new_card_for_the_next_checkout(
    checkout: Checkout, parties: Parties, stack_settings: Settings, stripe_api_base: str, log_file: Path, engine
) -> None:
    await checkout.open(parties, stack_settings)
    await expect(checkout.page.locator("#pay-button")).to_be_visible()
    await expect(checkout.page.locator("#saved-cards")).to_be_hidden()  # nothing saved yet
    await checkout.pay_with(VISA, save=True)
    await expect(checkout.page.get_by_role("heading", name="Payment successful")).to_be_visible()
    assert [sent["save_card"] for sent in checkout.sent_to_init()] == [True]
    saved = await parties.saved_cards()
    assert [(card["brand"], card["last4"], card["is_default"]) for card in saved] == [("visa", "4242", True)]
    await checkout.page.goto("about:blank")  # the next order's link differs from this one only in its fragment
    await checkout.open(parties, stack_settings)
    await expect(checkout.saved_card_names()).to_have_text(["Visa •••• 4242"])
    await expect(checkout.page.get_by_role("button", name="Pay $25.00 with Visa •••• 4242")).to_be_enabled()
    await checkout.screenshot("offered next time")
    await assert_card_number_stayed_with_stripe(checkout, VISA, stripe_api_base, log_file, engine)


async def test_a_saved_card_is_removed_from_the_page_and_from_the_users_cards(
    checkout: Checkout, parties: Parties, stack_settings: Settings
) -> None:
    await parties.saved_card("pm_card_visa")
    await parties.saved_card("pm_card_mastercard")
    await checkout.open(parties, stack_settings)
    await expect(checkout.saved_card_names()).to_have_text(["Visa •••• 4242", "Mastercard •••• 4444"])
    await checkout.page.get_by_role("button", name="Remove Visa •••• 4242").click()
    await expect(checkout.saved_card_names()).to_have_text(["Mastercard •••• 4444"])
    assert [card["last4"] for card in await parties.saved_cards()] == ["4444"]
    await checkout.screenshot("one removed")
    await checkout.page.get_by_role("button", name="Remove Mastercard •••• 4444").click()
    await expect(checkout.page.locator("#saved-cards")).to_be_hidden()
    assert await parties.saved_cards() == []
    await expect(checkout.page.locator("#pay-button")).to_be_visible()  # a new card still pays


@pytest.mark.parametrize(
    ("button", "heading", "status"),
    [
        ("Complete authentication", "Payment successful", "confirmed"),
        ("Fail authentication", "Authentication failed", "declined"),  # open: another card may pay
    ],
)
async def test_3d_secure_on_the_banks_page_decides_the_payment(
    checkout: Checkout,
    parties: Parties,
    stack_settings: Settings,
    stripe_api_base: str,
    log_file: Path,
    engine,
    button: str,
    heading: str,
    status: str,
) -> None:
    await checkout.open(parties, stack_settings)
    await checkout.pay_with(AUTHENTICATION_REQUIRED)
    await expect(checkout.page.get_by_role("button", name=button)).to_be_visible()
    assert checkout.page.url.startswith(f"{stripe_api_base}/3d_secure_2/hosted?")
    await checkout.screenshot("bank")
    await checkout.page.get_by_role("button", name=button).click()
    await expect(checkout.page.get_by_role("heading", name=heading)).to_be_visible()
    assert checkout.page.url == f"{checkout.api_url}/checkout"  # no client secret left in the address bar
    await checkout.screenshot(status)
    tx = await parties.get(await checkout.reference())
    assert tx["status"] == status
    secret = stripe_intent(stack_settings, tx["id"]).client_secret
    assert secret and secret not in log_file.read_text()
    if status == "declined":
        assert tx["failure_code"] == "payment_intent_authentication_failure"
        await expect(checkout.page.get_by_role("button", name="Try another card")).to_be_visible()
    await assert_card_number_stayed_with_stripe(checkout, AUTHENTICATION_REQUIRED, stripe_api_base, log_file, engine)


async def test_a_declined_card_shows_the_decline_in_words(
    checkout: Checkout, parties: Parties, stack_settings: Settings, stripe_api_base: str, log_file: Path, engine
) -> None:
    await checkout.open(parties, stack_settings)
    await checkout.pay_with(DECLINED)
    await expect(checkout.page.get_by_role("heading", name="Payment declined")).to_be_visible()
    await expect(checkout.page.locator("#result-message")).to_have_text(
        "Your card was declined. Please try another card or contact your bank."
    )
    await checkout.screenshot("declined")
    tx = await parties.get(await checkout.reference())
    assert (tx["status"], tx["failure_code"]) == ("declined", "generic_decline")
    await assert_card_number_stayed_with_stripe(checkout, DECLINED, stripe_api_base, log_file, engine)


async def test_after_a_decline_other_cards_pay_for_the_same_payment(
    checkout: Checkout, parties: Parties, stack_settings: Settings, stripe_api_base: str, log_file: Path, engine
) -> None:
    """Declined, then another new card declined too, then a saved card in one click: one payment,
    one PaymentIntent, three cards."""
    visa = await parties.saved_card("pm_card_visa")
    await checkout.open(parties, stack_settings)
    await checkout.pay_with(DECLINED)
    await expect(checkout.page.get_by_role("heading", name="Payment declined")).to_be_visible()
    tx_id = await checkout.reference()
    await checkout.another_card()
    await expect(checkout.page.locator("#another-card")).to_have_text(
        "That card did not go through. Choose another card to pay for this order."
    )
    await expect(checkout.page.get_by_label("Save this card for next time")).to_be_hidden()
    await checkout.pay_with(INSUFFICIENT_FUNDS)
    await expect(checkout.page.locator("#result-message")).to_have_text(
        "Your card has insufficient funds. Please try another card."
    )
    assert await checkout.reference() == tx_id
    await checkout.another_card()
    await checkout.screenshot("another card")
    await checkout.page.get_by_role("button", name="Pay $25.00 with Visa •••• 4242").click()
    await expect(checkout.page.get_by_role("heading", name="Payment successful")).to_be_visible()
    await expect(checkout.page.locator("#result-card")).to_have_text("Visa •••• 4242")
    await checkout.screenshot("paid")
    assert await checkout.reference() == tx_id
    tx = await parties.get(tx_id)
    assert (tx["status"], tx["amount_captured"], tx["card_attempts"]) == ("confirmed", 2500, 3)
    assert len(checkout.sent_to_init()) == 1
    confirms = [sent.post_data_json for sent in checkout.requests if sent.url == f"{checkout.api_url}/payments/confirm"]
    assert [confirm["payment_method"] for confirm in confirms] == [
        {"card_token": confirms[0]["payment_method"]["card_token"]},
        {"saved_card_id": visa["id"]},
    ]
    for number in (DECLINED, INSUFFICIENT_FUNDS):
        await assert_card_number_stayed_with_stripe(checkout, number, stripe_api_base, log_file, engine)


async def test_another_card_after_a_decline_may_go_through_3d_secure(
    checkout: Checkout, parties: Parties, stack_settings: Settings
) -> None:
    await checkout.open(parties, stack_settings)
    await checkout.pay_with(DECLINED)
    await expect(checkout.page.get_by_role("heading", name="Payment declined")).to_be_visible()
    tx_id = await checkout.reference()
    await checkout.another_card()
    await checkout.pay_with(AUTHENTICATION_REQUIRED)
    await checkout.page.get_by_role("button", name="Complete authentication").click()
    await expect(checkout.page.get_by_role("heading", name="Payment successful")).to_be_visible()
    assert await checkout.reference() == tx_id
    assert (await parties.get(tx_id))["status"] == "confirmed"


async def test_when_the_last_card_is_declined_the_payment_fails_and_no_other_card_is_offered(
    checkout: Checkout, parties: Parties, stack_settings: Settings
) -> None:
    await checkout.open(parties, stack_settings)
    await checkout.pay_with(DECLINED)
    for _ in range(stack_settings.max_card_attempts - 1):
        await checkout.another_card()
        await checkout.pay_with(DECLINED)
    await expect(checkout.page.get_by_role("heading", name="Payment failed")).to_be_visible()
    await expect(checkout.page.locator("#result-message")).to_have_text(
        "No more cards can be tried for this order, and nothing was charged. Please go back to the shop."
    )
    await expect(checkout.page.get_by_role("button", name="Try another card")).to_be_hidden()
    await checkout.screenshot("failed")
    tx = await parties.get(await checkout.reference())
    assert (tx["status"], tx["card_attempts"]) == ("failed", stack_settings.max_card_attempts)


async def test_in_development_the_page_offers_a_demo_order(checkout: Checkout, api: httpx.AsyncClient) -> None:
    await checkout.page.goto(f"{checkout.api_url}/checkout")
    await expect(checkout.page.locator("#merchant-name")).to_have_text("Corner Shop")
    await expect(checkout.page.locator("#demo-badge")).to_be_visible()
    await checkout.screenshot("demo")
    await checkout.pay_with(VISA)
    await expect(checkout.page.get_by_role("heading", name="Payment successful")).to_be_visible()


async def test_the_page_may_load_only_what_it_needs_and_is_never_framed(
    api: httpx.AsyncClient, stripe_api_base: str
) -> None:
    page = await api.get("/checkout")
    assert page.status_code == 200 and f'<script src="{stripe_api_base}/v3">' in page.text
    assert page.headers.get_list("content-security-policy") == [
        f"default-src 'none'; script-src 'self' {stripe_api_base}; style-src 'self'; frame-src {stripe_api_base}; "
        "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ]
    assert page.headers["x-frame-options"] == "DENY"
