/* Gaggle's HTML report: draws the charts from the embedded data with uPlot. No network. */
(function () {
  "use strict";
  // The data the charts show; a live page replaces it each second (window.gaggleReport.update).
  var data = JSON.parse(document.getElementById("gaggle-data").textContent);
  var COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
    "#17becf", "#bcbd22", "#7f7f7f"];
  var HEIGHT = 240;
  // Whole seconds and up: points are a second apart at the finest.
  var TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600,
    43200, 86400];
  var DEFAULT_PICKED = 3;
  var charts = [];  // {chart, el, key}: key says when a chart must be made anew (its series)

  function perSecond(counts, seconds) {
    return counts.map(function (count, i) { return seconds[i] > 0 ? count / seconds[i] : null; });
  }

  function widthOf(el) { return Math.max(320, el.clientWidth); }

  function resetLine() {
    return { hooks: { draw: [function (u) {
      if (!data.run.reset_metrics) { return; }
      var x = u.valToPos(Date.parse(data.run.measured_from) / 1000, "x", true);
      if (!(x >= u.bbox.left && x <= u.bbox.left + u.bbox.width)) { return; }
      var ctx = u.ctx;
      ctx.save();
      ctx.strokeStyle = "#999";
      ctx.setLineDash([5, 5]);
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
      ctx.restore();
    }] } };
  }

  // A test plan's or load shape's stages (gold), and changes made through the control API
  // (purple): a thin line where each began.
  function markLines(field, color) {
    return { hooks: { draw: [function (u) {
      var ctx = u.ctx;
      ctx.save();
      ctx.strokeStyle = color;
      ctx.lineWidth = 1;
      (data.timeline[field] || []).forEach(function (stage) {
        var x = u.valToPos(stage.at, "x", true);
        if (!(x >= u.bbox.left && x <= u.bbox.left + u.bbox.width)) { return; }
        ctx.beginPath();
        ctx.moveTo(x, u.bbox.top);
        ctx.lineTo(x, u.bbox.top + u.bbox.height);
        ctx.stroke();
      });
      ctx.restore();
    }] } };
  }

  function forget(el) {
    charts = charts.filter(function (c) {
      if (c.el === el) { c.chart.destroy(); return false; }
      return true;
    });
  }

  // Whether someone zoomed in: the x scale shows less than the whole of the data.
  function zoomedIn(chart) {
    var x = chart.data[0], scale = chart.scales.x;
    return x.length > 1 && (scale.min > x[0] || scale.max < x[x.length - 1]);
  }

  // Draws a chart, or gives the one already there its new data when its series are the same
  // (a live page: the chart moves, its zoom and legend stay).
  function draw(id, title, unit, labels, xs, columns) {
    var el = document.getElementById(id);
    var key = title + "\n" + labels.join("\n");
    var found = charts.filter(function (c) { return c.el === el; })[0];
    if (found && found.key === key) {
      found.chart.setData([xs].concat(columns), !zoomedIn(found.chart));  // a zoom stays put
      return found.chart;
    }
    forget(el);
    el.textContent = "";
    var series = [{}].concat(labels.map(function (label, i) {
      return { label: label, stroke: COLORS[i % COLORS.length], width: 1.5 };
    }));
    var options = {
      title: title,
      width: widthOf(el),
      height: HEIGHT,
      plugins: [resetLine(), markLines("stages", "#c9a227"), markLines("changes", "#8e44ad")],
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.05 : 1]; } } },
      axes: [{ incrs: TIME_STEPS }, { label: unit, size: 64 }],
      series: series
    };
    var chart = new uPlot(options, [xs].concat(columns), el);
    charts.push({ chart: chart, el: el, key: key });
    return chart;
  }

  function drawTotals() {
    var timeline = data.timeline, xs = timeline.time;
    var rpsLabels = ["requests/s", "failures/s"];
    var rpsColumns = [perSecond(timeline.requests, timeline.seconds),
      perSecond(timeline.failures, timeline.seconds)];
    if (data.schedule && timeline.arrival_rate) {  // an open model: asked, started, dropped
      rpsLabels.push("arrivals asked/s", "arrivals started/s", "arrivals dropped/s");
      rpsColumns.push(timeline.arrival_rate, perSecond(timeline.arrivals_started, timeline.seconds),
        perSecond(timeline.arrivals_dropped, timeline.seconds));
    }
    draw("chart-rps", "Requests per second", "per second", rpsLabels, xs, rpsColumns);
    draw("chart-latency", "Response time", "ms", ["p50", "p95", "p99"], xs,
      [timeline.p50_ms, timeline.p95_ms, timeline.p99_ms]);
    var usersLabels = ["users"];
    var usersColumns = [timeline.users];
    if (timeline.users_target) {  // what the load asked for: a plan's stages, live changes
      usersLabels.push("target");
      usersColumns.push(timeline.users_target);
    }
    if (data.run.workers) {
      usersLabels.push("workers");
      usersColumns.push(timeline.workers);
    }
    draw("chart-users", "Users", "count", usersLabels, xs, usersColumns);
  }

  // Per request: the busiest few are drawn; the rest are picked by hand (all at once is noise).
  var FIELDS = [["rps", "requests/s"], ["fail_rps", "failures/s"], ["p50_ms", "p50 (ms)"],
    ["p95_ms", "p95 (ms)"], ["p99_ms", "p99 (ms)"]];
  var fieldSelect = document.getElementById("request-field");
  FIELDS.forEach(function (f) {
    var option = document.createElement("option");
    option.value = f[0];
    option.textContent = f[1];
    fieldSelect.appendChild(option);
  });
  var picker = document.getElementById("request-picker");
  var filter = document.getElementById("request-filter");
  var boxes = [];  // {box, label, series}, busiest first when the picker was made
  var picked = {};  // label -> checked, kept while a live page adds names

  function filtered(b) {
    return b.series.label.toLowerCase().indexOf(filter.value.toLowerCase()) >= 0;
  }

  function makePicker(series, omitted) {
    picker.textContent = "";
    boxes = series.map(function (s, i) {
      var label = document.createElement("label");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.checked = s.label in picked ? picked[s.label] : i < DEFAULT_PICKED;
      picked[s.label] = box.checked;
      box.addEventListener("change", function () { picked[s.label] = box.checked; drawRequests(); });
      label.appendChild(box);
      label.appendChild(document.createTextNode(" " + s.label));
      label.title = s.label;
      picker.appendChild(label);
      var made = { box: box, label: label, series: s };
      label.style.display = filtered(made) ? "" : "none";
      return made;
    });
    if (omitted) {
      var note = document.createElement("p");
      note.className = "note";
      note.textContent = omitted + " more request names have no series (too many names).";
      picker.appendChild(note);
    }
  }

  function requestColumn(s, field) {
    var seconds = data.timeline.by_request.seconds;
    if (field === "rps") { return perSecond(s.requests, seconds); }
    if (field === "fail_rps") { return perSecond(s.failures, seconds); }
    return s[field];
  }

  function drawRequests() {
    var byRequest = data.timeline.by_request;
    var field = fieldSelect.value;
    var shown = boxes.filter(function (b) { return b.box.checked; });
    var name = FIELDS.filter(function (f) { return f[0] === field; })[0][1];
    draw("chart-requests", "Per request: " + name, name, shown.map(function (b) { return b.series.label; }),
      byRequest.time, shown.map(function (b) { return requestColumn(b.series.data, field); }));
  }

  // The picker is made anew only when names come or go; otherwise its boxes get the new data.
  function pickRequests() {
    var byRequest = data.timeline.by_request;
    var series = byRequest.series.map(function (s) {
      var total = s.requests.reduce(function (a, b) { return a + b; }, 0);
      return { label: s.method + " " + s.name, data: s, total: total };
    });
    var names = series.map(function (s) { return s.label; }).sort().join("\n");
    var before = boxes.map(function (b) { return b.series.label; }).sort().join("\n");
    if (names !== before || !boxes.length) {
      makePicker(series.sort(function (a, b) { return b.total - a.total; }), byRequest.omitted);
    } else {
      var byLabel = {};
      series.forEach(function (s) { byLabel[s.label] = s; });
      boxes.forEach(function (b) { b.series = byLabel[b.series.label]; });
    }
  }

  fieldSelect.addEventListener("change", drawRequests);
  filter.addEventListener("input", function () {
    boxes.forEach(function (b) { b.label.style.display = filtered(b) ? "" : "none"; });
  });

  function drawAll() {
    drawTotals();
    pickRequests();
    drawRequests();
    document.getElementById("step").textContent = String(data.timeline.step);
    document.body.setAttribute("data-charts", String(charts.length));
    var rps = charts.filter(function (c) { return c.el.id === "chart-rps"; })[0];
    document.body.setAttribute("data-points", String(rps.chart.data[0].length));  // for tests
  }
  drawAll();

  window.addEventListener("resize", function () {
    charts.forEach(function (c) { c.chart.setSize({ width: widthOf(c.el), height: HEIGHT }); });
  });
  // What a live page calls with each second's data.
  window.gaggleReport = {
    update: function (next) { data = next; drawAll(); },
    chart: function (id) {  // the uPlot chart in element ``id`` (for a look from a test)
      return charts.filter(function (c) { return c.el.id === id; }).map(function (c) { return c.chart; })[0];
    }
  };
}());
