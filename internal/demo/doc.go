// Package demo generates a lively community for `smartgroups demo` and the
// benchmark harness: two spots with schemas and smart groups using every
// trigger kind (one with a sliding time window), thousands of members with
// profiles, custom properties, form answers and a steady stream of
// activities whose volume per member follows a power law.
//
// The generator is deterministic for a seed and knows nothing about Kafka:
// it yields records as (topic kind, key, value) and the caller produces
// them wherever it wants.
//
// Banner renders what the demo prints once it is ready: curl commands for
// the API (with the bearer token when one is set), the metrics and
// readiness URLs, and a read_committed kcat command for the output topic.
// Its members link names MembersGroup, a group that has members as soon as
// the initial load is applied.
package demo
