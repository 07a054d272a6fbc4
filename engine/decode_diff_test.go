package engine

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/smartgroups/smartgroups/engine/internal/jsonscan"
	"github.com/smartgroups/smartgroups/engine/rule"
)

// The production decoder (engine/internal/jsonscan, decode_member.go) must decide
// exactly as the encoding/json one it replaced (decode_legacy_test.go):
// same error code and reason, same change. Run the fuzzers with, for
// example:
//
//	go test ./engine -run '^$' -fuzz FuzzDecodeMemberDifferential -fuzztime 60s

// diffLimits are the limits the differential tests decode with: the
// default ones and a low tag limit that fuzzing can reach.
func diffLimits() []Limits {
	low := DefaultLimits()
	low.MaxTags = 3
	low.MaxRecordBytes = 4096
	return []Limits{DefaultLimits(), low}
}

// requireSameDecode decodes rec with both decoders and fails on any
// difference. The new decoder reads a copy of the value that is then
// overwritten, so that a change keeping references into the record shows.
func requireSameDecode(t testing.TB, rec Record, lim Limits, d SchemaLookup) {
	t.Helper()
	want, wantErr := legacyDecodeMember(rec, lim, d)
	rec2 := rec
	if rec.Value != nil {
		rec2.Value = append([]byte{}, rec.Value...)
	}
	rec2.Key = append([]byte(nil), rec.Key...)
	got, gotErr := DecodeMember(rec2, lim, d)
	for i := range rec2.Value {
		rec2.Value[i] = 'X'
	}
	for i := range rec2.Key {
		rec2.Key[i] = 'X'
	}
	if (wantErr == nil) != (gotErr == nil) || (want == nil) != (got == nil) {
		t.Fatalf("record %q key %q kind %q:\nlegacy %+v %+v\nnew    %+v %+v", rec.Value, rec.Key, rec.Kind, want, wantErr, got, gotErr)
	}
	if wantErr != nil {
		if *wantErr != *gotErr {
			t.Fatalf("record %q key %q kind %q: legacy error %+v, new %+v", rec.Value, rec.Key, rec.Kind, wantErr, gotErr)
		}
		return
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("record %q key %q kind %q:\nlegacy %s\nnew    %s", rec.Value, rec.Key, rec.Kind, dumpChange(want), dumpChange(got))
	}
}

func dumpChange(c *MemberChange) string {
	s := fmt.Sprintf("%+v", *c)
	if c.Activity != nil {
		s += fmt.Sprintf(" activity %+v", *c.Activity)
	}
	for _, m := range []map[string]json.RawMessage{c.Profile, c.Custom, c.Form} {
		s += " {"
		for _, k := range slices.Sorted(maps.Keys(m)) {
			s += fmt.Sprintf("%q:%q ", k, m[k])
		}
		s += "}"
	}
	return s
}

// autoKey is the key that makes a fuzzed record's key match its value.
const autoKey = "*"

func diffRecord(kind uint8, value []byte, key string, null bool) Record {
	rec := Record{Kind: fuzzKinds[int(kind)%len(fuzzKinds)], Topic: "t", Key: []byte(key), Value: value}
	if null {
		rec.Value = nil
	} else if rec.Value == nil {
		rec.Value = []byte{}
	}
	if key == autoKey {
		var env struct {
			Spot, Member any
		}
		_ = json.Unmarshal(value, &env)
		rec.Key = []byte(fmt.Sprint(env.Spot, "/", env.Member))
	}
	return rec
}

func FuzzDecodeMemberDifferential(f *testing.F) {
	d := testDefs(f)
	for _, c := range loadMemberCorpus(f) {
		f.Add(c.kind, c.value, c.key, c.null)
	}
	for _, r := range diffSeedRecords() {
		f.Add(kindIndex(r.Kind), r.Value, autoKey, false)
	}
	f.Fuzz(func(t *testing.T, kind uint8, value []byte, key string, null bool) {
		rec := diffRecord(kind, value, key, null)
		for _, lim := range diffLimits() {
			requireSameDecode(t, rec, lim, d)
		}
	})
}

func kindIndex(k Kind) uint8 {
	for i, x := range fuzzKinds {
		if x == k {
			return uint8(i)
		}
	}
	panic(k)
}

