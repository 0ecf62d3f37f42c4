/* The checkout page: a saved card (one click), or a new card -> PaymentMethod (in the card
   processor's iframe, kept on file when the box is ticked) -> POST /payments/init -> 3-D Secure
   when asked (a redirect to the bank's page and back) -> POST /payments/confirm. After a decline,
   another card pays for the same payment: POST /payments/confirm with its payment_method. */
"use strict";

const PENDING = "checkout.pending"; // the payment waiting on 3-D Secure, across the redirect
const POLL_EVERY_MS = 500;
const POLL_FOR_MS = 60000;
const DECLINES = {
  generic_decline: "Your card was declined. Please try another card or contact your bank.",
  insufficient_funds: "Your card has insufficient funds. Please try another card.",
  expired_card: "Your card has expired. Please try another card.",
  incorrect_cvc: "Your card's security code is incorrect.",
  lost_card: "Your card was declined. Please try another card or contact your bank.",
  stolen_card: "Your card was declined. Please try another card or contact your bank.",
  processing_error: "Your bank could not process the payment. Please try again.",
};
const AUTHENTICATION_FAILED = "payment_intent_authentication_failure";

const $ = (id) => document.getElementById(id);
const settings = document.body.dataset;
const stripe = Stripe(settings.publishableKey);
let card = null;
let order = null; // {user_id, merchant_id, merchant_name, amount, currency}
let token = null;
let demo = false;
let cardComplete = false;
let savedCards = []; // the payer's active cards on file, the default first
let working = null; // the button whose payment is under way
let declined = null; // a declined payment that another card may still pay

class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

async function api(method, path, body, headers = {}) {
  const response = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(answer.error?.message || `The server answered ${response.status}.`, answer.error?.code);
  return answer;
}

function money(amount, currency) {
  const format = new Intl.NumberFormat(undefined, { style: "currency", currency: currency.toUpperCase() });
  return format.format(amount / 10 ** format.resolvedOptions().maximumFractionDigits);
}

function showOrder() {
  const name = order.merchant_name || order.merchant_id;
  $("merchant-name").textContent = name;
  $("merchant-initial").textContent = name.charAt(0).toUpperCase();
  $("demo-badge").hidden = !demo;
  const total = money(order.amount, order.currency);
  $("order-total").textContent = total;
  $("order-payee").textContent = name;
  $("order-due").textContent = total;
  $("pay-label").textContent = `Pay ${total}`;
}

function busy(message, button = working) {
  working?.classList.remove("working");
  working = message ? button : null;
  working?.classList.add("working");
  $("pay-view").classList.toggle("busy", Boolean(message));
  for (const other of $("saved-list").querySelectorAll("button")) other.disabled = Boolean(message);
  $("pay-button").disabled = Boolean(message) || !cardComplete;
  $("progress").textContent = message || "";
}

function cardName(saved) {
  return `${brandName(saved.brand)} •••• ${saved.last4}`;
}

async function loadSavedCards() {
  const { data } = await api("GET", `/users/${encodeURIComponent(order.user_id)}/cards`);
  savedCards = data.filter((saved) => saved.status === "active").sort((a, b) => b.is_default - a.is_default);
}

function showSavedCards() {
  const total = money(order.amount, order.currency);
  $("saved-list").replaceChildren(...savedCards.map((saved) => {
    const row = $("saved-card-row").content.firstElementChild.cloneNode(true);
    const pay = row.querySelector(".saved-pay");
    const remove = row.querySelector(".saved-remove");
    row.querySelector(".saved-name").textContent = cardName(saved);
    row.querySelector(".saved-expiry").textContent = `Expires ${String(saved.exp_month).padStart(2, "0")}/${String(saved.exp_year).slice(-2)}`;
    row.querySelector(".saved-default").hidden = !saved.is_default;
    row.querySelector(".saved-amount-label").textContent = `Pay ${total}`;
    pay.setAttribute("aria-label", `Pay ${total} with ${cardName(saved)}`);
    remove.setAttribute("aria-label", `Remove ${cardName(saved)}`);
    pay.addEventListener("click", () => payWithSavedCard(saved, pay).catch(failed));
    remove.addEventListener("click", () => removeSavedCard(saved, remove).catch(failed));
    return row;
  }));
  $("saved-cards").hidden = savedCards.length === 0;
}

