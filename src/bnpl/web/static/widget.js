/*! BNPL merchant widget v1 — /widget/v1/bnpl.js
 *
 * <script src="https://PLATFORM/widget/v1/bnpl.js" data-key="pk_test_..." defer></script>
 * <bnpl-promo amount="5000" currency="USD" checkout-url="/cart/bnpl"></bnpl-promo>
 *
 * Shows the promotional message for the price from the merchant's real plans (read with the
 * publishable key, which can read offers and nothing else) and a pay button. The button
 * goes to `redirect-url` (a checkout's redirect_url made by the merchant's server), or POSTs
 * to the merchant's own `checkout-url`, which makes the checkout with its secret key on the
 * server and answers {"redirect_url": ...}. Everything lives in a shadow root: the host
 * page's styles do not reach in, the widget's do not reach out, and no global is defined
 * but the custom element. Only redirect URLs on this platform are followed.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.customElements.get("bnpl-promo")) { return; }
  var platform = new URL(script.src, document.baseURI).origin;
  var defaultKey = script.getAttribute("data-key") || "";

  function text(tag, className, value) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    node.textContent = value;
    return node;
  }

  function isPlatformUrl(url) {
    try { return new URL(url, platform).origin === platform; } catch (e) { return false; }
  }

  class BnplPromo extends HTMLElement {
    connectedCallback() {
      if (this._root) { return; }
      this._root = this.attachShadow({ mode: "open" });
      var sheet = document.createElement("link");
      sheet.rel = "stylesheet";
      sheet.href = platform + "/widget/v1/bnpl.css";
      this._root.appendChild(sheet);
      this._box = document.createElement("div");
      this._box.className = "box";
      this._box.setAttribute("part", "box");
      this._root.appendChild(this._box);
      this.load();
    }

    load() {
      var self = this;
      var query = new URLSearchParams({
        key: this.getAttribute("key") || defaultKey,
        amount: this.getAttribute("amount") || "",
        currency: this.getAttribute("currency") || "USD"
      });
      fetch(platform + "/widget/v1/offers?" + query.toString(), { credentials: "omit" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (offer) { self.show(offer); })
        .catch(function () { self.show(null); });
    }

    show(offer) {
      var box = this._box;
      box.textContent = "";
      if (!offer || !offer.message.length) { this.hidden = true; return; }
      offer.message.forEach(function (line) {
        box.appendChild(text("p", "line", line));
      });
      var button = text("button", "", "Pay later with BNPL");
      button.type = "button";
      button.setAttribute("part", "button");
      var self = this;
      button.addEventListener("click", function () { self.pay(button); });
      box.appendChild(button);
    }

    pay(button) {
      var direct = this.getAttribute("redirect-url");
      if (direct) { this.go(direct); return; }
      var endpoint = this.getAttribute("checkout-url");
      if (!endpoint) { return; }
      var self = this;
      button.disabled = true;
      fetch(endpoint, { method: "POST", credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { if (!r.ok) { throw new Error("checkout"); } return r.json(); })
        .then(function (made) { self.go(made.redirect_url); })
        .catch(function () {
          button.disabled = false;
          self._box.appendChild(text("p", "error", "Something went wrong. Please try again."));
        });
    }

    go(url) {
      if (isPlatformUrl(url)) { window.location.assign(url); }
    }
  }

  window.customElements.define("bnpl-promo", BnplPromo);
})();
