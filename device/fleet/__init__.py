"""The fleet: what a treadmill tells the gym's MQTT broker, and how.

The topics and their payloads (topics, schema/*.json: the contract with `retrotread fleet`
and anyone else reading the broker), the publisher on its own thread (publisher: paho-mqtt,
reconnecting with backoff; the tick loop never waits on it), and Home Assistant's device
discovery (discovery).

May import: device.core, device.config, paho-mqtt. The daemon wires it; the history's outbox
(device.history.outbox) is how a finished session reaches it without ever being lost.
"""
