package engine

// HistoryEntriesOf counts the entries of a stored history value, for the
// tests of package engine_test that read the store.
var HistoryEntriesOf = historyEntries
