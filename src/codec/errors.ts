import { ReasonCode } from "./reason_codes.ts";

/**
 * An error that carries the MQTT 5 reason code the broker answers with (in CONNACK, an ack or
 * DISCONNECT). Decoders throw it for malformed input; the broker maps it to the wire.
 */
export class MqttError extends Error {
  /** MQTT 5 reason code (0x80 and up for failures). */
  readonly reasonCode: number;
  /**
   * The protocol level of the CONNECT this error was found in, when the CONNECT got that far: the
   * broker answers an MQTT 5 CONNECT's error with CONNACK (3.1.1 has no code for it and closes).
   */
  connectLevel: number | undefined = undefined;

  constructor(reasonCode: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "MqttError";
    this.reasonCode = reasonCode;
  }
}

/** A Malformed Packet (0x81): the bytes do not follow the packet grammar. */
export function malformed(message: string): MqttError {
  return new MqttError(ReasonCode.MalformedPacket, message);
}

/** A Protocol Error (0x82): the packet parses but breaks a protocol rule. */
export function protocolError(message: string): MqttError {
  return new MqttError(ReasonCode.ProtocolError, message);
}
