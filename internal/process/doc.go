// Package process runs the engine over NDJSON files: the implementation of
// `smartgroups process`, also used by tests and benchmarks that need the
// whole file pipeline in-process.
package process
