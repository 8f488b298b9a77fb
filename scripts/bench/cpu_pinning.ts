/**
 * CPU pinning with `taskset` (util-linux): the broker on one CPU, the load generator (this process, its
 * workers and its child processes) on another, so neither steals the other's core.
 *
 * @module
 */

/** The pinning in force. */
export interface CpuPinning {
  /** Whether processes are pinned at all. */
  enabled: boolean;
  /** CPU for brokers. */
  brokerCpu?: number;
  /** CPU for the generator. */
  generatorCpu?: number;
  /** Human-readable summary for the log and the results. */
  description: string;
}

async function hasTaskset(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("taskset", { args: ["-V"], stdout: "null" })
      .output();
    return success;
  } catch {
    return false;
  }
}

function allowedCpus(): number[] {
  const status = Deno.readTextFileSync("/proc/self/status");
  const list = status.match(/^Cpus_allowed_list:\s+(\S+)$/m)?.[1] ?? "";
  return list.split(",").flatMap((range) => {
    const [from, to = from] = range.split("-").map(Number);
    return Array.from({ length: to - from + 1 }, (_, i) => from + i);
  });
}

/**
 * Pins this process (all its threads, hence its future workers and children) to the second allowed CPU
 * and reserves the first for brokers, when `taskset` exists and at least two CPUs are allowed.
 *
 * @param wanted `false` to skip pinning.
 * @returns What was done.
 */
export async function pinGenerator(wanted: boolean): Promise<CpuPinning> {
  if (!wanted) return { enabled: false, description: "not pinned (--no-pin)" };
  const cpus = allowedCpus();
  if (cpus.length < 2) {
    return { enabled: false, description: `not pinned: only ${cpus.length} CPU allowed` };
  }
  if (!await hasTaskset()) {
    return { enabled: false, description: "not pinned: taskset (util-linux) not found" };
  }
  const [brokerCpu, generatorCpu] = cpus;
  const { success, stderr } = await new Deno.Command("taskset", {
    args: ["-a", "-c", "-p", String(generatorCpu), String(Deno.pid)],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    const reason = new TextDecoder().decode(stderr).trim();
    return { enabled: false, description: `not pinned: taskset failed: ${reason}` };
  }
  return {
    enabled: true,
    brokerCpu,
    generatorCpu,
    description:
      `pinned with taskset: broker on CPU ${brokerCpu}, generator on CPU ${generatorCpu}`,
  };
}

/**
 * Prefixes a broker command line with `taskset -c <brokerCpu>` when pinning is on.
 *
 * @param pinning The pinning in force.
 * @param argv The program and its arguments.
 * @returns The command and arguments to spawn.
 */
export function pinnedBrokerCommand(
  pinning: CpuPinning,
  argv: string[],
): { command: string; args: string[] } {
  const line = pinning.enabled ? ["taskset", "-c", String(pinning.brokerCpu), ...argv] : argv;
  return { command: line[0], args: line.slice(1) };
}
