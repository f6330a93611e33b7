// retrotread's charts: inline SVG drawn from JSON the page embeds (<script type=
// "application/json">), no library and nothing fetched, because a gym's Pi may have no
// internet. <div class="chart" data-chart="weeks|session" data-source="ID"> is drawn at its
// own pixel width, so text stays readable on a 360 px phone, and redrawn on resize.
// Colours come from history.css classes.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var M = { top: 12, right: 12, bottom: 26, left: 40 };

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, content, attrs) {
    var node = el("text", Object.assign({ x: x, y: y, class: "tick" }, attrs || {}), parent);
    node.textContent = content;
    return node;
  }

  // A round step that gives about `count` ticks up to `max`.
  function niceStep(max, count) {
    var raw = max / count, power = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * power >= raw) return steps[i] * power;
    return 10 * power;
  }

  function frame(box, height, label) {
    var width = Math.max(280, Math.round(box.clientWidth || 600));
    var svg = el("svg", { viewBox: "0 0 " + width + " " + height, width: width,
                          height: height, role: "img", "aria-label": label });
    return { svg: svg, width: width, height: height,
             plotW: width - M.left - M.right, plotH: height - M.top - M.bottom };
  }

  function yAxis(f, max, unit) {
    var step = niceStep(max, 4);
    for (var v = 0; v <= max + 1e-9; v += step) {
      var y = M.top + f.plotH - (v / max) * f.plotH;
      el("line", { x1: M.left, x2: M.left + f.plotW, y1: y, y2: y, class: "axis" }, f.svg);
      text(f.svg, M.left - 6, y + 4, String(Math.round(v * 10) / 10), { "text-anchor": "end" });
    }
    text(f.svg, 2, M.top - 2, unit, { "text-anchor": "start" });
  }

  // Backward minutes per week as bars, the program's weekly target as a dashed line.
  function drawWeeks(box, data) {
    var weeks = data.weeks, target = data.target_min;
    var most = Math.max.apply(null, weeks.map(function (w) { return w.backward_min; }));
    var max = Math.max(target * 1.25, most * 1.1, 1);
    var label = "Backward minutes per week for the last " + weeks.length + " weeks against a " +
      "target of " + target + " minutes: " +
      weeks.map(function (w) { return w.label + " " + w.backward_min; }).join(", ");
    var f = frame(box, 220, label);
    yAxis(f, max, "min");
    var slot = f.plotW / weeks.length, barW = Math.max(6, slot * 0.6);
    weeks.forEach(function (w, i) {
      var h = (w.backward_min / max) * f.plotH, x = M.left + i * slot + (slot - barW) / 2;
      var bar = el("rect", { x: x, y: M.top + f.plotH - h, width: barW, height: h,
                             class: w.backward_min >= target ? "bar met" : "bar" }, f.svg);
      el("title", {}, bar).textContent = "week of " + w.week_of + ": " + w.backward_min + " min";
      if (slot >= 34 || i % 2 === weeks.length % 2) {
        text(f.svg, x + barW / 2, f.height - 8, w.label, { "text-anchor": "middle" });
      }
    });
    var ty = M.top + f.plotH - (target / max) * f.plotH;
    el("line", { x1: M.left, x2: M.left + f.plotW, y1: ty, y2: ty, class: "target" }, f.svg);
    text(f.svg, M.left + f.plotW, ty - 5, "target " + target + " min",
         { "text-anchor": "end", class: "target-label" });
    return f.svg;
  }

  // Points are [seconds, lowest km/h, highest km/h, cap km/h] per time bucket; a run of
  // points ends where a value is missing or the samples have a gap.
  function runs(points, pick, gap) {
    var out = [], run = [];
    points.forEach(function (p, i) {
      var value = pick(p), broke = i > 0 && p[0] - points[i - 1][0] > gap;
      if (value === null || broke) { if (run.length) out.push(run); run = []; }
      if (value !== null) run.push([p[0], value]);
    });
    if (run.length) out.push(run);
    return out;
  }

  function drawSession(box, data) {
    var points = data.points, duration = Math.max(data.duration_s, 1);
    var f = frame(box, 260, box.getAttribute("data-label") || "Belt speed and cap");
    var max = 1;
    points.forEach(function (p) { max = Math.max(max, p[2] || 0, p[3] || 0); });
    max = max * 1.1;
    var X = function (t) { return M.left + (t / duration) * f.plotW; };
    var Y = function (v) { return M.top + f.plotH - (v / max) * f.plotH; };
    data.bands.forEach(function (b) {
      el("rect", { x: X(b[1]), y: M.top, width: Math.max(1, X(b[2]) - X(b[1])),
                   height: f.plotH, class: "band-" + b[0] }, f.svg);
    });
    yAxis(f, max, "km/h");
    var stepMin = niceStep(duration / 60, 6) || 1;
    for (var m = 0; m * 60 <= duration; m += stepMin) {
      text(f.svg, X(m * 60), f.height - 8, Math.round(m * 100) / 100 + " min",
           { "text-anchor": "middle" });
    }
    runs(points, function (p) { return p[1] === null ? null : p; }, data.gap_s)
      .forEach(function (run) {
        var top = run.map(function (q) { return X(q[0]) + "," + Y(q[1][2]); });
        var bottom = run.slice().reverse().map(function (q) { return X(q[0]) + "," + Y(q[1][1]); });
        el("polygon", { points: top.concat(bottom).join(" "), class: "speed-range" }, f.svg);
        var mid = run.map(function (q) { return X(q[0]) + "," + Y((q[1][1] + q[1][2]) / 2); });
        el("polyline", { points: mid.join(" "), class: "speed" }, f.svg);
      });
    runs(points, function (p) { return p[3]; }, data.gap_s).forEach(function (run) {
      var step = [];
      run.forEach(function (q, i) {
        if (i > 0) step.push(X(q[0]) + "," + Y(run[i - 1][1]));
        step.push(X(q[0]) + "," + Y(q[1]));
      });
      el("polyline", { points: step.join(" "), class: "cap" }, f.svg);
    });
    data.marks.forEach(function (mark) {
      var line = el("line", { x1: X(mark[0]), x2: X(mark[0]), y1: M.top, y2: M.top + f.plotH,
                              class: "mark " + mark[1] }, f.svg);
      el("title", {}, line).textContent = mark[1].replace(/_/g, " ") + " at " +
        Math.floor(mark[0] / 60) + " min " + Math.round(mark[0] % 60) + " s";
    });
    if (!points.length) {
      text(f.svg, M.left + f.plotW / 2, M.top + f.plotH / 2, "no samples stored",
           { "text-anchor": "middle" });
    }
    return f.svg;
  }

  var DRAW = { weeks: drawWeeks, session: drawSession };

  function drawAll() {
    document.querySelectorAll("[data-chart]").forEach(function (box) {
      var draw = DRAW[box.getAttribute("data-chart")];
      var source = document.getElementById(box.getAttribute("data-source"));
      if (!draw || !source) return;
      box.replaceChildren(draw(box, JSON.parse(source.textContent)));
    });
  }

  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(drawAll, 150);
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
