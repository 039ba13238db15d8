/* SonoTrace annotation client: say so when the server refuses to update the page.
 * Dash's renderer shows nothing in production when a callback request fails, so a
 * click or an edit would silently do nothing (and an edit drawn by plotly would look
 * recorded when it was not). The server refuses a callback it will not run (a page
 * from before an upgrade, page state altered in the browser: 400), one too large
 * (413), one from another site (403, plain text) or fails (5xx); this shows its
 * message, or the status, in a banner at the top. It watches the renderer's requests
 * by wrapping fetch. */
(function () {
  var original = window.fetch;
  if (!original) { return; }

  function show(message) {
    var banner = document.getElementById("stale-page");
    if (!banner) {
      banner = document.createElement("div");
      banner.id = "stale-page";
      banner.className = "alert alert-warning alert-dismissible m-0 rounded-0 text-center";
      banner.setAttribute("role", "alert");
      var text = document.createElement("span");
      text.id = "stale-page-text";
      banner.appendChild(text);
      // It stays until read and dismissed: a later action that works does not say
      // that this one did.
      var close = document.createElement("button");
      close.type = "button";
      close.className = "btn-close";
      close.setAttribute("aria-label", "Dismiss");
      close.addEventListener("click", function () { banner.remove(); });
      banner.appendChild(close);
      document.body.insertBefore(banner, document.body.firstChild);
    }
    document.getElementById("stale-page-text").textContent =
      "This page could not be updated: " + message + ". The last action did not take effect.";
  }

  function reason(status, text) {
    try {
      var error = JSON.parse(text).error;
      if (error && error.message) { return String(error.message); }
    } catch (e) { /* not JSON: the plain-text refusals, or a proxy's page */ }
    var plain = text.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim();
    if (plain && text.charAt(0) !== "<" && plain.length <= 300) { return plain; }
    // A reload drops the undo history and any unsaved work: not the first thing to try.
    return "the server answered HTTP " + status + "; try again, and if it keeps failing, " +
      "save your work, then reload the page";
  }

  window.fetch = function (input, init) {
    var url = typeof input === "string" ? input : (input && input.url) || "";
    return original.apply(this, arguments).then(function (response) {
      // 204 is Dash's "nothing to update"; only refusals and failures are said.
      if (response.status >= 400 && url.indexOf("_dash-update-component") !== -1) {
        response.clone().text().then(function (text) {
          show(reason(response.status, text));
        }).catch(function () { show("the server answered HTTP " + response.status); });
      }
      return response;
    });
  };
}());
