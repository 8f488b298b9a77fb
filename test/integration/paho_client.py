"""Eclipse Paho (Debian's python3-paho-mqtt) as an MQTT 5 client of the broker under test.

Run by test/integration/paho_test.ts: `python3 paho_client.py <scenario> <port>`. It reports what
it sees as one JSON object per line on stdout and waits for "go" lines on stdin where the test
must act in between, so the test (not this script) asserts the behaviour.
"""

import json
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

HOST = "127.0.0.1"
WAIT = 10  # seconds: a guard against hanging, never a delay


def report(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def wait_for_go():
    line = sys.stdin.readline()
    if line.strip() != "go":
        raise SystemExit(f"expected go, got {line!r}")


class Client:
    """A Paho MQTT 5 client whose callbacks feed events the scenario waits for."""

    def __init__(self, client_id, port):
        self.port = port
        self.paho = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5)
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.published = threading.Event()
        self.messages = []
        self.message_arrived = threading.Condition()
        self.connack = None
        self.pending_publishes = 0
        self.lock = threading.Lock()
        self.on_message = None
        self.paho.on_connect = self._on_connect
        self.paho.on_subscribe = lambda c, u, mid, codes, props: self.subscribed.set()
        self.paho.on_publish = self._on_publish
        self.paho.on_message = self._on_message

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connack = {
            "session_present": bool(flags.get("session present")),
            "reason_code": reason_code.value,
            "response_information": getattr(properties, "ResponseInformation", None),
        }
        self.connected.set()

    def _on_publish(self, client, userdata, mid):
        with self.lock:
            self.pending_publishes -= 1
            if self.pending_publishes == 0:
                self.published.set()

    def _on_message(self, client, userdata, message):
        props = message.properties
        record = {
            "topic": message.topic,
            "payload": message.payload.decode("utf-8", "replace"),
            "qos": message.qos,
            "subscription_identifiers": getattr(props, "SubscriptionIdentifier", None),
            "correlation_data": (
                getattr(props, "CorrelationData").hex()
                if hasattr(props, "CorrelationData") else None
            ),
        }
        if self.on_message:
            self.on_message(record)
        with self.message_arrived:
            self.messages.append(record)
            self.message_arrived.notify_all()

    def connect(self, clean_start=True, **connect_properties):
        props = Properties(PacketTypes.CONNECT)
        for name, value in connect_properties.items():
            setattr(props, name, value)
        self.connected.clear()
        self.paho.connect(HOST, self.port, keepalive=60, clean_start=clean_start,
                          properties=props)
        self.paho.loop_start()
        if not self.connected.wait(WAIT):
            raise SystemExit("no CONNACK")
        return self.connack

    def subscribe(self, topic, qos=1, subscription_identifier=None):
        props = None
        if subscription_identifier is not None:
            props = Properties(PacketTypes.SUBSCRIBE)
            props.SubscriptionIdentifier = subscription_identifier
        self.subscribed.clear()
        self.paho.subscribe(topic, options=mqtt.SubscribeOptions(qos=qos), properties=props)
        if not self.subscribed.wait(WAIT):
            raise SystemExit("no SUBACK")

    def publish_all(self, publishes):
        """Publishes (topic, payload, qos, properties) tuples and waits for every ack."""
        with self.lock:
            self.pending_publishes = len(publishes)
            self.published.clear()
        for topic, payload, qos, props in publishes:
            self.paho.publish(topic, payload, qos=qos, properties=props)
        if not self.published.wait(WAIT):
            raise SystemExit("publishes not acknowledged")

    def wait_messages(self, count):
        with self.message_arrived:
            if not self.message_arrived.wait_for(lambda: len(self.messages) >= count, WAIT):
                raise SystemExit(f"got {len(self.messages)} of {count} messages")
            return self.messages[:count]

    def disconnect(self, **disconnect_properties):
        props = None
        if disconnect_properties:
            props = Properties(PacketTypes.DISCONNECT)
            for name, value in disconnect_properties.items():
                setattr(props, name, value)
        self.paho.disconnect(properties=props)
        self.paho.loop_stop()


