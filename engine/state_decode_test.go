package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/smartgroups/smartgroups/engine/rule"
)

// The stored member state decoder must decode every text exactly as
// json.Unmarshal does into a MemberState (DecodeMemberState) or a
// queryState (decodeQueryState). Run the fuzzer with, for example:
//
//	go test ./engine -run '^$' -fuzz FuzzDecodeMemberState -fuzztime 180s

// sampleStates are varied member states.
func sampleStates() []*MemberState {
	str := func(s string) *string { return &s }
	ms := func(v rule.Millis) *rule.Millis { return &v }
	groups := make([]string, 40)
	seqs := map[string]uint64{}
	for i := range groups {
		groups[i] = fmt.Sprintf("acme/group-%02d", i)
		seqs[groups[i]] = uint64(i * 1000)
	}
	return []*MemberState{
		{},
		{ID: "u1"},
		{ID: "u2", Profile: rule.Profile{Email: str("x@example.com"), Tags: []string{""}}, Groups: []string{"g"}},
		{ID: "weird \"id\" \\ \n\t\x01 é 日本 \u2028 <&>", Profile: rule.Profile{
			FirstName: str("Ada"), LastName: str("Lovelace \"The\" Countess"), Email: str("ada@example.com"), Title: str(""),
			Status: str("accepted"), Role: str("admin"), Language: str("fr"), Tags: []string{"vip", "Ünïcode"},
			InvitedAt: ms(-5), RegisteredAt: ms(1795165200000), LastActivityAt: ms(0),
			UTM: map[string]string{"source": "google", "medium": "cpc\u2028", "": ""}, StaticGroups: []string{"s1", "s2"}},
			Custom:  map[string]json.RawMessage{"plan": json.RawMessage(`"pro"`), "seats": json.RawMessage(`12`), "nested": json.RawMessage(`{"a":[1,2]}`), "n": nil},
			Form:    map[string]json.RawMessage{"q": json.RawMessage(`["a","b"]`), "k\"ey": json.RawMessage(`-1.5e3`)},
			LastAct: ms(42), ActN: 7, Groups: []string{"g1", "g2"}, Timer: ms(99), Seqs: map[string]uint64{"g1": 3, "g2": 1}},
		{ID: "extremes", Profile: rule.Profile{InvitedAt: ms(-1 << 63), RegisteredAt: ms(1<<63 - 1)}, ActN: 1<<32 - 1,
			Seqs: map[string]uint64{"max": 1<<64 - 1, "zero": 0}, LastAct: ms(-1), Timer: ms(0)},
		{ID: "many", Groups: groups, Seqs: seqs, Profile: rule.Profile{StaticGroups: groups[:20], Tags: groups[20:]},
			Custom: map[string]json.RawMessage{"a": json.RawMessage(`true`), "b": json.RawMessage(`null`), "c": json.RawMessage(`[]`),
				"d": json.RawMessage(`{}`), "e": json.RawMessage(`"\u00e9\n"`), "f": json.RawMessage(`0`), "g": json.RawMessage(`false`),
				"h": json.RawMessage(`1`), "i": json.RawMessage(`2`), "j": json.RawMessage(`3`), "k": json.RawMessage(`4`),
				"l": json.RawMessage(`5`), "m": json.RawMessage(`6`), "n": json.RawMessage(`7`), "o": json.RawMessage(`8`),
				"p": json.RawMessage(`9`), "q": json.RawMessage(`10`), "r": json.RawMessage(`11`)}},
		benchState(),
	}
}

// benchState is a realistic state: a profile with tags and utm, a few
// custom values, 10 groups and their seqs (about 600 bytes encoded).
func benchState() *MemberState {
	str := func(s string) *string { return &s }
	ms := func(v rule.Millis) *rule.Millis { return &v }
	st := &MemberState{ID: "member-0012345", Profile: rule.Profile{
		FirstName: str("Grace"), LastName: str("Hopper"), Email: str("grace.hopper@example.com"),
		Status: str("accepted"), Role: str("member"), Language: str("en"), Tags: []string{"vip", "beta", "newsletter"},
		InvitedAt: ms(1767225600000), RegisteredAt: ms(1767312000000), LastActivityAt: ms(1795165200000),
		UTM: map[string]string{"source": "google", "medium": "cpc", "campaign": "spring"}},
		Custom: map[string]json.RawMessage{"plan": json.RawMessage(`"pro"`), "seats": json.RawMessage(`12`),
			"renewal": json.RawMessage(`"2027-01-01T00:00:00Z"`)},
		LastAct: ms(1795165200000), ActN: 57, Timer: ms(1795770000000), Seqs: map[string]uint64{}}
	for i := range 10 {
		g := fmt.Sprintf("g%02d", i)
		st.Groups = append(st.Groups, g)
		st.Seqs[g] = uint64(100 + i)
	}
	return st
}

