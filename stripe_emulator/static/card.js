/* The card field's frame: it alone holds the card details, and posts them only to this origin's
   /v1/payment_methods. The page that framed it gets change events and the PaymentMethod. */
(function () {
  "use strict";
  var config = JSON.parse(decodeURIComponent(window.location.hash.slice(1)));
  var number = document.getElementById("number");
  var expiry = document.getElementById("expiry");
  var cvc = document.getElementById("cvc");
  var base = config.style.base || {};

  document.body.style.color = base.color || "#1a1f36";
  document.body.style.fontSize = base.fontSize || "16px";
  document.body.style.fontFamily = base.fontFamily || "system-ui, sans-serif";
  document.body.style.setProperty("--placeholder", (base["::placeholder"] || {}).color || "#8a94a6");
  document.body.style.setProperty("--invalid", (config.style.invalid || {}).color || "#df1b41");

  function toParent(message) { window.parent.postMessage(message, config.parent); }
  function digits(input) { return input.value.replace(/\D/g, ""); }

  function expiryParts() {
    var value = digits(expiry);
    return { month: parseInt(value.slice(0, 2), 10), year: 2000 + parseInt(value.slice(2, 4), 10), complete: value.length === 4 };
  }

  function problem() {
    var card = digits(number);
    var when = expiryParts();
    var now = new Date();
    if (card.length < 13) return { code: "incomplete_number", message: "Your card number is incomplete.", field: number };
    if (!when.complete) return { code: "incomplete_expiry", message: "Your card's expiration date is incomplete.", field: expiry };
    if (when.month < 1 || when.month > 12) return { code: "invalid_expiry_month", message: "Your card's expiration date is invalid.", field: expiry };
    if (when.year < now.getFullYear() || (when.year === now.getFullYear() && when.month < now.getMonth() + 1)) {
      return { code: "invalid_expiry_year_past", message: "Your card's expiration year is in the past.", field: expiry };
    }
    if (digits(cvc).length < 3) return { code: "incomplete_cvc", message: "Your card's security code is incomplete.", field: cvc };
    return null;
  }

  function changed() {
    var found = problem();
    var empty = !digits(number) && !digits(expiry) && !digits(cvc);
    [number, expiry, cvc].forEach(function (input) { input.classList.remove("invalid"); });
    var complete = !found;
    var shown = found && found.field !== document.activeElement && !empty ? found : null;
    if (shown) shown.field.classList.add("invalid");
    toParent({
      type: "change",
      detail: {
        elementType: "card",
        empty: empty,
        complete: complete,
        brand: /^4/.test(digits(number)) ? "visa" : "unknown",
        error: shown ? { type: "validation_error", code: shown.code, message: shown.message } : undefined,
      },
    });
  }

  number.addEventListener("input", function () {
    number.value = digits(number).slice(0, 19).replace(/(\d{4})(?=\d)/g, "$1 ");
    if (digits(number).length === 16) expiry.focus();
    changed();
  });
  expiry.addEventListener("input", function () {
    var value = digits(expiry).slice(0, 4);
    expiry.value = value.length > 2 ? value.slice(0, 2) + " / " + value.slice(2) : value;
    if (value.length === 4) cvc.focus();
    changed();
  });
  cvc.addEventListener("input", function () {
    cvc.value = digits(cvc).slice(0, 4);
    changed();
  });
  [number, expiry, cvc].forEach(function (input) {
    input.addEventListener("blur", changed);
    input.addEventListener("focus", function () { toParent({ type: "focus" }); });
  });

  async function createPaymentMethod(payload) {
    var found = problem();
    if (found) return { error: { type: "validation_error", code: found.code, message: found.message } };
    var when = expiryParts();
    var body = new URLSearchParams({
      type: "card",
      "card[number]": digits(number),
      "card[exp_month]": String(when.month),
      "card[exp_year]": String(when.year),
      "card[cvc]": digits(cvc),
    });
    var details = payload.billing_details || {};
    Object.keys(details).forEach(function (key) { body.append("billing_details[" + key + "]", details[key]); });
    try {
      var response = await fetch("/v1/payment_methods", {
        method: "POST",
        headers: { Authorization: "Bearer " + config.key },
        body: body,
      });
      var answer = await response.json();
      return response.ok ? { paymentMethod: answer } : { error: answer.error };
    } catch (failure) {
      return { error: { type: "api_connection_error", message: "We could not reach Stripe. Please try again." } };
    }
  }

  window.addEventListener("message", async function (event) {
    if (event.origin !== config.parent || event.source !== window.parent) return;
    var message = event.data || {};
    if (message.type === "focus") number.focus();
    if (message.type === "clear") {
      [number, expiry, cvc].forEach(function (input) { input.value = ""; });
      changed();
    }
    if (message.type === "createPaymentMethod") {
      toParent({ type: "result", id: message.id, result: await createPaymentMethod(message.payload || {}) });
    }
  });
  // Typed (or autofilled) before this script ran, when no listener saw it: the page hears it now.
  if (digits(number) || digits(expiry) || digits(cvc)) changed();
  toParent({ type: "ready" });
})();
