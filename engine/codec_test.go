package engine

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestMemberStateCodecRoundTrip(t *testing.T) {
	str := func(s string) *string { return &s }
	ms := func(v Millis) *Millis { return &v }
	cases := []*MemberState{
		{ID: "u1"},
		{ID: "weird \"id\" \\ \n\t\x01 é 日本 \xff", Profile: Profile{
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
		if !json.Valid(b) {
			t.Fatalf("invalid JSON: %s", b)
		}
		got, err := DecodeMemberState(b)
		if err != nil {
			t.Fatal(err)
		}
		want := *st
		if want.ID == "weird \"id\" \\ \n\t\x01 é 日本 \xff" {
			want.ID = "weird \"id\" \\ \n\t\x01 é 日本 \ufffd" // invalid UTF-8 is replaced, as encoding/json does
		}
		if !reflect.DeepEqual(got, &want) {
			t.Fatalf("round trip:\n got  %+v\n want %+v", got, &want)
		}
		std, _ := json.Marshal(st)
		viaStd, err := DecodeMemberState(std)
		if err != nil || !reflect.DeepEqual(viaStd, got) {
			t.Fatalf("differs from encoding/json:\n ours %s\n std  %s", b, std)
		}
	}
}
