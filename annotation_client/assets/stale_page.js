/* SonoTrace annotation client: say so when the server refuses to update the page.
 * The server answers a callback request it will not run (a page from before an
 * upgrade, whose callbacks no longer exist, or page state altered in the browser)
 * with 400 and {"error": {"code": "bad_callback_request", "message": ...}}. Dash's
 * renderer shows nothing for that in production, so a click would silently do
 * nothing: this shows the server's message, which says to reload the page, in a
 * banner at the top. It watches the renderer's requests by wrapping fetch. */
(function () {
  var original = window.fetch;
  if (!original) { return; }

  function show(message) {
    var banner = document.getElementById("stale-page");
    if (!banner) {
      banner = document.createElement("div");
      banner.id = "stale-page";
      banner.className = "alert alert-warning m-0 rounded-0 text-center";
      banner.setAttribute("role", "alert");
      document.body.insertBefore(banner, document.body.firstChild);
    }
    banner.textContent = "This page could not be updated: " + message + ".";
  }

  window.fetch = function (input, init) {
    var url = typeof input === "string" ? input : (input && input.url) || "";
    return original.apply(this, arguments).then(function (response) {
      if (response.status === 400 && url.indexOf("_dash-update-component") !== -1) {
        response.clone().json().then(function (body) {
          var error = body && body.error;
          if (error && error.code === "bad_callback_request" && error.message) {
            show(String(error.message));
          }
        }).catch(function () { /* not JSON: not the guard's answer */ });
      }
      return response;
    });
  };
}());
