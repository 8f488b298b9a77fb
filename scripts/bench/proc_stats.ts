/**
 * Process figures read from Linux `/proc`: CPU time, resident memory and the open-file limit.
 *
 * @module
 */

/** Kernel clock ticks per second for `/proc/<pid>/stat` times (USER_HZ, 100 on Linux). */
const CLOCK_TICKS = 100;

/**
 * Reads the CPU time (user + system, all threads) a process has used.
 *
 * @param pid The process id, or `"self"`.
 * @returns Seconds of CPU time.
 */
export function readCpuSeconds(pid: number | "self"): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the parenthesised command name, which may itself contain spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const userTicks = Number(fields[11]);
  const systemTicks = Number(fields[12]);
  return (userTicks + systemTicks) / CLOCK_TICKS;
}

/**
 * Reads a process's resident set size (`VmRSS` in `/proc/<pid>/status`).
 *
 * @param pid The process id.
 * @returns Bytes.
 */
export function readRssBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = status.match(/^VmRSS:\s+(\d+) kB$/m);
  if (!match) throw new Error(`Cannot read RSS: no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/**
 * Reads this process's soft limit on open files, which the brokers and generators it starts inherit.
 *
 * @returns The limit, or `Infinity` when unlimited.
 */
export function readOpenFileLimit(): number {
  const limits = Deno.readTextFileSync("/proc/self/limits");
  const match = limits.match(/^Max open files\s+(\S+)/m);
  if (!match) throw new Error("Cannot read open-file limit: not in /proc/self/limits");
  return match[1] === "unlimited" ? Infinity : Number(match[1]);
}

/**
 * Reads the CPU model (`model name` in `/proc/cpuinfo`).
 *
 * @returns The model, or "unknown CPU" where `/proc/cpuinfo` does not name it.
 */
export function readCpuModel(): string {
  try {
    const match = Deno.readTextFileSync("/proc/cpuinfo").match(/^model name\s*:\s*(.+)$/m);
    return match?.[1].trim() || "unknown CPU";
  } catch {
    return "unknown CPU";
  }
}
