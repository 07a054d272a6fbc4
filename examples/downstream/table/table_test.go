package table

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func msg(t *testing.T, offset int64, e Event) Message {
	t.Helper()
	v, err := json.Marshal(e)
	require.NoError(t, err)
	return Message{Topic: DefaultTopic, Partition: 0, Offset: offset, Key: []byte(e.Key()), Value: v}
}

func ev(member, op string, seq uint64) Event {
	return Event{Spot: "acme", Group: "g1", Member: member, Op: op, TS: "2026-11-20T09:00:00Z", Reason: "rule", Seq: seq}
}

func kinds(vs []Violation) []ViolationKind {
	var out []ViolationKind
	for _, v := range vs {
		out = append(out, v.Kind)
	}
	return out
}

func TestTableApply(t *testing.T) {
	for _, tc := range []struct {
		name       string
		strict     bool
		events     []Event
		members    []string
		violations []ViolationKind
	}{
		{name: "add", events: []Event{ev("u1", "add", 1)}, members: []string{"u1"}},
		{name: "add remove", events: []Event{ev("u1", "add", 1), ev("u1", "remove", 2)}},
		{name: "add remove add", events: []Event{ev("u1", "add", 1), ev("u1", "remove", 2), ev("u1", "add", 3)}, members: []string{"u1"}},
		{name: "two members", events: []Event{ev("u2", "add", 1), ev("u1", "add", 1)}, members: []string{"u1", "u2"}},
		{name: "duplicate is not applied", events: []Event{ev("u1", "add", 1), ev("u1", "remove", 2), ev("u1", "remove", 2)},
			violations: []ViolationKind{Duplicate}},
		{name: "stale duplicate", events: []Event{ev("u1", "add", 1), ev("u1", "remove", 2), ev("u1", "add", 1)},
			violations: []ViolationKind{Duplicate}},
		{name: "gap applies latest", events: []Event{ev("u1", "add", 1), ev("u1", "add", 3)},
			members: []string{"u1"}, violations: []ViolationKind{Gap}},
		{name: "op repeated", events: []Event{ev("u1", "add", 1), ev("u1", "add", 2)},
			members: []string{"u1"}, violations: []ViolationKind{OpOrder}},
		{name: "first remove", events: []Event{ev("u1", "remove", 1)}, violations: []ViolationKind{OpOrder}},
		{name: "compacted start", events: []Event{ev("u1", "remove", 6), ev("u1", "add", 7)}, members: []string{"u1"}},
		{name: "strict start", strict: true, events: []Event{ev("u1", "add", 5)},
			members: []string{"u1"}, violations: []ViolationKind{Gap}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := New()
			tb.Strict = tc.strict
			var vs []Violation
			for i, e := range tc.events {
				_, v := tb.Apply(msg(t, int64(i), e))
				vs = append(vs, v...)
			}
			require.Equal(t, tc.violations, kinds(vs))
			require.Equal(t, tc.violations, kinds(tb.Violations()))
			require.Equal(t, tc.members, tb.Members("acme", "g1"))
			m, _, _ := tb.Stats()
			require.Equal(t, len(tc.members), m)
			for _, u := range tc.members {
				require.True(t, tb.IsMember("acme", "g1", u))
			}
		})
	}
}

func TestTableBadRecords(t *testing.T) {
	tb := New()
	c, vs := tb.Apply(Message{Key: []byte("k"), Value: []byte("{")})
	require.Nil(t, c)
	require.Equal(t, []ViolationKind{Undecodable}, kinds(vs))

	c, vs = tb.Apply(Message{Key: []byte("k"), Value: []byte(`{"spot":"acme"}`)})
	require.Nil(t, c)
	require.Equal(t, []ViolationKind{Undecodable}, kinds(vs))

	m := msg(t, 0, ev("u1", "add", 1))
	m.Key = []byte("acme/g1/other")
	c, vs = tb.Apply(m)
	require.NotNil(t, c, "applied under the event's own key")
	require.Equal(t, []ViolationKind{BadKey}, kinds(vs))
	require.Contains(t, vs[0].String(), "bad_key")
	require.True(t, tb.IsMember("acme", "g1", "u1"))

	_, vs = tb.Apply(msg(t, 1, ev("u2", "upsert", 1)))
	require.Equal(t, []ViolationKind{OpOrder}, kinds(vs))
	require.Equal(t, uint64(0), tb.Seq("acme/g1/u2"))
	require.Equal(t, uint64(1), tb.Seq("acme/g1/u1"))
	require.Equal(t, map[string]bool{"acme/g1/u1": true}, tb.Snapshot())
}

// TestAccessTable: the access table applies grants and revokes with the
// same checks, keyed <spot>/<resource>/<member>.
func TestAccessTable(t *testing.T) {
	at := NewAccess()
	acc := func(member, op string, seq uint64) Event {
		return Event{Spot: "acme", Resource: "live-1", Member: member, Op: op, TS: "2026-11-20T09:00:00Z", Seq: seq}
	}
	for i, e := range []Event{acc("u1", "grant", 1), acc("u2", "grant", 1), acc("u1", "revoke", 2)} {
		_, vs := at.Apply(msg(t, int64(i), e))
		require.Empty(t, vs)
	}
	require.Equal(t, map[string]bool{"acme/live-1/u1": false, "acme/live-1/u2": true}, at.Snapshot())
	_, vs := at.Apply(msg(t, 3, acc("u2", "grant", 2)))
	require.Equal(t, []ViolationKind{OpOrder}, kinds(vs))
	_, vs = at.Apply(msg(t, 4, acc("u3", "add", 1)))
	require.Equal(t, []ViolationKind{OpOrder}, kinds(vs), "a membership op on the access table")
	_, vs = at.Apply(msg(t, 5, acc("u3", "revoke", 1)))
	require.Equal(t, []ViolationKind{OpOrder}, kinds(vs), "seq 1 must be a grant")
}
