package engine

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smartgroups/smartgroups/state"
)

// TestHistoryAdoptsEarlierLayout: a store written before member states
// held their since instants and history key numbers (one since key per
// joined group, one history key per transition) is read as it is, and the
// member's next transition moves the since keys into its state and lists
// its old history keys, which are then trimmed and erased like new ones.
func TestHistoryAdoptsEarlierLayout(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Limits.HistoryPerMember = 3
	h := newHarness(t, cfg)
	h.run(smart("vips", fieldRule("profile.tags", "has_any", []string{"vip"})),
		smart("b", fieldRule("profile.tags", "has_any", []string{"b"})))
	h.run(prof("u1", at(0), `{"status":"accepted","tags":["vip"]}`))

	// Rewrite u1 to the earlier layout: no since or key list in the
	// state, a since key for vips.
	mk := state.MemberKey(0, "acme", 0)
	v, ok, err := h.st.Get(mk)
	require.NoError(t, err)
	require.True(t, ok)
	st, err := DecodeMemberState(v)
	require.NoError(t, err)
	require.Equal(t, []uint64{1}, st.histKeys)
	require.Equal(t, T0, st.since["vips"])
	st.since, st.histKeys = nil, nil
	old, err := EncodeMemberState(st)
	require.NoError(t, err)
	sk := state.SinceKey(0, "acme", 0, "vips")
	b := h.st.NewWriteBatch()
	require.NoError(t, b.Set(mk, old))
	require.NoError(t, b.Set(sk, state.EncodeI64(T0)))
	require.NoError(t, b.Commit())
	h.reopen()

	info, err := h.e.MemberInfo("acme", "u1")
	require.NoError(t, err)
	require.Equal(t, at(0), info.Groups[0].Since, "since read from the since key")

	h.run(prof("u1", at(time.Hour), `{"tags":["vip","b"]}`))
	_, found, err := h.st.Get(sk)
	require.NoError(t, err)
	require.False(t, found, "the since key moved into the state")
	v, _, err = h.st.Get(mk)
	require.NoError(t, err)
	st, err = DecodeMemberState(v)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2}, st.histKeys, "the old key is listed")
	info, err = h.e.MemberInfo("acme", "u1")
	require.NoError(t, err)
	since := map[string]string{}
	for _, g := range info.Groups {
		since[g.Group] = g.Since
	}
	require.Equal(t, map[string]string{"vips": at(0), "b": at(time.Hour)}, since)
	require.Len(t, info.History, 2)

	// Two more transitions: the bound of 3 drops the old key.
	h.run(prof("u1", at(2*time.Hour), `{"tags":[]}`))
	hp := state.HistoryPrefix(0, "acme", 0)
	var ns []uint64
	require.NoError(t, h.st.Scan(hp, state.PrefixEnd(hp), func(k, _ []byte) bool {
		ns = append(ns, state.HistoryN(k))
		return true
	}))
	require.Equal(t, []uint64{2, 3}, ns)
}
