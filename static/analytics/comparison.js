// The comparison chart: our price against each competitor's, from the page's own data
// (#series-data, the same JSON as /api/v1/prices/series). Chart.js is vendored (static/vendor).
(function () {
  "use strict";
  const payload = JSON.parse(document.getElementById("series-data").textContent);
  const labels = JSON.parse(document.getElementById("chart-labels").textContent);
  const alerts = JSON.parse(document.getElementById("alert-data").textContent);
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

  // Alerts: a red triangle at the time each opened, at the price it is about (theirs, else
  // ours, else the nearest point of its competitor's line, else of ours), and a dotted line
  // across the chart (alertLines).
  const ALERT_COLOR = "#b71c1c";
  const priceLines = new Map(payload.series.map((series, i) => [series.competitor, datasets[2 * i].data]));
  function alertPrice(alert, at) {
    if (alert.their_price != null) return alert.their_price;
    if (alert.our_price != null) return alert.our_price;
    const line = priceLines.get(alert.competitor) || [];
    const points = line.length ? line : priceLines.get(null) || [];
    let nearest = null;
    points.forEach((p) => {
      if (nearest === null || Math.abs(p.x - at) < Math.abs(nearest.x - at)) nearest = p;
    });
    return nearest ? nearest.y : 0;
  }
  if (alerts.length) {
    datasets.push({
      type: "scatter",
      label: labels.alerts,
      data: alerts.map((a) => {
        const at = Date.parse(a.opened_at);
        return {x: at, y: alertPrice(a, at), alert: a};
      }),
      borderColor: ALERT_COLOR,
      backgroundColor: ALERT_COLOR,
      pointStyle: "triangle",
      pointRadius: 7,
      pointHoverRadius: 9,
      showLine: false,
    });
  }
  const alertLines = {
    id: "alertLines",
    beforeDatasetsDraw(chart) {
      const index = chart.data.datasets.findIndex((d) => d.label === labels.alerts && d.type === "scatter");
      if (index < 0 || !chart.isDatasetVisible(index)) return;
      const {ctx, chartArea, scales} = chart;
      ctx.save();
      ctx.strokeStyle = ALERT_COLOR;
      ctx.globalAlpha = 0.45;
      ctx.setLineDash([2, 3]);
      chart.data.datasets[index].data.forEach((p) => {
        const x = scales.x.getPixelForValue(p.x);
        if (x < chartArea.left || x > chartArea.right) return;
        ctx.beginPath();
        ctx.moveTo(x, chartArea.top);
        ctx.lineTo(x, chartArea.bottom);
        ctx.stroke();
      });
      ctx.restore();
    },
  };
  function alertText(a) {
    let text = a.kind_label + " #" + a.id;
    if (a.competitor_name) text += " · " + a.competitor_name;
    const parts = [];
    if (a.their_price != null) parts.push(labels.their_price + " " + money(a.their_price) + " " + labels.rub);
    if (a.our_price != null) parts.push(labels.our_price + " " + money(a.our_price) + " " + labels.rub);
    if (a.difference_rub != null) {
      let gap = labels.gap + " " + money(a.difference_rub) + " " + labels.rub;
      if (a.difference_pct != null) gap += " (" + money(a.difference_pct) + " %)";
      parts.push(gap);
    }
    if (a.details) parts.push(a.details);
    return parts.length ? [text, parts.join(" · ")] : text;
  }

  const DAY = 86400000;
  const start = new Date(payload.from + "T00:00:00").getTime();
  const end = new Date(payload.to + "T00:00:00").getTime() + DAY;
  const canvas = document.getElementById("price-chart");
  new Chart(canvas, {
    type: "line",
    plugins: [alertLines],
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
              if (item.raw.alert) return alertText(item.raw.alert);
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
