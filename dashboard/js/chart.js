/**
 * A line chart in hand-written SVG: time series up to now, y from 0 to a round maximum, a legend
 * with each series' latest value. The time axis spans the points held, from one minute up to
 * `windowMs`, so a page opened a moment ago does not squeeze its first points into a corner.
 * Colours come from the stylesheet (`.series-0`, `.series-1`, ...).
 *
 * @module
 */

import { h, svg } from "./dom.js";

const WIDTH = 640;
const HEIGHT = 180;
const LEFT = 52;
const RIGHT = 10;
const TOP = 10;
const BOTTOM = 22;
/** The shortest time axis. */
const MIN_SPAN_MS = 60_000;

/** The smallest of 1, 2, 5 times a power of ten that is at least `value` (1 for 0). */
export function roundUp(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value * (1 - 1e-9)) return step * power;
  return 10 * power;
}

/** How long ago a tick of the time axis is: "now", "−40 s", "−10 min". */
function agoLabel(ms) {
  if (ms < 1000) return "now";
  return ms < 120_000 ? `−${Math.round(ms / 1000)} s` : `−${Math.round(ms / 60_000)} min`;
}

/**
 * A chart titled `title`; `series` is `[{ key, label }]`, `format(value)` writes a value. `update`
 * takes the time "now" and a map from key to `[time, value]` points.
 */
export function lineChart({ title, series, windowMs, format }) {
  const plot = svg("g", { class: "plot" });
  const chart = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
    "aria-label": title,
    class: "chart",
    data: { points: "0" },
  }, plot);
  const latest = series.map(() => h("span", { class: "value", text: "–" }));
  const legend = h(
    "ul",
    { class: "legend" },
    series.map((s, i) =>
      h("li", {}, h("span", { class: `swatch series-${i}` }), ` ${s.label} `, latest[i])
    ),
  );
  const element = h(
    "figure",
    { class: "card chart-card" },
    h("figcaption", { text: title }),
    chart,
    legend,
  );

  function update(now, data) {
    const all = series.flatMap((s) => data.get(s.key) ?? []);
    const oldest = Math.min(now, ...all.map(([time]) => time));
    const span = Math.min(windowMs, Math.max(MIN_SPAN_MS, now - oldest));
    const start = now - span;
    const x = (time) => LEFT + ((time - start) / span) * (WIDTH - LEFT - RIGHT);
    const top = roundUp(Math.max(0, ...all.map(([, value]) => value)));
    const y = (value) => TOP + (1 - value / top) * (HEIGHT - TOP - BOTTOM);
    const grid = [0, top / 2, top].map((value) => [
      svg("line", { class: "grid", x1: LEFT, x2: WIDTH - RIGHT, y1: y(value), y2: y(value) }),
      svg(
        "text",
        { class: "tick", x: LEFT - 6, y: y(value) + 4, "text-anchor": "end" },
        format(value),
      ),
    ]);
    const times = [0, 1 / 3, 2 / 3, 1].map((fraction) =>
      svg("text", {
        class: "tick",
        x: LEFT + fraction * (WIDTH - LEFT - RIGHT),
        y: HEIGHT - 6,
        "text-anchor": fraction === 0 ? "start" : fraction === 1 ? "end" : "middle",
      }, agoLabel(span * (1 - fraction)))
    );
    const lines = series.map((s, i) => {
      const points = (data.get(s.key) ?? []).filter(([time]) => time >= start);
      latest[i].textContent = points.length > 0 ? format(points.at(-1)[1]) : "–";
      return svg("polyline", {
        class: `line series-${i}`,
        points: points.map(([time, value]) => `${x(time).toFixed(1)},${y(value).toFixed(1)}`)
          .join(" "),
      });
    });
    plot.replaceChildren(...grid.flat(), ...times, ...lines);
    chart.dataset.points = String(Math.max(0, ...series.map((s) => data.get(s.key)?.length ?? 0)));
  }

  return { element, update };
}
