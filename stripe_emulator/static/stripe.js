/* The emulator's Stripe.js: the subset a checkout page uses (Stripe(pk), elements().create("card"),
   element.mount / on / clear, createPaymentMethod). As with Stripe's, the card field is an iframe of this
   script's origin: the page talks to it by postMessage and only ever sees the PaymentMethod. */
(function () {
  "use strict";
  var origin = new URL(document.currentScript.src).origin;

  function CardElement(publishableKey, options) {
    var self = this;
    var handlers = {};
    var pending = {};
    var sequence = 0;
    var frame = document.createElement("iframe");
    var config = { key: publishableKey, parent: window.location.origin, style: (options || {}).style || {} };
    frame.src = origin + "/v3/elements/card#" + encodeURIComponent(JSON.stringify(config));
    frame.title = "Secure card payment input frame";
    frame.setAttribute("allowtransparency", "true");
    frame.style.cssText = "border:none;width:100%;height:24px;display:block;background:transparent";

    window.addEventListener("message", function (event) {
      if (event.origin !== origin || event.source !== frame.contentWindow) return;
      var message = event.data || {};
      if (message.type === "result" && pending[message.id]) {
        pending[message.id](message.result);
        delete pending[message.id];
      } else if (handlers[message.type]) {
        handlers[message.type].forEach(function (handler) { handler(message.detail || {}); });
      }
    });

    self.mount = function (target) {
      var node = typeof target === "string" ? document.querySelector(target) : target;
      node.appendChild(frame);
    };
    self.on = function (name, handler) {
      (handlers[name] = handlers[name] || []).push(handler);
      return self;
    };
    self.focus = function () { frame.contentWindow.postMessage({ type: "focus" }, origin); };
    self.clear = function () { frame.contentWindow.postMessage({ type: "clear" }, origin); };
    self._request = function (type, payload) {
      return new Promise(function (resolve) {
        sequence += 1;
        pending[sequence] = resolve;
        frame.contentWindow.postMessage({ type: type, id: sequence, payload: payload }, origin);
      });
    };
  }

  window.Stripe = function (publishableKey) {
    if (!/^pk_(test|live)_/.test(publishableKey || "")) {
      throw new Error("Stripe(): a publishable key (pk_test_...) is required.");
    }
    return {
      elements: function () {
        return {
          create: function (type, options) {
            if (type !== "card") throw new Error("The emulator's Stripe.js offers the card element only.");
            return new CardElement(publishableKey, options);
          },
        };
      },
      createPaymentMethod: function (params) {
        if (!params || params.type !== "card" || !params.card) {
          return Promise.resolve({ error: { type: "validation_error", message: "A card element is required." } });
        }
        return params.card._request("createPaymentMethod", { billing_details: params.billing_details || {} });
      },
    };
  };
})();
