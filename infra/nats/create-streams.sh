#!/usr/bin/env sh
# Creates Portcullis's JetStream streams and the config KV bucket with three replicas, before the apps
# first start (the apps create them with one replica only if they are missing, and never change an
# existing stream's configuration). Needs the `nats` CLI and a cluster of at least three servers.
#   NATS_URL=nats://127.0.0.1:4222 infra/nats/create-streams.sh
# A non-default NATS_PREFIX changes the names: <PREFIX>_EVENTS, <PREFIX>_DEADLETTER, <prefix>-config.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
server=${NATS_URL:-nats://127.0.0.1:4222}
nats --server "$server" stream add --config "$here/streams/events.json" || nats --server "$server" stream info PORTCULLIS_EVENTS
nats --server "$server" stream add --config "$here/streams/deadletter.json" || nats --server "$server" stream info PORTCULLIS_DEADLETTER
nats --server "$server" kv add portcullis-config --replicas 3 --history 5 || nats --server "$server" kv info portcullis-config
