/* Gaggle's live page: refreshes the report from its own server each second, and steers the run
   through the control API when that API would take the page's calls. Nothing else is fetched. */
(function () {
  "use strict";
  var settings = JSON.parse(document.getElementById("gaggle-live").textContent);
  var TOKEN_KEY = "gaggle-control-token";
  var STOP_CONFIRM_MS = 4000;
  var updates = 0;
  var liveState = document.getElementById("live-state");

  function byId(id) { return document.getElementById(id); }

  function fetchJson(path, options) {
    return fetch(path, options || { cache: "no-store" }).then(function (response) {
      return response.json().then(function (body) { return { status: response.status, body: body }; });
    });
  }

  // --- the report, each second ------------------------------------------------------------
  function refresh() {
    Promise.all([fetchJson(settings.report), fetchJson(settings.sections)]).then(function (got) {
      window.gaggleReport.update(got[0].body);
      byId("summary-section").innerHTML = got[1].body.summary;  // escaped by the server
      byId("tables-section").innerHTML = got[1].body.tables;
      updates += 1;
      document.body.setAttribute("data-updates", String(updates));
      liveState.textContent = "Live: updated " + new Date().toLocaleTimeString() + ".";
      setTimeout(refresh, settings.refresh_ms);
    }, function () {
      liveState.textContent = "Not updating: the run's server does not answer (has the run ended?).";
      setTimeout(refresh, 5 * settings.refresh_ms);
    });
  }
  setTimeout(refresh, settings.refresh_ms);

  // --- the controls -------------------------------------------------------------------------
  if (settings.control === "off") { return; }  // the API would refuse: nothing to show
  var panel = byId("control-panel");
  var tokenForm = byId("control-token");
  var message = byId("control-message");
  var filled = false;  // the inputs start from the run's values, then stay as typed

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  function call(method, path, body) {
    var headers = { "Content-Type": "application/json" };
    if (token()) { headers.Authorization = "Bearer " + token(); }
    var options = { method: method, headers: headers, cache: "no-store" };
    if (body !== undefined) { options.body = JSON.stringify(body); }
    return fetchJson(path, options);
  }

  function askForToken(why) {
    sessionStorage.removeItem(TOKEN_KEY);
    panel.hidden = true;
    tokenForm.hidden = false;
    message.textContent = why;
  }

  function describe(status) {
    var remaining = status.run_time.remaining;
    var parts = [status.state, "users " + status.users.running + "/" + status.users.target];
    if (status.arrival_rate !== null) { parts.push("arrival rate " + status.arrival_rate + "/s"); }
    parts.push(remaining === null ? "until stopped" : Math.round(remaining) + " s left");
    if (status.stopping) { parts.push("stopping: " + status.stopping); }
    return parts.join(" · ");
  }

  function show(status) {
    tokenForm.hidden = true;
    panel.hidden = false;
    // an open model is steered by its rate, a closed one by its users (the API refuses the other)
    byId("control-arrival").hidden = status.arrival_rate === null;
    byId("control-closed").hidden = status.arrival_rate !== null;
    byId("control-state").textContent = describe(status);
    document.body.setAttribute("data-users-running", String(status.users.running));
    if (!filled) {
      byId("control-users").value = String(status.users.target);
      byId("control-hatch-rate").value = String(status.hatch_rate);
      if (status.arrival_rate !== null) { byId("control-arrival-rate").value = String(status.arrival_rate); }
      filled = true;
    }
  }

  function answered(got) {
    if (got.status === 200) { show(got.body); return true; }
    if (got.status === 401) { askForToken("That token was refused; enter this run's control token."); return false; }
    message.textContent = got.body.error || "refused (" + got.status + ")";
    return false;
  }

  function poll() {
    if (settings.control === "token" && !token()) { return; }  // the form starts it again
    call("GET", settings.status).then(function (got) {
      if (answered(got)) { setTimeout(poll, settings.refresh_ms); }
    }, function () {
      byId("control-state").textContent = "The control API does not answer.";
    });
  }

  function change(path, body) {
    call("POST", path, body).then(function (got) {
      if (answered(got)) { message.textContent = "Done: " + describe(got.body); }
    }, function () { message.textContent = "The control API does not answer."; });
  }

  byId("control-token-use").addEventListener("click", function () {
    var given = byId("control-token-value").value.trim();
    if (!given) { return; }
    sessionStorage.setItem(TOKEN_KEY, given);
    byId("control-token-value").value = "";
    message.textContent = "";
    poll();
  });
  byId("control-users-set").addEventListener("click", function () {
    var body = { users: Number(byId("control-users").value) };
    var rate = byId("control-hatch-rate").value;
    if (rate) { body.hatch_rate = Number(rate); }
    change("/api/users", body);
  });
  byId("control-arrival-set").addEventListener("click", function () {
    change("/api/arrival-rate", { arrival_rate: Number(byId("control-arrival-rate").value) });
  });
  byId("control-remaining-set").addEventListener("click", function () {
    change("/api/run-time", { remaining: byId("control-remaining").value.trim() });
  });
  // A stop cannot be undone: the first click asks, a second within a few seconds stops.
  var stopButton = byId("control-stop");
  var armed = null;
  stopButton.addEventListener("click", function () {
    if (armed === null) {
      stopButton.textContent = "Click again to stop";
      armed = setTimeout(function () { armed = null; stopButton.textContent = "Stop the run"; }, STOP_CONFIRM_MS);
      return;
    }
    clearTimeout(armed);
    armed = null;
    stopButton.textContent = "Stop the run";
    change("/api/stop", { reason: "stopped from the live page" });
  });

  byId("controls").hidden = false;
  if (settings.control === "token" && !token()) {
    tokenForm.hidden = false;
  } else {
    poll();
  }
}());
