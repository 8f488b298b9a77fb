import assert from "node:assert";
import { PacketType, type Properties } from "../../src/codec/packets.ts";
import {
  decodeProperties,
  propertiesLength,
  PROPERTY_DEFINITIONS,
  type PropertyContext,
  PropertyDataType,
  type PropertyDefinition,
  PropertyId,
  WILL_PROPERTIES,
  writeProperties,
} from "../../src/codec/properties.ts";
import { assertMqttError } from "./_assert.ts";

const ALL_CONTEXTS: PropertyContext[] = [WILL_PROPERTIES, ...Object.values(PacketType)];

/** A sample value of each data type, as the `Properties` field holds it (one element for arrays). */
function sampleValue(def: PropertyDefinition): unknown {
  switch (def.type) {
    case PropertyDataType.Byte:
      return 1;
    case PropertyDataType.TwoByteInteger:
      return 0x1234;
    case PropertyDataType.FourByteInteger:
      return 0xfedc_ba98;
    case PropertyDataType.VarByteInteger:
      return 268_435_455;
    case PropertyDataType.Utf8String:
      return "välue";
    case PropertyDataType.BinaryData:
      return new Uint8Array([0, 1, 255]);
    default:
      return ["näme", "välue"];
  }
}

function propertiesWith(def: PropertyDefinition, value = sampleValue(def)): Properties {
  const isArray = def.repeatableIn.length > 0;
  return { [def.name]: isArray ? [value] : value } as Properties;
}

/** Encodes `props` for `context` and returns the property list without its length. */
function encodeList(props: Properties, context: PropertyContext): Uint8Array {
  const length = propertiesLength(props, context);
  const buf = new Uint8Array(5 + length);
  const end = writeProperties(buf, 0, props, context, length);
  return buf.subarray(end - length, end);
}

Deno.test("PROPERTY_DEFINITIONS lists the 27 MQTT 5 properties in identifier order", () => {
  assert.strictEqual(PROPERTY_DEFINITIONS.length, 27);
  assert.deepStrictEqual(
    PROPERTY_DEFINITIONS.map((def) => def.id),
    Object.values(PropertyId).sort((a, b) => a - b),
  );
  assert.strictEqual(new Set(PROPERTY_DEFINITIONS.map((def) => def.name)).size, 27);
});

Deno.test("PROPERTY_DEFINITIONS lets only user properties and PUBLISH subscription ids repeat", () => {
  for (const def of PROPERTY_DEFINITIONS) {
    if (def.id === PropertyId.UserProperty) {
      assert.deepStrictEqual(def.repeatableIn, def.contexts);
    } else if (def.id === PropertyId.SubscriptionIdentifier) {
      assert.deepStrictEqual(def.repeatableIn, [PacketType.PUBLISH]);
    } else {
      assert.deepStrictEqual(def.repeatableIn, []);
    }
  }
});

for (const def of PROPERTY_DEFINITIONS) {
  const hexId = `0x${def.id.toString(16).padStart(2, "0")}`;

  Deno.test(`decodeProperties() round-trips ${def.name} (${hexId}) where allowed`, () => {
    for (const context of def.contexts) {
      const props = propertiesWith(def);
      const list = encodeList(props, context);
      assert.strictEqual(list[0], def.id);
      assert.deepStrictEqual(decodeProperties(list, 0, list.length, context), props);
    }
  });

  Deno.test(
    `decodeProperties() rejects ${def.name} (${hexId}) where not allowed [section 2.2.2.2]`,
    () => {
      const allowedIn = def.contexts[0];
      const list = encodeList(propertiesWith(def), allowedIn);
      for (const context of ALL_CONTEXTS) {
        if (def.contexts.includes(context)) continue;
        assertMqttError(() => decodeProperties(list, 0, list.length, context), 0x81);
      }
    },
  );

  Deno.test(`decodeProperties() rejects ${def.name} (${hexId}) past the property length`, () => {
    const context = def.contexts[0];
    const list = encodeList(propertiesWith(def), context);
    for (let end = 1; end < list.length; end++) {
      assertMqttError(() => decodeProperties(list, 0, end, context), 0x81);
    }
  });

  Deno.test(`propertiesLength() skips ${def.name} (${hexId}) where not allowed`, () => {
    for (const context of ALL_CONTEXTS) {
      if (def.contexts.includes(context)) continue;
      assert.strictEqual(propertiesLength(propertiesWith(def), context), 0);
    }
  });

  if (def.repeatableIn.length === 0 || def.id === PropertyId.SubscriptionIdentifier) {
    const context = def.id === PropertyId.SubscriptionIdentifier
      ? PacketType.SUBSCRIBE
      : def.contexts[0];
    Deno.test(`decodeProperties() rejects ${def.name} (${hexId}) twice as a Protocol Error`, () => {
      const once = encodeList(propertiesWith(def), context);
      const twice = new Uint8Array([...once, ...once]);
      assertMqttError(() => decodeProperties(twice, 0, twice.length, context), 0x82);
    });
  }
}

