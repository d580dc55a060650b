// Keeps the overview live from /console/stream (server-sent events); plain script, no libraries.
"use strict";
(function () {
  var tiles = document.querySelector("[data-stream]");
  if (!tiles || !window.EventSource) return;
  var ACTION = { block: "拦截", warn: "提醒", tag: "标记", label: "名片" };
  function set(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = String(value);
  }
  function rows(id, items, cells) {
    var body = document.getElementById(id);
    if (!body) return;
    body.textContent = "";
    items.forEach(function (item) {
      var tr = document.createElement("tr");
      cells(item).forEach(function (text) {
        var td = document.createElement("td");
        td.textContent = String(text);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }
  var source = new EventSource(tiles.getAttribute("data-stream"));
  source.onmessage = function (e) {
    var s = JSON.parse(e.data);
    set("interceptions_total", s.interceptions_total);
    set("queue", s.queue);
    set("open_high", s.open_by_tier.high);
    set("open_medium", s.open_by_tier.medium);
    set("open_low", s.open_by_tier.low);
    set("smsc_binds", s.smsc_binds);
    set("sip_registrations", s.sip_registrations);
    rows("interceptions", s.interceptions, function (r) { return [r.category, ACTION[r.action] || r.action, r.count]; });
    rows("labels", s.labels, function (r) { return [r.result === "verified" ? "通过" : "拒绝", r.cause || "-", r.count]; });
    set("live", "实时更新 · " + new Date().toLocaleTimeString("zh-CN"));
  };
})();
