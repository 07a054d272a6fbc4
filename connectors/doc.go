// Package connectors holds the sources and sinks that move records between
// the engine and the outside world: file (NDJSON, for `smartgroups
// process`) and kafka (franz-go, for `serve` and `demo`, with an embedded
// kfake broker). Each connector has a written lifecycle contract in its
// own package documentation.
package connectors
