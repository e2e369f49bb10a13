// OTYS support dashboard: the Statistics page's charts, drawn with the vendored Chart.js from the
// figures the page carries as JSON (#statistics-data). The tables under each chart hold the same
// figures for screen readers and for anyone who prefers numbers.
(function () {
  "use strict";

  var OUTCOME_COLOURS = {
    answered: "#1b7f4b",
    voicemail: "#1f6feb",
    refused: "#c62828",
    no_answer: "#e07b00",
    abandoned: "#8e99a8",
    closed: "#5f6b7d",
    call_back: "#00897b",
    informed: "#5c6bc0",
    in_progress: "#b39ddb"
  };
  var IN_HOURS = "#1f6feb";
  var OUT_OF_HOURS = "#17324d";
  var HEAT_RGB = "31, 111, 235";

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas) { return null; }
    config.options = config.options || {};
    config.options.responsive = true;
    config.options.maintainAspectRatio = false;
    if (window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches) {
      config.options.animation = false;
    }
    return new window.Chart(canvas, config);
  }

  function wholeNumbers(extra) {
    var axis = { beginAtZero: true, ticks: { precision: 0 } };
    Object.keys(extra || {}).forEach(function (key) { axis[key] = extra[key]; });
    return axis;
  }

  function perDay(days) {
    draw("chart-days", {
      type: "bar",
      data: {
        labels: days.labels,
        datasets: days.series.map(function (series) {
          return { label: series.label, data: series.data, backgroundColor: OUTCOME_COLOURS[series.key] };
        })
      },
      options: {
        interaction: { mode: "index", intersect: false },
        scales: { x: { stacked: true }, y: wholeNumbers({ stacked: true, title: { display: true, text: "calls" } }) }
      }
    });
  }

  function heatMap(heat) {
    var hours = [];
    var cells = [];
    var most = 1;
    for (var hour = 0; hour < 24; hour += 1) { hours.push((hour < 10 ? "0" : "") + hour); }
    heat.weekdays.forEach(function (weekday, day) {
      heat.cells[day].forEach(function (count, hour) {
        cells.push({ x: hours[hour], y: weekday, v: count });
        most = Math.max(most, count);
      });
    });
    draw("chart-heat", {
      type: "matrix",
      data: {
        datasets: [{
          label: "Emergency calls",
          data: cells,
          backgroundColor: function (context) {
            var cell = context.dataset.data[context.dataIndex];
            var share = cell && cell.v ? 0.15 + 0.85 * cell.v / most : 0.04;
            return "rgba(" + HEAT_RGB + ", " + share.toFixed(3) + ")";
          },
          borderColor: "#ffffff",
          borderWidth: 1,
          width: function (context) { var area = context.chart.chartArea || {}; return (area.width || 0) / 24 - 1; },
          height: function (context) { var area = context.chart.chartArea || {}; return (area.height || 0) / 7 - 1; }
        }]
      },
      options: {
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              title: function () { return ""; },
              label: function (context) {
                var cell = context.raw;
                return cell.y + " " + cell.x + ":00–" + cell.x + ":59: " + cell.v + (cell.v === 1 ? " call" : " calls");
              }
            }
          }
        },
        scales: {
          x: { type: "category", labels: hours, offset: true, grid: { display: false }, title: { display: true, text: "hour of the day" } },
          // Monday at the top, as in a diary (the matrix chart reverses its y axis by default).
          y: { type: "category", labels: heat.weekdays, offset: true, reverse: false, grid: { display: false } }
        }
      }
    });
  }

  // One row per label, tall enough that no label is skipped (set through the CSSOM, which the
  // content security policy allows, unlike a style attribute).
  function horizontal(id, labels, datasets, stacked) {
    var canvas = document.getElementById(id);
    if (!canvas) { return; }
    var perRow = stacked ? 30 : 16 + 12 * datasets.length;
    canvas.parentNode.style.height = Math.max(160, 70 + labels.length * perRow) + "px";
    draw(id, {
      type: "bar",
      data: { labels: labels, datasets: datasets },
      options: {
        indexAxis: "y",
        interaction: { mode: "index", intersect: false },
        scales: { x: wholeNumbers({ stacked: stacked }), y: { stacked: stacked } }
      }
    });
  }

  function start() {
    var source = document.getElementById("statistics-data");
    if (!source || !window.Chart) { return; }
    var figures = JSON.parse(source.textContent);
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    window.Chart.defaults.color = "#1d2433";
    perDay(figures.days);
    heatMap(figures.heat);
    horizontal("chart-organisations", figures.organisations.labels, [
      { label: "Calls", data: figures.organisations.calls, backgroundColor: "#8e99a8" },
      { label: "Answered", data: figures.organisations.answered, backgroundColor: OUTCOME_COLOURS.answered }
    ], false);
    horizontal("chart-engineers", figures.engineers.labels, [
      { label: "In hours", data: figures.engineers.in_hours, backgroundColor: IN_HOURS },
      { label: "Out of hours", data: figures.engineers.out_of_hours, backgroundColor: OUT_OF_HOURS }
    ], true);
    horizontal("chart-office", figures.office.labels, [
      { label: "Office calls", data: figures.office.calls, backgroundColor: IN_HOURS }
    ], false);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
