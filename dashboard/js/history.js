/**
 * The overview's memory of recent samples: cumulative counters and gauges taken every few
 * seconds, kept for a sliding time window and a bounded count. Rates are computed from the
 * counters here, in the browser. No DOM: the tests run this under Deno.
 *
 * @module
 */

export class History {
  #windowMs;
  #maxSamples;
  /** `{ time, values }`, oldest first. */
  #samples = [];

  /** Keeps samples of the last `windowMs`, and `maxSamples` of them at most. */
  constructor(windowMs, maxSamples) {
    this.#windowMs = windowMs;
    this.#maxSamples = maxSamples;
  }

  /** Adds a sample taken at `time` (ms); `values` maps names to numbers. */
  record(time, values) {
    const last = this.#samples.at(-1);
    if (last && time <= last.time) return;
    this.#samples.push({ time, values });
    const oldest = time - this.#windowMs;
    let drop = 0;
    while (
      drop < this.#samples.length &&
      (this.#samples.length - drop > this.#maxSamples || this.#samples[drop].time < oldest)
    ) drop++;
    if (drop > 0) this.#samples.splice(0, drop);
  }

  /** Samples held. */
  get size() {
    return this.#samples.length;
  }

  /** `[time, value]` of a gauge. */
  gauge(name) {
    return this.#samples.map(({ time, values }) => [time, values[name]]);
  }

  /**
   * `[time, per-second rate]` of a counter between consecutive samples; where it went down (the
   * broker restarted) there is no point.
   */
  rate(name) {
    const points = [];
    for (let i = 1; i < this.#samples.length; i++) {
      const before = this.#samples[i - 1];
      const after = this.#samples[i];
      const increase = after.values[name] - before.values[name];
      if (increase < 0) continue;
      points.push([after.time, increase / ((after.time - before.time) / 1000)]);
    }
    return points;
  }

  /** The rate of a counter over the latest interval, undefined before two samples. */
  latestRate(name) {
    return this.rate(name).at(-1)?.[1];
  }
}