// stateSeeds are texts for the differential tests: encoded states, the
// same by encoding/json, and texts with what an encoder could write or a
// corruption could leave.
func stateSeeds() [][]byte {
	var seeds [][]byte
	for _, st := range sampleStates() {
		seeds = append(seeds, appendMemberState(nil, st))
		std, err := json.Marshal(st)
		if err != nil {
			panic(err)
		}
		seeds = append(seeds, std)
		indented, err := json.MarshalIndent(st, " ", "\t")
		if err != nil {
			panic(err)
		}
		seeds = append(seeds, indented)
	}
	for _, s := range []string{
		``, `null`, ` null `, `{}`, ` {} `, `[]`, `"x"`, `1`, `{`, `{"id":"a"}x`, `{"id":"a"} {}`,
		`{"id":null,"p":null,"c":null,"f":null,"la":null,"an":null,"g":null,"t":null,"q":null}`,
		`{"p":{"first_name":null,"tags":null,"utm":null,"invited_at":null,"static_groups":null}}`,
		`{"c":{},"f":{},"g":[],"q":{},"p":{"tags":[],"utm":{},"static_groups":[]}}`,
		`{"g":[null,"a"],"q":{"a":null},"p":{"utm":{"a":null}},"c":{"a":null}}`,
		`{"id":"a","id":"b"}`, `{"id":"a","id":null}`, `{"c":{"a":1},"c":{"b":2}}`, `{"c":{"a":1,"a":2}}`,
		`{"p":{"email":"a"},"p":{"role":"b"}}`, `{"p":{"email":"a","email":null}}`, `{"g":["a"],"g":["b","c"]}`,
		`{"ID":"a"}`, `{"Id":"a","id":"b"}`, `{"id":"b","iD":"a"}`, `{"P":{"EMAIL":"x"}}`, `{"p":{"Email":"x"}}`,
		`{"LA":5}`, `{"q":{"A":1,"a":2}}`, `{"\u0069d":"a"}`, `{"i\u0064":"a","id":"b"}`, `{"c":{"\u0061":1,"a":2}}`,
		`{"p":{"first_nam\u0065":"x"}}`, "{\"\u017fome\":1}", "{\"p\":{\"\u212aey\":1,\"email\":\"x\"}}",
		"{\"p\":{\"la\u017ft_name\":\"x\"}}", `{"unknown":[1,{"x":null}],"id":"a"}`, `{"an2":1,"tt":2,"pp":{}}`,
		`{"an":1,"t":2,"q":{"a":1}}`, `{"an":"1"}`, `{"t":"2"}`, `{"q":[]}`, `{"q":{"a":"1"}}`, `{"q":{"a":-1}}`,
		`{"an":-0}`, `{"la":-0}`, `{"la":1.0}`, `{"la":1e3}`, `{"la":1E+3}`, `{"an":4294967295}`, `{"an":4294967296}`,
		`{"la":9223372036854775807}`, `{"la":9223372036854775808}`, `{"la":-9223372036854775808}`,
		`{"la":-9223372036854775809}`, `{"q":{"a":18446744073709551615}}`, `{"q":{"a":18446744073709551616}}`,
		`{"q":{"a":99999999999999999999}}`, `{"la":00}`, `{"la":-}`, `{"la":true}`, `{"p":[]}`, `{"p":"x"}`,
		`{"g":"a"}`, `{"g":[1]}`, `{"g":[["a"]]}`, `{"c":[]}`, `{"c":{"a":}}`, `{"p":{"utm":{"a":1}}}`,
		`{"p":{"tags":[true]}}`, `{"p":{"email":1}}`, `{"p":{"invited_at":"2026-01-01T00:00:00Z"}}`,
		`{"id":"\u00e9\ud800\udc00\ud800 \u2028\/\"\\\b\f\n\r\t"}`, `{"id":"\x"}`, `{"id":"a\u12"}`,
		"{\"id\":\"a\xff\"}", "{\"c\":{\"a\":\"\xff\"}}", "{\"c\":{\"a\xff\":1}}", "{\"id\":\"a\tb\"}", "{\"id\":\"\x00\"}",
		`{"c":{"a" : [ 1 , 2 ] ,"b":{ "x" : null } }}`, " \t\r\n{ \"id\" : \"a\" , \"g\" : [ \"x\" , null ] } \n",
		`{"c":{"a":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}}`, `{"id":"a",}`, `{,"id":"a"}`, `{"id" "a"}`, `{"id":"a"`,
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// checkStateDecode decodes data with json.Unmarshal and with the decoders
// under test, and fails on any difference. The decoders read a copy of data
// that is then overwritten, so that a state referring to its input shows.
func checkStateDecode(t testing.TB, data []byte) {
	t.Helper()
	want := &MemberState{}
	wantErr := json.Unmarshal(data, want)
	in := bytes.Clone(data)
	got, err := DecodeMemberState(in)
	clear(in)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("%q: encoding/json error %v, DecodeMemberState error %v", data, wantErr, err)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got  %s\n want %s", data, dumpState(got), dumpState(want))
	}

	var qs queryState
	qErr := json.Unmarshal(data, &qs)
	in = bytes.Clone(data)
	gotQ, err := decodeQueryState(in)
	clear(in)
	if (err == nil) != (qErr == nil) {
		t.Fatalf("%q: encoding/json error %v, decodeQueryState error %v", data, qErr, err)
	}
	wantQ := &MemberState{ID: qs.ID, Profile: qs.Profile, Custom: qs.Custom, Form: qs.Form, LastAct: qs.LastAct, Groups: qs.Groups}
	if err == nil && !reflect.DeepEqual(gotQ, wantQ) {
		t.Fatalf("%q: query state:\n got  %s\n want %s", data, dumpState(gotQ), dumpState(wantQ))
	}

	// What appendMemberState writes takes the fast path.
	if wantErr == nil {
		enc := appendMemberState(nil, want)
		if _, ok := decodeStateFast(enc, numStateKeys); !ok && utf8.Valid(enc) {
			t.Fatalf("%q: the fast path refuses the encoded state %q", data, enc)
		}
	}
}

func dumpState(st *MemberState) string {
	b, _ := json.Marshal(st)
	s := fmt.Sprintf("%s %+v", b, st.Profile)
	for _, m := range []map[string]json.RawMessage{st.Custom, st.Form} {
		s += fmt.Sprintf(" nil=%v {", m == nil)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			s += fmt.Sprintf("%q:%q ", k, m[k])
		}
		s += "}"
	}
	return s + fmt.Sprintf(" nil g=%v tags=%v sg=%v utm=%v q=%v", st.Groups == nil, st.Profile.Tags == nil,
		st.Profile.StaticGroups == nil, st.Profile.UTM == nil, st.Seqs == nil)
}

