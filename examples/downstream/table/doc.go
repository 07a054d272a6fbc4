// Package table is an example downstream consumer of the smartgroups
// memberships topic (SPEC §4.2), written with segmentio/kafka-go, the way a
// service granting access to a group's resources would read it.
//
// A Table is the membership table the topic describes: the latest event per
// key "<spot>/<group>/<member>" wins, so a member is in a group exactly when
// the last event of its key is an add. The table also checks the stream's
// guarantees and reports every breach as a Violation: per key, seq increases
// by one (a lower or equal seq is a duplicate delivery, a higher one a
// gap), ops alternate starting with add, and the record key matches the
// event. The first event seen for a key may have any seq, since compaction
// removes older ones; set Strict to require the history to start at seq 1.
//
// # Reading committed records with kafka-go
//
// The memberships topic is written in Kafka transactions, and only
// read_committed consumers get the exactly-once guarantee. kafka-go v0.4.51
// sends the read_committed isolation level, so the broker stops at the last
// stable offset, but its Reader neither drops the records of aborted
// transactions nor hides the transaction markers: it returns both as
// messages (segmentio/kafka-go issue #1332; TestKafkaGoReaderShowsAborted
// demonstrates it). A table fed by kafka.Reader would see every aborted
// attempt as a duplicate.
//
// ReadCommitted therefore fetches with kafka-go's protocol-level Fetch
// (still read_committed) and filters the batches itself, as the Java client
// does: the broker lists the aborted transactions of each response (producer
// id and first offset); data batches of an aborted producer are dropped
// until its abort marker, and control batches are never returned.
//
// Run ties both together: it reads every partition of the topic from the
// start into a Table and calls back on every change and violation.
package table
