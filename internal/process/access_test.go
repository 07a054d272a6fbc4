package process

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// accessInput: two smart groups and a static group listing live-1; u1
// leaves one of the smart groups and keeps live-1, then leaves the other
// and the static group and loses it; the static group's list gains a
// forum while u2 is in it.
var accessInput = []byte(lines(
	`{"topic":"definitions","key":"acme/group/vips","value":{"kind":"group","spot":"acme","id":"vips","type":"smart","name":"VIPs","rule":{"field":"profile.tags","op":"has_any","value":["vip"]},"resources":[{"id":"live-1","type":"live","title":"AMA"},{"id":"course-1","type":"course","title":"Go"}]}}`,
	`{"topic":"definitions","key":"acme/group/gold","value":{"kind":"group","spot":"acme","id":"gold","type":"smart","name":"Gold","rule":{"field":"profile.tags","op":"has_any","value":["gold"]},"resources":[{"id":"live-1","type":"live","title":"AMA"}]}}`,
	`{"topic":"definitions","key":"acme/group/st","value":{"kind":"group","spot":"acme","id":"st","type":"static","name":"Static","resources":[{"id":"live-1","type":"live","title":"AMA"}]}}`,
	`{"topic":"profiles","key":"acme/u1","value":{"spot":"acme","member":"u1","ts":"2026-11-20T09:00:00Z","profile":{"status":"accepted","tags":["vip","gold"]}}}`,
	`{"topic":"profiles","key":"acme/u1","value":{"spot":"acme","member":"u1","ts":"2026-11-20T10:00:00Z","profile":{"tags":["gold"]}}}`,
	`{"topic":"profiles","key":"acme/u2","value":{"spot":"acme","member":"u2","ts":"2026-11-20T10:30:00Z","profile":{"static_groups":["st"]}}}`,
	`{"topic":"profiles","key":"acme/u1","value":{"spot":"acme","member":"u1","ts":"2026-11-20T11:00:00Z","profile":{"tags":[]}}}`,
	`{"topic":"definitions","key":"acme/group/st","value":{"kind":"group","spot":"acme","id":"st","type":"static","name":"Static","resources":[{"id":"live-1","type":"live","title":"AMA"},{"id":"forum-1","type":"forum","title":"Q&A"}]}}`,
))

var accessOutput = lines(
	`{"spot":"acme","resource":"course-1","member":"u1","op":"grant","ts":"2026-11-20T09:00:00.000Z","groups":["vips"],"seq":1}`,
	`{"spot":"acme","resource":"live-1","member":"u1","op":"grant","ts":"2026-11-20T09:00:00.000Z","groups":["gold","vips"],"seq":1}`,
	`{"spot":"acme","resource":"course-1","member":"u1","op":"revoke","ts":"2026-11-20T10:00:00.000Z","groups":[],"seq":2}`,
	`{"spot":"acme","resource":"live-1","member":"u2","op":"grant","ts":"2026-11-20T10:30:00.000Z","groups":["st"],"seq":1}`,
	`{"spot":"acme","resource":"live-1","member":"u1","op":"revoke","ts":"2026-11-20T11:00:00.000Z","groups":[],"seq":2}`,
	`{"spot":"acme","resource":"forum-1","member":"u2","op":"grant","ts":"2026-11-20T11:00:00.000Z","groups":["st"],"seq":1}`,
)

func TestAccessOut(t *testing.T) {
	for _, batch := range []int{1, 3, 1000} {
		var out, dead, access bytes.Buffer
		st, err := Run(context.Background(), Options{BatchSize: batch, Access: &access}, bytes.NewReader(accessInput), &out, &dead)
		require.NoError(t, err)
		require.Empty(t, dead.String())
		require.Equal(t, accessOutput, access.String(), "batch size %d", batch)
		require.Equal(t, 6, st.Access)
		require.Equal(t, 4, st.Events, "memberships: u1 joins vips and gold, leaves both")
	}
	// Without a writer the access events are counted but not written,
	// and the membership output is the same.
	var out, dead, out2 bytes.Buffer
	_, err := Run(context.Background(), Options{}, bytes.NewReader(accessInput), &out, &dead)
	require.NoError(t, err)
	_, err = Run(context.Background(), Options{Access: &bytes.Buffer{}}, bytes.NewReader(accessInput), &out2, &dead)
	require.NoError(t, err)
	require.Equal(t, out.String(), out2.String())
}
