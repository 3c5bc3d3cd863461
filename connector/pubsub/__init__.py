"""The Salesforce Pub/Sub API's protocol (`eventbus.v1`): `pubsub_api.proto`, written from the public
description, and the modules grpcio-tools generated from it (committed, so runtime needs only grpcio
and protobuf; the proto's header holds the command that regenerates them). Shared by the emulator's
server and the connector's streaming client; no behaviour lives here."""