type corpusEntry struct {
	kind  uint8
	value []byte
	key   string
	null  bool
}

// loadMemberCorpus reads the seed corpus of FuzzDecodeMember, which has the
// same arguments.
func loadMemberCorpus(tb testing.TB) []corpusEntry {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecodeMember", "*"))
	require.NoError(tb, err)
	var out []corpusEntry
	for _, file := range files {
		b, err := os.ReadFile(file)
		require.NoError(tb, err)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		require.Len(tb, lines, 5, file)
		arg := func(line, typ string) string {
			require.True(tb, strings.HasPrefix(line, typ+"(") && strings.HasSuffix(line, ")"), "%s: %s", file, line)
			return line[len(typ)+1 : len(line)-1]
		}
		unq := func(s string) string {
			u, err := strconv.Unquote(s)
			require.NoError(tb, err, file)
			return u
		}
		var c corpusEntry
		if strings.HasPrefix(lines[1], "byte(") {
			c.kind = unq(arg(lines[1], "byte"))[0]
		} else {
			n, err := strconv.ParseUint(arg(lines[1], "uint8"), 0, 8)
			require.NoError(tb, err, file)
			c.kind = uint8(n)
		}
		c.value = []byte(unq(arg(lines[2], "[]byte")))
		c.key = unq(arg(lines[3], "string"))
		c.null = arg(lines[4], "bool") == "true"
		out = append(out, c)
	}
	require.NotEmpty(tb, out)
	return out
}

