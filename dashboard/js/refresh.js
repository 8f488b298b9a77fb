/**
 * Reloading a page's data every few seconds, for the pages that follow live state (the overview,
 * the agents, the Kafka bridge): one load at a time, at an interval the user picks, saying when
 * the page last got its data and what went wrong when it did not.
 *
 * @module
 */

import { h } from "./dom.js";

/** Seconds between refreshes the user may pick. */
export const REFRESH_SECONDS = [1, 2, 5, 10];

/**
 * Runs `load()` once the caller's turn ends, and again `seconds` after each run ends, until
 * `stop()` (which also hides the controls). A load that throws shows its message in `problem`
 * until a later one succeeds. Returns `controls` (the interval choice and the "Updated" line, for
 * the page's heading), `problem` (a notice to place on the page), `now()` (load again at once,
 * e.g. after a change the page made; during a load, once it ends) and `stop()`.
 */
export function refresher(load, { seconds = 2 } = {}) {
  let interval = seconds * 1000;
  let timer;
  let loading = false;
  let again = false;
  let stopped = false;

  const choice = h(
    "select",
    { id: "refresh", "aria-label": "Refresh every" },
    REFRESH_SECONDS.map((option) =>
      h("option", { value: option, selected: option === seconds }, `every ${option} s`)
    ),
  );
  const updated = h("span", { class: "muted", role: "status" });
  const problem = h("p", { class: "notice bad", role: "alert", hidden: true });

  async function run() {
    if (stopped) return;
    if (loading) {
      again = true;
      return;
    }
    clearTimeout(timer);
    loading = true;
    try {
      await load();
      if (stopped) return;
      problem.hidden = true;
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      if (stopped) return;
      problem.textContent = `Cannot refresh: ${error.message}`;
      problem.hidden = false;
    } finally {
      loading = false;
    }
    if (stopped) return;
    if (again) {
      again = false;
      run();
    } else {
      timer = setTimeout(run, interval);
    }
  }

  choice.addEventListener("change", () => {
    interval = Number(choice.value) * 1000;
    run();
  });
  queueMicrotask(run);
  return {
    controls: [choice, updated],
    problem,
    now: run,
    stop() {
      stopped = true;
      clearTimeout(timer);
      choice.hidden = true;
      updated.hidden = true;
    },
  };
}