function showResult(kind, title, message, tx) {
  sessionStorage.removeItem(PENDING);
  $("pay-view").hidden = true;
  $("result-view").hidden = false;
  $("result-view").className = `result ${kind}`;
  $("result-title").textContent = title;
  $("result-message").textContent = message;
  const used = tx && tx.card && tx.card.last4 ? `${brandName(tx.card.brand)} •••• ${tx.card.last4}` : "";
  $("result-card").textContent = used;
  $("result-reference").textContent = tx ? tx.id : "—";
  $("result-reference").parentElement.hidden = !tx;
  if (tx) declined = tx.status === "declined" ? tx : null;
  // Once a payment is settled, another card would be another payment: the shop starts that one.
  $("retry-button").hidden = kind === "paid" || !order || (tx !== null && !declined);
}

function brandName(brand) {
  return { visa: "Visa", mastercard: "Mastercard", amex: "American Express" }[brand] || "Card";
}

function showOutcome(tx) {
  const total = money(tx.amount, tx.currency);
  if (tx.status === "confirmed") {
    showResult("paid", "Payment successful", `${total} paid to ${order.merchant_name || order.merchant_id}.`, tx);
  } else if (tx.status === "failed") {
    showResult("declined", "Payment failed",
      "No more cards can be tried for this order, and nothing was charged. Please go back to the shop.", tx);
  } else if (tx.failure_code === AUTHENTICATION_FAILED) {
    showResult("authentication_failed", "Authentication failed",
      "Your bank could not confirm it was you, so nothing was charged. Please try again or use another card.", tx);
  } else if (tx.status === "declined") {
    showResult("declined", "Payment declined", DECLINES[tx.failure_code] || tx.failure_message || DECLINES.generic_decline, tx);
  } else {
    showResult("error", "Payment not completed", `The payment is ${tx.status}; nothing more was charged.`, tx);
  }
}

function showForm() {
  $("result-view").hidden = true;
  $("pay-view").hidden = false;
  $("another-card").hidden = !declined;
  $("save-box").hidden = Boolean(declined); // a card given after a decline pays only; it is not kept
  showSavedCards();
  busy(null);
  if (!card) mountCard();
  else if (declined) card.clear(); // not the declined card's number again
}

function mountCard() {
  card = stripe.elements().create("card", {
    style: {
      base: { color: "#1a1f36", fontSize: "16px", fontFamily: "system-ui, sans-serif", "::placeholder": { color: "#8792a2" } },
      invalid: { color: "#df1b41" },
    },
  });
  card.mount("#card-element");
  card.on("focus", () => $("card-element").classList.add("focused"));
  card.on("change", (event) => {
    $("card-element").classList.toggle("invalid", Boolean(event.error));
    $("card-error").textContent = event.error ? event.error.message : "";
    cardComplete = event.complete;
    $("pay-button").disabled = !cardComplete;
  });
}

async function payWithNewCard(event) {
  event.preventDefault();
  busy("Checking your card…", $("pay-button"));
  const { paymentMethod, error } = await stripe.createPaymentMethod({ type: "card", card });
  if (error) {
    busy(null);
    $("card-error").textContent = error.message;
    return;
  }
  await pay({ card_token: paymentMethod.id }, $("save-card").checked);
}

async function payWithSavedCard(saved, button) {
  busy("Authorizing the payment…", button);
  await pay({ saved_card_id: saved.id });
}

async function removeSavedCard(saved, button) {
  busy("Removing the card…", button);
  await api("DELETE", `/users/${encodeURIComponent(order.user_id)}/cards/${encodeURIComponent(saved.id)}`);
  savedCards = savedCards.filter((kept) => kept.id !== saved.id);
  showSavedCards();
  busy(null);
}