// diffSeedRecords are hand-written records that exercise the corners of
// JSON the two decoders must agree on.
func diffSeedRecords() []Record {
	const env = `"spot":"acme","member":"u1","ts":0`
	p := func(v string) Record { return memberRec(KindProfiles, "acme/u1", v) }
	a := func(v string) Record { return memberRec(KindActivities, "acme/u1", v) }
	c := func(v string) Record { return memberRec(KindProperties, "acme/u1", v) }
	deep := strings.Repeat("[", jsonscan.MaxDepth-2) + strings.Repeat("]", jsonscan.MaxDepth-2)
	deeper := strings.Repeat("[", jsonscan.MaxDepth-1) + strings.Repeat("]", jsonscan.MaxDepth-1)
	return []Record{
		p(`{` + env + `,"profile":{"first_name":"Ada","status":"accepted","tags":[ "vip" , "b" ],"utm":{"source":"a<b&c>","medium":null,"x":1},"title":null}}`),
		p(` {` + env + `,"profile":{"email":"a\u0040b","status":"acc\u0065pted","status":"pending","tags":[]} } `),
		p(`{` + env + `,"profile":{"utm":{"term":"\u2028 \u2029` + "\u2028" + `"},"static_groups":["g1","g\/2"],"invited_at":"2026-01-01T00:00:00.123456789123+05:30"}}`),
		p(`{` + env + `,"profile":{"registered_at":1795251600000,"last_activity_at":"2026-02-29T00:00:00Z","language":"fr"}}`),
		p(`{` + env + `,"profile":{"static_groups":["", 1]}}`),
		p(`{` + env + `,"profile":{"utm":{"source":1,"medium":2},"email":3}}`),
		p(`{` + env + `,"profile":{"tags":["a","b","c","d"]},"x":1,"x":2,"\u0078":3,"Spot":"no"}`),
		p(`{` + env + `,"erase":true,"profile":[1]}`),
		p(`{` + env + `,"erase":false,"profile":{"nick":null,"nick":1,"n\u0069ck":2}}`),
		p(`{"sp\u006ft":"acme","member":"u1","ts":"2026-11-20T09:00:00Z","profile":{}}`),
		p(`{"spot":"acme","spot":null,"member":"u1","ts":0,"profile":{}}`),
		p(`{"spot":null,"spot":"acme","member":"u1","ts":"2026-11-20T10:30:00-01:30","profile":{}}`),
		p(`{"spot":"acme","member":"u1","ts":"2026-11-20T09:00:00z","profile":{}}`),
		p(`{"spot":"acme","member":"u1","ts":"2026-11-20t09:00:00Z","profile":{}}`),
		p(`{"spot":"acme","member":"u1","ts":"2026-11-20T09:00:00,5Z","profile":{}}`),
		p(`{"spot":"acme","member":"u1","ts":"2026-11-20T9:00:00Z","profile":{}}`),
		p(`{"spot":"acme","member":"u1","ts":"2026-11-20T09:00:00.Z","profile":{}}`),
		p(`{"spot":"acme","member":"u1","ts":"2026-11-20T09:00:00+24:00","profile":{}}`),
		p(`{"spot":"acme","member":"u1","ts":"\u0032026-11-20T09:00:00Z","profile":{}}`),
		p(`{"spot":"acme","member":"u1","ts":-0,"profile":{}}`),
		p(`{"spot":"acme","member":"u1","ts":1e3,"profile":{}}`),
		p(`{"spot":"acme","member":"u1","ts":9223372036854775807,"profile":{}}`),
		p(`{"spot":"acme","member":"u1","ts":-9223372036854775809,"profile":{}}`),
		p(`{"spot":"acme","member":"u\ud800","ts":0,"profile":{}}`),
		p(`{"spot":"acme","member":"u\ud83d\ude00","ts":0,"profile":{}}`),
		p(`{"spot":"acme","member":"u1","ts":0,"profile":{}}x`),
		p(`{"spot":"acme","member":"u1","ts":0,"profile":{}`),
		p(`{"spot":"acme","member":"u1","ts":0,"profile":{},}`),
		p(`{"spot":"acme","member":"u1","ts":01,"profile":{}}`),
		p(`{"spot":"acme","member":"u1","ts":0,"profile":{"a":"\x"}}`),
		p(`{"spot":"acme","member":"u1","ts":0,"profile":{"a":"` + "\t" + `"}}`),
		p(`[]`), p(`null`), p(`"x"`), p(`1`), p(`{}`), p(` `), p(`nul`),
		a(`{` + env + `,"id":"e\u00e9","type":"attended_live","resource":{"id":"r","title":"<T>","id":"r2","ID":"no"}}`),
		a(`{` + env + `,"type":"joined_spot","resource":{"id":5}}`),
		a(`{` + env + `,"type":"joined_spot","resource":{"title":null,"id":"x"},"extra":[1,{"a":[]}]}`),
		a(`{` + env + `,"type":"opened_link","resource":{"id":"l","title":"t","t\u0069tle":7}}`),
		a(`{` + env + `,"type":"opened_\u006cink","resource":{"id":"l"}}`),
		a(`{` + env + `,"type":null}`),
		a(`{` + env + `,"id":null,"type":"left_spot","resource":null}`),
		a(`{` + env + `,"type":"left_spot","resource":{"id":"` + strings.Repeat("r", 257) + `"}}`),
		c(`{` + env + `,"custom":{"plan":"pro","seats":1.5e2,"seats":12,"renewal":"2027-01-01T00:00:00Z","beta":true,"interests":[ "ai" ,"go" ]},"form":{"goals":null}}`),
		c(`{` + env + `,"custom":{"undeclared":{ "any" : [ 1 , 2 ] , "s" : " a  b " },"nick":null},"form":{}}`),
		c(`{` + env + `,"custom":{"seats":"x","nick":1,"beta":2,"plan":"zz","renewal":"x"}}`),
		c(`{` + env + `,"custom":{"":1,"seats":"x"}}`),
		c(`{` + env + `,"custom":{"s\u0065ats":"x","seats":1}}`),
		c(`{` + env + `,"custom":null,"form":{"age":1e400}}`),
		c(`{` + env + `,"custom":{"d":` + deep + `}}`),
		c(`{` + env + `,"custom":{"d":` + deeper + `}}`),
		c(`{` + env + `,"form":{"company_size":"1-10","goals":["learn","learn"],"consent":false,"bio":"\ud800\udc00"}}`),
	}
}

