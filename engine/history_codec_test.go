package engine

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHistoryValueCodec: every cause round-trips through the stored
// encoding, and no prefix or corruption of a value decodes without an
// error or panics.
func TestHistoryValueCodec(t *testing.T) {
	rec := &Record{Topic: "smartgroups.profiles", Partition: 3, Offset: 1 << 40}
	for _, tc := range []struct {
		reason Reason
		hist   histCtx
		cause  Cause
	}{
		{ReasonRule, histCtx{rec: rec}, Cause{Record: &RecordRef{Topic: rec.Topic, Partition: 3, Offset: 1 << 40}}},
		{ReasonEligibility, histCtx{rec: rec}, Cause{Record: &RecordRef{Topic: rec.Topic, Partition: 3, Offset: 1 << 40}}},
		{ReasonTime, histCtx{rec: rec}, Cause{Timer: true}},
		{ReasonDefinition, histCtx{group: "g-1"}, Cause{Definition: "g-1"}},
		{ReasonBlacklist, histCtx{rec: rec, group: "vips"}, Cause{Definition: "vips"}},
		{ReasonGroupDeleted, histCtx{group: "old"}, Cause{Definition: "old"}},
		{ReasonRule, histCtx{}, Cause{}},
	} {
		tx := &txn{reason: tc.reason, hist: tc.hist}
		v := tx.appendHistoryValue(nil, "vips", OpRemove, 7, ms("2026-11-01T10:00:00Z"))
		hs, err := decodeHistoryValue(v)
		require.NoError(t, err)
		want := HistoryEntry{Group: "vips", Op: OpRemove, TS: "2026-11-01T10:00:00.000Z", Reason: tc.reason, Seq: 7, Cause: tc.cause}
		require.Equal(t, []HistoryEntry{want}, hs)
		// A value holds a transaction's entries one after the other.
		two := tx.appendHistoryValue(append([]byte(nil), v...), "all", OpAdd, 1, ms("2026-11-01T10:00:00Z"))
		hs, err = decodeHistoryValue(two)
		require.NoError(t, err)
		require.Len(t, hs, 2)
		require.Equal(t, want, hs[0])
		require.Equal(t, "all", hs[1].Group)
		require.Equal(t, OpAdd, hs[1].Op)
		for i := len(v) + 1; i < len(two); i++ {
			_, err := decodeHistoryValue(two[:i])
			require.Error(t, err, "a second entry cut after %d bytes", i-len(v))
		}
		for i := range len(v) {
			_, err := decodeHistoryValue(v[:i])
			require.Error(t, err, "prefix of %d bytes", i)
		}
		for i := range len(v) {
			c := append([]byte(nil), v...)
			c[i] ^= 0xff
			_, _ = decodeHistoryValue(c) // must not panic
		}
	}
}
