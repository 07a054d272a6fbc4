package engine

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/smartgroups/smartgroups/engine/rule"
)

func TestMemberStateCodecRoundTrip(t *testing.T) {
	str := func(s string) *string { return &s }
	ms := func(v rule.Millis) *rule.Millis { return &v }
	cases := []*MemberState{
		{ID: "u1"},
		{ID: "weird \"id\" \\ \n\t\x01 é 日本 \xff", Profile: rule.Profile{
			FirstName: str("Ada"), LastName: str("Lovelace \"The\" Countess"), Email: str("ada@example.com"), Title: str(""),
			Status: str("accepted"), Role: str("admin"), Language: str("fr"), Tags: []string{"vip", "Ünïcode"},
			InvitedAt: ms(-5), RegisteredAt: ms(1795165200000), LastActivityAt: ms(0),
			UTM: map[string]string{"source": "google", "medium": "cpc\u2028"}, StaticGroups: []string{"s1", "s2"}},
			Custom:  map[string]json.RawMessage{"plan": json.RawMessage(`"pro"`), "seats": json.RawMessage(`12`), "nested": json.RawMessage(`{"a":[1,2]}`)},
			Form:    map[string]json.RawMessage{"q": json.RawMessage(`["a","b"]`)},
			LastAct: ms(42), ActN: 7, Groups: []string{"g1", "g2"}, Timer: ms(99), Seqs: map[string]uint64{"g1": 3, "g2": 1}},
	}
	for _, st := range cases {
		b, err := EncodeMemberState(st)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 || b[0] != binaryStateVersion {
			t.Fatalf("not a binary state: %q", b)
		}
		got, err := DecodeMemberState(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, st) {
			t.Fatalf("round trip:\n got  %+v\n want %+v", got, st)
		}
		// The JSON of earlier versions decodes to the state encoding/json
		// decodes (invalid UTF-8 replaced), which encodes to binary and back
		// unchanged.
		std, _ := json.Marshal(st)
		want := &MemberState{}
		if err := json.Unmarshal(std, want); err != nil {
			t.Fatal(err)
		}
		for _, legacy := range [][]byte{std, appendMemberState(nil, st)} {
			viaJSON, err := DecodeMemberState(legacy)
			if err != nil || !reflect.DeepEqual(viaJSON, want) {
				t.Fatalf("JSON %s: got %+v, %v; want %+v", legacy, viaJSON, err, want)
			}
			b, _ := EncodeMemberState(viaJSON)
			if again, err := DecodeMemberState(b); err != nil || !reflect.DeepEqual(again, want) {
				t.Fatalf("JSON %s re-encoded: got %+v, %v", legacy, again, err)
			}
		}
	}
}

// FuzzOutboxCodec checks that the reflection-free encoders of events,
// dead letters and outbox entries produce exactly the bytes of
// encoding/json.Marshal.
func FuzzOutboxCodec(f *testing.F) {
	f.Add("acme", "vips", "u1", "2026-11-20T09:00:00Z", uint64(1), "value <&> \u2028 \b\f\x01 \xff é", []byte("k\x00"), []byte(nil), true)
	f.Add("", "", "", "", uint64(0), "", []byte{}, []byte{1, 2, 3}, false)
	f.Fuzz(func(t *testing.T, spot, group, member, ts string, seq uint64, value string, k, v []byte, del bool) {
		ev := Event{Spot: spot, Group: group, Member: member, Op: OpAdd, TS: ts, Reason: ReasonRule, Seq: seq, Partition: 3}
		std, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendEventJSON(nil, &ev); string(got) != string(std) {
			t.Fatalf("event:\n ours %s\n std  %s", got, std)
		}
		o := OutboxEntry{Partition: 3, ID: seq, Events: []Event{ev, ev},
			DeadLetters: []DeadLetter{{Topic: spot, Partition: -1, Offset: int64(seq >> 1), Key: member, Value: value, Reason: ts, Code: Code(group),
				Size: int64(seq % 3), SHA256: ts[:len(ts)/2]}},
			Changelog:            []ChangelogEntry{{Key: k, Value: v, Delete: del}, {Key: v}},
			DefinitionTombstones: []string{value, spot}}
		for _, o := range []OutboxEntry{o, {Partition: -1}} {
			std, err := json.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendOutboxEntry(nil, &o); string(got) != string(std) {
				t.Fatalf("outbox entry:\n ours %s\n std  %s", got, std)
			}
		}
	})
}
