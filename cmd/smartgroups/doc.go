// Command smartgroups runs the smart-group engine.
//
//	smartgroups process [--now T] [--data-dir D] [--deadletter F] < in.ndjson > out.ndjson
//
// Every flag can also be set with an environment variable
// SMARTGROUPS_<FLAG>, dashes replaced by underscores.
package main