// TestDecodeMemberMatchesLegacy compares the decoders on the fuzz corpus,
// the seed records and random records built from pieces that are each
// valid or subtly not.
func TestDecodeMemberMatchesLegacy(t *testing.T) {
	d := testDefs(t)
	for _, c := range loadMemberCorpus(t) {
		for _, lim := range diffLimits() {
			requireSameDecode(t, diffRecord(c.kind, c.value, c.key, c.null), lim, d)
		}
	}
	for _, r := range diffSeedRecords() {
		for _, lim := range diffLimits() {
			requireSameDecode(t, r, lim, d)
		}
	}
	n := 20000
	if testing.Short() {
		n = 2000
	}
	rng := rand.New(rand.NewPCG(1, 2))
	accepted := map[Kind]int{}
	for i := 0; i < n; i++ {
		rec := randomMemberRecord(rng)
		lim := diffLimits()[i%2]
		requireSameDecode(t, rec, lim, d)
		if _, err := DecodeMember(rec, lim, d); err == nil {
			accepted[rec.Kind]++
		}
	}
	// The generator reaches valid records of every kind.
	for _, k := range []Kind{KindProfiles, KindActivities, KindProperties} {
		require.Greater(t, accepted[k], n/50, "valid %s records", k)
	}
}

// randomMemberRecord builds a member record from random pieces.
func randomMemberRecord(r *rand.Rand) Record {
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	ws := func() string { return pick("", "", "", " ", "\n\t ", "\r") }
	str := func() string {
		return pick(`"acme"`, `"u1"`, `"a\u0063me"`, `""`, `"x/y"`, `"\u0000"`, `"é"`, `"\ud800"`, `"<&>"`, "\"\u2028\"", `"a b"`, `"\/"`)
	}
	scalar := func() string {
		return pick(`null`, `true`, `false`, `0`, `-1`, `1.5`, `1e2`, `12`, str(), `[]`, `{}`, `["a"]`, `[1]`, `{"a":[1,{"b":null}]}`,
			`"2026-11-20T09:00:00Z"`, `"2026-11-20T09:00:00.5+01:00"`, `"2026-13-01T00:00:00Z"`, `1795251600000`)
	}
	key := func(k string) string {
		switch r.IntN(12) {
		case 0:
			return `"` + strings.ToUpper(k[:1]) + k[1:] + `"`
		case 1:
			return `"\u` + fmt.Sprintf("%04x", k[0]) + k[1:] + `"`
		}
		return `"` + k + `"`
	}
	obj := func(fields []string) string {
		r.Shuffle(len(fields), func(i, j int) { fields[i], fields[j] = fields[j], fields[i] })
		return "{" + ws() + strings.Join(fields, ws()+","+ws()) + ws() + "}"
	}
	field := func(k, v string) string { return key(k) + ws() + ":" + ws() + v }
	maybe := func(fields []string, k, v string) []string {
		if r.IntN(4) > 0 {
			fields = append(fields, field(k, v))
			if r.IntN(15) == 0 { // a duplicate key
				fields = append(fields, field(k, scalar()))
			}
		}
		return fields
	}
	clean := r.IntN(2) == 0 // a record meant to be valid
	or := func(good string, bad ...string) string {
		if !clean && r.IntN(6) == 0 {
			return pick(append(bad, scalar())...)
		}
		return good
	}
	spot, member := pick("acme", "acme", "other"), pick("u1", "u2")
	recKey := spot + "/" + member
	if !clean && r.IntN(10) == 0 {
		recKey = pick("acme/u9", "", "acme")
	}
	required := func(fields []string, k, v string) []string {
		if clean {
			return append(fields, field(k, v))
		}
		return maybe(fields, k, v)
	}
	var fields []string
	fields = required(fields, "spot", or(`"`+spot+`"`))
	fields = required(fields, "member", or(`"`+member+`"`))
	fields = required(fields, "ts", or(pick(`0`, `"2026-11-20T09:00:00Z"`, `1795251600000`, `"2026-11-20T09:00:00.123+02:00"`)))
	if r.IntN(6) == 0 {
		fields = append(fields, field(pick("extra", "x", "id", "profile", "custom", "type"), scalar()))
	}
	kind := []Kind{KindProfiles, KindActivities, KindProperties, KindDefinitions}[r.IntN(4)]
	switch kind {
	case KindProfiles:
		var pf []string
		for _, f := range []string{"first_name", "last_name", "email", "title", "role", "language"} {
			pf = maybe(pf, f, or(pick(`"Ada"`, `null`, `"é<>"`, `"a\"b"`)))
		}
		pf = maybe(pf, "status", or(pick(`"accepted"`, `"pending"`, `"rejected"`, `null`), `"Accepted"`, `"banned"`))
		pf = maybe(pf, "tags", or(pick(`["vip"]`, `[]`, `["a","b","c","d"]`, `[ "x" , "y" ]`, `null`), `[null]`, `"vip"`))
		pf = maybe(pf, "static_groups", or(pick(`["g1"]`, `["g1","g2"]`, `null`), `[""]`, `["a\u0000"]`, `[1]`))
		for _, f := range []string{"invited_at", "registered_at", "last_activity_at"} {
			pf = maybe(pf, f, or(pick(`"2026-01-02T00:00:00Z"`, `0`, `null`, `"2026-01-02T00:00:00.999999999999-00:30"`), `"2026-01-02"`, `1.5`))
		}
		if r.IntN(3) > 0 {
			var uf []string
			for _, u := range []string{"source", "medium", "campaign", "term", "content", "gclid"} {
				uf = maybe(uf, u, or(pick(`"google"`, `null`, `"a<b>&c"`, "\"\u2029\"")))
			}
			pf = append(pf, field("utm", or(obj(uf), `"google"`, `[]`)))
		}
		if r.IntN(5) == 0 {
			pf = append(pf, field(pick("nickname", "shoe_size", "Status"), scalar()))
		}
		fields = required(fields, "profile", or(obj(pf), `[]`, `"x"`))
		if r.IntN(8) == 0 {
			fields = append(fields, field("erase", or(pick(`true`, `false`, `null`), `"yes"`)))
		}
	case KindActivities:
		fields = maybe(fields, "id", or(pick(`"evt-1"`, `"e\u00e9"`, `null`), `""`, `5`))
		fields = maybe(fields, "type", or(pick(`"attended_live"`, `"joined_spot"`, `"opened_link"`, `"left_spot"`), `"watched_live"`, `null`))
		var rf []string
		rf = maybe(rf, "id", or(pick(`"live-1"`, `"r"`), `""`, `5`))
		rf = maybe(rf, "title", or(pick(`"Weekly AMA"`, `null`, `""`, `"<b>"`), `5`))
		if r.IntN(5) == 0 {
			rf = append(rf, field("url", scalar()))
		}
		fields = maybe(fields, "resource", or(obj(rf), `"x"`, `[]`, `null`))
	case KindProperties:
		for _, f := range []string{"custom", "form"} {
			var vf []string
			ids := []string{"plan", "seats", "renewal", "beta", "interests", "nick", "undeclared", "company_size", "goals", "age", "consent", "bio", "joined"}
			for _, id := range ids[:r.IntN(len(ids))] {
				vf = maybe(vf, id, scalar())
			}
			if r.IntN(10) == 0 {
				vf = append(vf, field(pick("x", "y"), scalar()))
			}
			fields = maybe(fields, f, or(obj(vf), `[1]`, `"x"`))
		}
	}
	value := ws() + obj(fields) + ws()
	if !clean && r.IntN(20) == 0 {
		value = value[:r.IntN(len(value))]
	}
	return Record{Kind: kind, Topic: string(kind), Key: []byte(recKey), Value: []byte(value)}
}

