// The comparison chart: our price against each competitor's, from the page's own data
// (#series-data, the same JSON as /api/v1/prices/series). Chart.js is vendored (static/vendor).
(function () {
  "use strict";
  const payload = JSON.parse(document.getElementById("series-data").textContent);
  const labels = JSON.parse(document.getElementById("chart-labels").textContent);
  const lang = document.documentElement.lang || "ru";
  const palette = ["#1b5e20", "#c62828", "#1565c0", "#ef6c00", "#6a1b9a", "#00838f",
                   "#ad1457", "#5d4037", "#283593", "#827717"];
  const money = (v) => v == null ? "—" : v.toLocaleString(lang, {minimumFractionDigits: 0, maximumFractionDigits: 2});

  function line(series, index, field, wallet) {
    const ours = series.kind === "own";
    const color = palette[index % palette.length];
    const name = ours ? labels.ours + " " + series.sku : (series.name || series.sku);
    return {
      label: wallet ? name + " — " + labels.wallet : name,
      data: series.points.filter((p) => p[field] != null).map((p) => ({
        x: Date.parse(p.t), y: p[field], point: p,
      })),
      borderColor: color,
      backgroundColor: color,
      borderWidth: ours ? 3 : 1.5,
      borderDash: wallet ? [6, 4] : [],
      hidden: wallet && !ours,
      pointStyle: (ctx) => (ctx.raw && ctx.raw.point.in_stock === false ? "crossRot" : "circle"),
      pointRadius: (ctx) => (ctx.raw && ctx.raw.point.in_stock === false ? 6 : 2.5),
      tension: 0,
    };
  }

  const datasets = [];
  payload.series.forEach((series, i) => {
    datasets.push(line(series, i, "current_price", false));
    datasets.push(line(series, i, "spp_price", true));
  });

  const DAY = 86400000;
  const start = new Date(payload.from + "T00:00:00").getTime();
  const end = new Date(payload.to + "T00:00:00").getTime() + DAY;
  const canvas = document.getElementById("price-chart");
  new Chart(canvas, {
    type: "line",
    data: {datasets: datasets},
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      parsing: false,
      interaction: {mode: "nearest", intersect: false},
      scales: {
        x: {
          type: "linear",
          min: start,
          max: end,
          // One tick per day (or every few days on long ranges), at local midnights.
          afterBuildTicks: (scale) => {
            const step = Math.max(1, Math.ceil((end - start) / DAY / 10));
            const ticks = [];
            for (let d = new Date(start); d.getTime() <= end; d.setDate(d.getDate() + step)) {
              ticks.push({value: d.getTime()});
            }
            scale.ticks = ticks;
          },
          ticks: {maxRotation: 0, autoSkipPadding: 12,
                  callback: (v) => new Date(v).toLocaleDateString(lang, {day: "2-digit", month: "2-digit"})},
        },
        y: {ticks: {callback: (v) => money(v) + " " + labels.rub}},
      },
      plugins: {
        legend: {position: "bottom", labels: {boxWidth: 14, usePointStyle: true}},
        tooltip: {
          callbacks: {
            title: (items) => new Date(items[0].parsed.x).toLocaleString(lang),
            label: (item) => {
              const p = item.raw.point;
              let text = item.dataset.label + ": " + money(item.parsed.y) + " " + labels.rub;
              if (p.old_price != null) text += " · " + labels.old + " " + money(p.old_price);
              if (p.in_stock === false) text += " · " + labels.out_of_stock;
              else if (p.stock != null) text += " · " + labels.stock + " " + p.stock;
              return text;
            },
          },
        },
      },
    },
  });
})();
