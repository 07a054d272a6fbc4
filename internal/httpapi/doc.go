// Package httpapi is the HTTP admin API of SPEC §6, mounted under /v1 by
// serve and demo.
//
// # Writes
//
// A write (group, schema or blacklist change) is validated first with the
// engine's own checks (Engine.CheckDefinition: the decoder and
// Defs.Check), so an invalid request gets 400 or 409 synchronously and
// nothing invalid reaches Kafka. It is then produced to the definitions
// topic with key "<spot>/<kind>/<id>" and a SPEC §4.1 value, and the
// response waits until the local engine applied that offset: the runtime
// reports every committed batch with API.Applied, which advances the
// applied definitions position and records the batch's definition dead
// letters. A write another instance made invalid meanwhile comes back as
// such a dead letter (409 conflict); a write not applied within
// Config.WriteTimeout gets 503. Writes of one instance are serialized, so
// each is validated against the effect of the previous one.
//
// # Reads across instances
//
// Each instance holds the state of the member partitions it owns only.
// A read that needs every partition (preview, members, counts, dry-run
// diffs) or the partition of one member (explain, a member's groups) is a
// scatter-gather: partitions the local engine owns are answered locally,
// the others by their owners through POST /v1/internal/spots/{spot}/partial
// (authenticated with the caller's token, which every instance shares).
// Owners come from Peers; GroupPeers reads them from the consumer group
// with kadm.DescribeGroups, each member advertising its HTTP address in
// its Kafka client id ("smartgroups@host:port-consumer", PeerClientID).
// A partial request carries the coordinator's applied definitions
// position, and the peer waits until it has applied as much, so a read
// after a write sees the write on every instance. Answers are merged
// (members by sort key, counts summed); when a partition has no reachable
// owner after a few retries (a rebalance in progress), the read fails
// with 503 instead of returning a partial answer.
//
// # Live changes and sizes
//
// GET /v1/spots/{spot}/events streams membership changes as server-sent
// events: the runtime hands every published batch's events to Publish,
// which fans them out to the subscribers of their spot (never blocking: a
// lagging subscriber loses events and is told how many); a stream also
// follows the local streams (scope=local) of the other instances owning
// partitions. GET …/groups/{id}/size reads the size points every instance
// recorded (SizeStore) and sums the partitions per minute.
//
// # Auth and errors
//
// Every /v1 request needs "Authorization: Bearer <token>": the admin token
// for every spot, or a spot token for its spot only (401 when missing or
// wrong, 403 for another spot). Tokens are compared in constant time
// (SHA-256 digests, crypto/subtle) and never logged. Without any token
// the API is open, and the runtime then refuses to listen on anything but
// loopback. Bodies are limited to 1 MiB (413), unknown fields and
// malformed JSON are refused (400), and every error is
// {"error": {"code", "message", "details"}}.
//
// The OpenAPI 3 description is docs/openapi.yaml, served at
// /v1/openapi.yaml. Its Rule schema types every node of SPEC §3; what
// depends on the spot's catalog is left to the engine. The tests check
// every exchange they make, the README's requests and the demo's groups
// against the document, and the Rule schema against the engine's rule
// compiler on the same rules.
package httpapi
