// Command smartgroups runs the smart-group engine.
//
//	smartgroups process [--now T] [--data-dir D] [--deadletter F] < in.ndjson > out.ndjson
//
// Every flag can also be set with an environment variable
// SMARTGROUPS_<FLAG>, dashes replaced by underscores; a flag given on the
// command line wins. A SMARTGROUPS_ variable that names no flag of any
// subcommand stops every subcommand before it starts, with an error naming
// the variable of the nearest flag: a misspelt SMARTGROUPS_BROKER must not
// quietly start the embedded broker instead of using the cluster.
package main