def publish_properties(**values):
    props = Properties(PacketTypes.PUBLISH)
    for name, value in values.items():
        setattr(props, name, value)
    return props


def session(port):
    """Session Expiry: subscribe, go away, come back to the queued message, then end it."""
    client = Client("paho-session", port)
    client.connect(clean_start=False, SessionExpiryInterval=60)
    client.subscribe("paho/session", qos=1)
    client.disconnect()
    report("ready")
    wait_for_go()  # the test publishes while we are away
    connack = client.connect(clean_start=False, SessionExpiryInterval=60)
    report("connack", **connack)
    for message in client.wait_messages(1):
        report("message", **message)
    client.disconnect(SessionExpiryInterval=0)
    report("done")


def topic_alias(port):
    """Topic Alias client to server: set alias 1 once, then publish on the alias alone."""
    client = Client("paho-alias", port)
    connack = client.connect()
    report("connack", **connack)
    client.publish_all([
        ("paho/alias/topic", b"first", 1, publish_properties(TopicAlias=1)),
        ("", b"second", 1, publish_properties(TopicAlias=1)),
        ("", b"third", 0, publish_properties(TopicAlias=1)),
        ("paho/alias/topic", b"fourth", 1, None),
    ])
    client.disconnect()
    report("done")


def subscription_ids(port):
    """Subscription Identifiers: two overlapping subscriptions, both ids on one message."""
    client = Client("paho-subids", port)
    client.connect()
    client.subscribe("paho/ids/+", qos=1, subscription_identifier=11)
    client.subscribe("paho/ids/#", qos=1, subscription_identifier=22)
    report("ready")
    for message in client.wait_messages(2):
        report("message", **message)
    client.disconnect()
    report("done")


def flow_control(port):
    """Receive Maximum 2: hold the first message unacknowledged until the test says go."""
    client = Client("paho-flow", port)
    first = threading.Event()

    def hold_first(record):
        if not first.is_set():
            first.set()
            report("holding", **record)
            wait_for_go()  # Paho acknowledges only after this callback returns

    client.on_message = hold_first
    client.connect(ReceiveMaximum=2)
    client.subscribe("paho/flow", qos=1)
    report("ready")
    for message in client.wait_messages(5):
        report("message", **message)
    client.disconnect()
    report("done")


def will_delay(port):
    """Will Delay Interval: connect with a delayed will and wait to be killed."""
    client = Client("paho-will", port)
    will = Properties(PacketTypes.WILLMESSAGE)
    will.WillDelayInterval = 30
    will.UserProperty = ("reason", "gone")
    client.paho.will_set("paho/will", b"paho is offline", qos=1, properties=will)
    client.connect(clean_start=False, SessionExpiryInterval=300)
    report("ready")
    wait_for_go()  # never comes: the test kills this process, an abnormal close


def request_response(port):
    """Request/response: ask for Response Information, request, await the correlated reply."""
    client = Client("paho-requester", port)
    connack = client.connect(RequestResponseInformation=1)
    report("connack", **connack)
    reply_topic = f"{connack['response_information']}/reply"
    client.subscribe(reply_topic, qos=1)
    client.publish_all([
        ("paho/service", b"ping", 1,
         publish_properties(ResponseTopic=reply_topic, CorrelationData=b"\x01\x02req-7")),
    ])
    for message in client.wait_messages(1):
        report("message", **message)
    client.disconnect()
    report("done")


SCENARIOS = {
    "session": session,
    "topic-alias": topic_alias,
    "subscription-ids": subscription_ids,
    "flow-control": flow_control,
    "will-delay": will_delay,
    "request-response": request_response,
}

if __name__ == "__main__":
    SCENARIOS[sys.argv[1]](int(sys.argv[2]))
