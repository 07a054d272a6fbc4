package serve

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/state"
)

// TestReconcileChangelogID: the local partition states are kept while the
// changelog topic is the one they come from, and dropped when it is
// another one (the deployment was reset and created a new changelog).
func TestReconcileChangelogID(t *testing.T) {
	st, err := state.Open(t.TempDir(), state.Options{})
	require.NoError(t, err)
	defer func() { require.NoError(t, st.Close()) }()
	eng, err := engine.New(st, engine.DefaultConfig())
	require.NoError(t, err)
	ctx := context.Background()
	_, err = eng.Assign(ctx, []int32{0})
	require.NoError(t, err)
	_, err = eng.Process(ctx, []engine.Record{{Kind: engine.KindProfiles, Topic: "p", Key: []byte("acme/u1"),
		Value: []byte(`{"spot":"acme","member":"u1","ts":"2026-11-20T09:00:00Z","profile":{"status":"accepted"}}`)}})
	require.NoError(t, err)
	eng.Revoke([]int32{0})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	has := func() bool {
		ok, err := eng.HasPartitionState(0)
		require.NoError(t, err)
		return ok
	}
	require.True(t, has())

	for _, id := range []string{"aaaa", "aaaa"} { // first seen, then the same
		dropped, err := reconcileChangelogID(st, eng, 2, id, log)
		require.NoError(t, err)
		require.Empty(t, dropped)
		require.True(t, has())
	}
	dropped, err := reconcileChangelogID(st, eng, 2, "bbbb", log)
	require.NoError(t, err)
	require.Equal(t, []int32{0}, dropped)
	require.False(t, has())
	dropped, err = reconcileChangelogID(st, eng, 2, "bbbb", log)
	require.NoError(t, err)
	require.Empty(t, dropped)
}
