/**
 * Assertions shared by the codec tests.
 *
 * @module
 */

import assert from "node:assert";
import { MqttError } from "../../src/codec/mod.ts";

/** Asserts that `fn` throws an {@linkcode MqttError} with `reasonCode`, and returns it. */
export function assertMqttError(fn: () => unknown, reasonCode: number): MqttError {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof MqttError)) throw error;
    assert.strictEqual(
      error.reasonCode,
      reasonCode,
      `Expected reason code 0x${reasonCode.toString(16)}, got 0x${
        error.reasonCode.toString(16)
      }: ${error.message}`,
    );
    return error;
  }
  assert.fail(`Expected an MqttError with reason code 0x${reasonCode.toString(16)}`);
}

/** Every spec tag of a vector, or "" when it has none, for test names. */
export function tags(spec: string | undefined): string {
  return spec === undefined ? "" : ` ${spec.startsWith("[") ? spec : `[${spec}]`}`;
}