func TestDecodeMemberStateDifferential(t *testing.T) {
	for _, s := range stateSeeds() {
		checkStateDecode(t, s)
	}
}

// TestDecodeMemberStateFastPath checks that the states the engine writes,
// and those encoding/json wrote, do not fall back to json.Unmarshal.
func TestDecodeMemberStateFastPath(t *testing.T) {
	for _, st := range sampleStates() {
		std, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range [][]byte{appendMemberState(nil, st), std} {
			for _, keys := range []int{numStateKeys, numQueryKeys} {
				if _, ok := decodeStateFast(b, keys); !ok {
					t.Errorf("fast path refuses %s (keys %d)", b, keys)
				}
			}
		}
	}
}

func FuzzDecodeMemberState(f *testing.F) {
	for _, s := range stateSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkStateDecode(t, data)
	})
}

func BenchmarkDecodeMemberState(b *testing.B) {
	data := appendMemberState(nil, benchState())
	b.Logf("%d bytes", len(data))
	b.Run("decoder=encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			st := &MemberState{}
			if err := json.Unmarshal(data, st); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decoder=fast", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := DecodeMemberState(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decoder=encoding-json/query", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var qs queryState
			if err := json.Unmarshal(data, &qs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decoder=fast/query", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := decodeQueryState(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
