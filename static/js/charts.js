/* Draws each <canvas data-chart="name"> from the JSON in #chart-data with the vendored Chart.js.
   The table under each chart carries the same numbers; without this script the tables remain. */
(function () {
  "use strict";
  function draw() {
    var source = document.getElementById("chart-data");
    if (!source || typeof window.Chart === "undefined") { return; }
    var charts = JSON.parse(source.textContent);
    var reduce = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var spec = charts[canvas.getAttribute("data-chart")];
      if (!spec || !spec.labels.length) { canvas.parentNode.hidden = true; return; }
      var horizontal = !!spec.horizontal;
      new window.Chart(canvas, {
        type: spec.type,
        data: {
          labels: spec.labels,
          datasets: spec.series.map(function (s) {
            return { label: s.label, data: s.data, backgroundColor: s.color, borderColor: s.color, maxBarThickness: 56 };
          })
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: reduce ? false : { duration: 300 },
          indexAxis: horizontal ? "y" : "x",
          plugins: { legend: { display: spec.series.length > 1, labels: { color: "#1d2530" } } },
          scales: {
            x: { stacked: !!spec.stacked, ticks: { color: "#1d2530", precision: 0 }, grid: { color: "#e4e8ee" } },
            y: { stacked: !!spec.stacked, beginAtZero: true, ticks: { color: "#1d2530", precision: 0 }, grid: { color: "#e4e8ee" } }
          }
        }
      });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
