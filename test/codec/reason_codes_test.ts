import assert from "node:assert";
import {
  ConnackReturnCode,
  connackReturnCodeFor311,
  ReasonCode,
  reasonCodeName,
} from "../../src/codec/reason_codes.ts";

Deno.test("connackReturnCodeFor311() maps MQTT 5 refusals to 3.1.1 return codes", () => {
  assert.strictEqual(connackReturnCodeFor311(ReasonCode.Success), ConnackReturnCode.Accepted);
  assert.strictEqual(
    connackReturnCodeFor311(ReasonCode.UnsupportedProtocolVersion),
    ConnackReturnCode.UnacceptableProtocolVersion,
  );
  assert.strictEqual(
    connackReturnCodeFor311(ReasonCode.ClientIdentifierNotValid),
    ConnackReturnCode.IdentifierRejected,
  );
  assert.strictEqual(
    connackReturnCodeFor311(ReasonCode.BadAuthenticationMethod),
    ConnackReturnCode.BadUserNameOrPassword,
  );
  assert.strictEqual(connackReturnCodeFor311(ReasonCode.Banned), ConnackReturnCode.NotAuthorized);
  assert.strictEqual(
    connackReturnCodeFor311(ReasonCode.ServerBusy),
    ConnackReturnCode.ServerUnavailable,
  );
});

Deno.test("connackReturnCodeFor311() has no code for causes 3.1.1 cannot express [MQTT-3.2.2-6]", () => {
  assert.strictEqual(connackReturnCodeFor311(ReasonCode.MalformedPacket), undefined);
  assert.strictEqual(connackReturnCodeFor311(ReasonCode.TopicNameInvalid), undefined);
  assert.strictEqual(connackReturnCodeFor311(ReasonCode.QoSNotSupported), undefined);
});

Deno.test("reasonCodeName() prefers failure names and falls back to hex", () => {
  assert.strictEqual(reasonCodeName(0x81), "MalformedPacket");
  assert.strictEqual(reasonCodeName(0x00), "Success");
  assert.strictEqual(reasonCodeName(0x7f), "0x7f");
});