Deno.test("decodeProperties() keeps user properties in order, duplicates included [MQTT-3.3.2-18]", () => {
  const props: Properties = {
    userProperties: [["b", "1"], ["a", "2"], ["b", "3"], ["b", "3"]],
  };
  const list = encodeList(props, PacketType.PUBLISH);
  assert.deepStrictEqual(decodeProperties(list, 0, list.length, PacketType.PUBLISH), props);
});

Deno.test("decodeProperties() accepts several subscription identifiers in PUBLISH [MQTT-3.3.4-4]", () => {
  const props: Properties = { subscriptionIdentifiers: [1, 128, 268_435_455] };
  const list = encodeList(props, PacketType.PUBLISH);
  assert.deepStrictEqual(decodeProperties(list, 0, list.length, PacketType.PUBLISH), props);
});

Deno.test("decodeProperties() rejects unknown identifiers, including multi-byte ones", () => {
  for (const id of [0x00, 0x04, 0x2b, 0x7f, 0x80]) {
    const list = new Uint8Array([id, 0x00, 0x00]);
    assertMqttError(() => decodeProperties(list, 0, list.length, PacketType.PUBLISH), 0x81);
  }
});

Deno.test("decodeProperties() rejects ill-formed UTF-8 in a string pair [MQTT-1.5.7-1]", () => {
  const list = new Uint8Array([0x26, 0x00, 0x01, 0x61, 0x00, 0x01, 0xff]);
  assertMqttError(() => decodeProperties(list, 0, list.length, PacketType.PUBLISH), 0x81);
});

Deno.test("decodeProperties() returns binary values as views", () => {
  const list = new Uint8Array([0x09, 0x00, 0x02, 0xaa, 0xbb]);
  const props = decodeProperties(list, 0, list.length, PacketType.PUBLISH);
  assert.strictEqual(props.correlationData?.buffer, list.buffer);
  assert.strictEqual(props.correlationData?.byteOffset, 3);
});

Deno.test("writeProperties() writes the property length and fields in identifier order", () => {
  const props: Properties = {
    userProperties: [["k", "v"]],
    topicAlias: 2,
    payloadFormatIndicator: 1,
  };
  const length = propertiesLength(props, PacketType.PUBLISH);
  assert.strictEqual(length, 2 + 3 + 7);
  const buf = new Uint8Array(1 + length);
  assert.strictEqual(writeProperties(buf, 0, props, PacketType.PUBLISH, length), buf.length);
  assert.deepStrictEqual(
    buf,
    new Uint8Array([12, 0x01, 1, 0x23, 0, 2, 0x26, 0, 1, 0x6b, 0, 1, 0x76]),
  );
});

Deno.test("writeProperties() writes a zero length for no properties [MQTT-2.2.2-1]", () => {
  for (const props of [undefined, {}]) {
    const buf = new Uint8Array(1).fill(0xff);
    assert.strictEqual(propertiesLength(props, PacketType.PUBACK), 0);
    assert.strictEqual(writeProperties(buf, 0, props, PacketType.PUBACK, 0), 1);
    assert.strictEqual(buf[0], 0);
  }
});

Deno.test("propertiesLength() rejects strings longer than 65,535 bytes", () => {
  assert.throws(
    () => propertiesLength({ reasonString: "x".repeat(65_536) }, PacketType.PUBACK),
    RangeError,
  );
});