// FuzzValueHelpers compares the JSON value helpers with their
// encoding/json versions.
func FuzzValueHelpers(f *testing.F) {
	for _, s := range []string{`"x"`, ` "x" `, `"a\"b"`, `"é"`, "\"\xff\"", `["a", "b"]`, `[ ]`, `["a",1]`, `["a"] x`, `[null]`, `1`, `-1.5e3`, `1e400`,
		`01`, `1 2`, `12x`, `true`, ` false`, `null`, "\v1\v", `"2026-11-20T09:00:00Z"`, `"2026-11-20T09:00:00.123456789999+14:59"`,
		`"2026-02-29T00:00:00Z"`, `"2028-02-29T00:00:00Z"`, `"2026-11-20T09:00:00,5Z"`, `"2026-11-20T09:00:00.Z"`, `"0000-01-01T00:00:00Z"`,
		`"9999-12-31T23:59:59.999-23:59"`, `"2026-11-20T24:00:00Z"`, `"2026-11-20T09:00:60Z"`, `9223372036854775808`, `-0`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s1, ok1 := jsonscan.DecodeString(raw)
		s2, ok2 := legacyJSONString(raw)
		require.Equal(t, ok2, ok1, "jsonscan.DecodeString(%q)", raw)
		require.Equal(t, s2, s1, "jsonscan.DecodeString(%q)", raw)
		ss1, ok1 := jsonscan.DecodeStrings(raw)
		ss2, ok2 := legacyJSONStrings(raw)
		require.Equal(t, ok2, ok1, "jsonscan.DecodeStrings(%q)", raw)
		require.Equal(t, ss2, ss1, "jsonscan.DecodeStrings(%q)", raw)
		f1, ok1 := jsonscan.DecodeNumber(raw)
		f2, ok2 := legacyJSONNumber(raw)
		require.Equal(t, ok2, ok1, "jsonscan.DecodeNumber(%q)", raw)
		require.Equal(t, f2, f1, "jsonscan.DecodeNumber(%q)", raw)
		b1, ok1 := jsonscan.DecodeBool(raw)
		b2, ok2 := legacyJSONBool(raw)
		require.Equal(t, ok2, ok1, "jsonscan.DecodeBool(%q)", raw)
		require.Equal(t, b2, b1, "jsonscan.DecodeBool(%q)", raw)
		require.Equal(t, legacyIsNull(raw), jsonscan.IsNull(raw), "jsonscan.IsNull(%q)", raw)
		t1, e1 := rule.ParseTimestamp(raw)
		t2, e2 := legacyParseTimestamp(raw)
		require.Equal(t, t2, t1, "rule.ParseTimestamp(%q)", raw)
		require.Equal(t, fmt.Sprint(e2), fmt.Sprint(e1), "rule.ParseTimestamp(%q)", raw)
	})
}