async function pay(cardToPay, save = false) {
  busy("Authorizing the payment…");
  const tx = declined ? await payDeclined(cardToPay) : await init(cardToPay, save);
  if (tx.status === "requires_action" && tx.next_action) {
    busy("Your bank asks you to confirm the payment…");
    sessionStorage.setItem(PENDING, JSON.stringify({ order, token, demo, tx_id: tx.id }));
    window.location.assign(tx.next_action.redirect_to_url.url);
    return;
  }
  await settle(tx);
}

function init(cardToPay, save) {
  const body = { user_id: order.user_id, merchant_id: order.merchant_id, amount: order.amount, currency: order.currency, ...cardToPay, save_card: save };
  return api("POST", "/payments/init", body, { "Idempotency-Key": `checkout-${crypto.randomUUID()}` });
}

async function payDeclined(cardToPay) {
  // Authorized and captured at once, or 3-D Secure first; declined again is a 402 and the payment
  // says whether yet another card may be tried.
  try {
    return await api("POST", "/payments/confirm", { tx_id: declined.id, payment_method: cardToPay });
  } catch (error) {
    if (error.code !== "card_declined") throw error;
    return api("GET", `/payments/${declined.id}`);
  }
}

async function settle(tx) {
  if (tx.status === "authorized") {
    busy("Completing the payment…");
    tx = await api("POST", "/payments/confirm", { tx_id: tx.id });
  }
  showOutcome(tx);
}

async function afterAuthentication(pending) {
  ({ order, token, demo } = pending);
  showOrder();
  await loadSavedCards(); // for another card, should the bank refuse
  $("pay-view").hidden = false;
  busy("Waiting for your bank's answer…");
  const deadline = Date.now() + POLL_FOR_MS;
  let tx = await api("GET", `/payments/${pending.tx_id}`);
  while (tx.status === "requires_action" || tx.status === "pending") {
    if (Date.now() > deadline) throw new ApiError("Your bank has not answered yet. Please check your payments later.");
    await new Promise((resolve) => setTimeout(resolve, POLL_EVERY_MS));
    tx = await api("GET", `/payments/${pending.tx_id}`);
  }
  await settle(tx);
}

function orderFromUrl(query) {
  const amount = Number(query.get("amount"));
  return {
    user_id: query.get("user_id"),
    merchant_id: query.get("merchant_id"),
    merchant_name: query.get("merchant_name"),
    amount: Number.isInteger(amount) && amount > 0 ? amount : null,
    currency: (query.get("currency") || "").toLowerCase() || null,
  };
}

async function start() {
  const query = new URLSearchParams(window.location.search);
  const linkedToken = new URLSearchParams(window.location.hash.slice(1)).get("token");
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  const returning = query.has("payment_intent");
  // Neither the payer's token nor the bank's client secret stays in the address bar or the history.
  history.replaceState(null, "", window.location.pathname + (returning ? "" : window.location.search));
  if (returning && pending) {
    await afterAuthentication(pending);
    return;
  }
  order = orderFromUrl(query);
  token = linkedToken;
  demo = !token && settings.demo === "true";
  if (demo) {
    const offered = await (await fetch("/checkout/demo", { method: "POST" })).json();
    token = offered.token;
    order = { ...offered, amount: order.amount || offered.amount, currency: order.currency || offered.currency };
  }
  if (!token || !order.user_id || !order.merchant_id || !order.amount || !order.currency) {
    showResult("error", "This payment link is incomplete", "Please go back to the shop and start the checkout again.", null);
    return;
  }
  showOrder();
  await loadSavedCards();
  showForm();
}

function failed(error) {
  showResult("error", "Something went wrong", error instanceof ApiError ? error.message : "We could not reach the server. Please try again.", null);
}

$("pay-form").addEventListener("submit", (event) => payWithNewCard(event).catch(failed));
$("retry-button").addEventListener("click", showForm);
start().catch(failed);