func TestProfileFieldTables(t *testing.T) {
	require.Len(t, profileFields, len(rule.ProfileFields)+1)
	for i, f := range profileFields {
		require.Equal(t, i, profileField([]byte(f)), f)
		if f != "utm" {
			require.Contains(t, rule.ProfileFields, f)
		}
		if i > 0 {
			require.Less(t, profileFields[i-1], f, "sorted")
		}
	}
	require.Equal(t, "utm", profileFields[len(profileFields)-1])
	require.Len(t, utmFields, len(rule.UTMKeys))
	for i, f := range utmFields {
		require.Equal(t, i, utmField([]byte(f)), f)
		require.True(t, slices.Contains(rule.UTMKeys, f), f)
		if i > 0 {
			require.Less(t, utmFields[i-1], f, "sorted")
		}
	}
	require.Equal(t, -1, profileField([]byte("utm ")))
	require.Equal(t, -1, utmField([]byte("Source")))
}

// TestDecodeMemberAllocs keeps the decoder's allocations in check.
func TestDecodeMemberAllocs(t *testing.T) {
	d := testDefs(t)
	cases := []struct {
		rec Record
		max float64
	}{
		{memberRec(KindActivities, "acme/u1", `{"spot":"acme","member":"u1","ts":"2026-11-20T09:00:00Z","id":"evt-9","type":"attended_live","resource":{"id":"live-42","title":"Weekly AMA"}}`), 6},
		{memberRec(KindProfiles, "acme/u1", `{"spot":"acme","member":"u1","ts":"2026-11-20T09:00:00Z","profile":{"first_name":"Ada","status":"accepted","tags":["vip"],"registered_at":"2026-01-02T00:00:00Z","utm":{"source":"google"},"static_groups":["g-static-1"],"title":null}}`), 8},
		{memberRec(KindProperties, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"custom":{"plan":"pro","seats":12,"renewal":"2027-01-01T00:00:00Z","beta":true,"interests":["ai","go"]},"form":{"company_size":"11-50","goals":null}}`), 16},
	}
	for _, c := range cases {
		t.Run(string(c.rec.Kind), func(t *testing.T) {
			requireSameDecode(t, c.rec, DefaultLimits(), d)
			allocs := testing.AllocsPerRun(100, func() {
				if _, err := DecodeMember(c.rec, DefaultLimits(), d); err != nil {
					t.Fatal(err)
				}
			})
			t.Logf("%v allocs", allocs)
			require.LessOrEqual(t, allocs, c.max)
		})
	}
}
