package file

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/smartgroups/smartgroups/engine"
)

func TestDecode(t *testing.T) {
	const obj = `{"spot":"acme","member":"u1","ts":0}`
	for _, tc := range []struct {
		name, line string
		want       engine.Record // Offset 4 (input line 5) is added
	}{
		{"object value", `{"topic":"profiles","key":"acme/u1","value":` + obj + `}`,
			engine.Record{Kind: engine.KindProfiles, Topic: "profiles", Key: []byte("acme/u1"), Value: []byte(obj)}},
		{"object value with spaces", `{ "topic" : "activities" , "key" : "acme/u1" , "value" : { "a" : 1 } }`,
			engine.Record{Kind: engine.KindActivities, Topic: "activities", Key: []byte("acme/u1"), Value: []byte(`{ "a" : 1 }`)}},
		{"string value is the raw record bytes", `{"topic":"profiles","key":"acme/u1","value":"{\"spot\":\"acme\"}"}`,
			engine.Record{Kind: engine.KindProfiles, Topic: "profiles", Key: []byte("acme/u1"), Value: []byte(`{"spot":"acme"}`)}},
		{"string value that is not JSON", `{"topic":"profiles","key":"acme/u1","value":"not json"}`,
			engine.Record{Kind: engine.KindProfiles, Topic: "profiles", Key: []byte("acme/u1"), Value: []byte("not json")}},
		{"empty string value is not a tombstone", `{"topic":"profiles","key":"acme/u1","value":""}`,
			engine.Record{Kind: engine.KindProfiles, Topic: "profiles", Key: []byte("acme/u1"), Value: []byte{}}},
		{"array value as written", `{"topic":"properties","key":"acme/u1","value":[1,2]}`,
			engine.Record{Kind: engine.KindProperties, Topic: "properties", Key: []byte("acme/u1"), Value: []byte("[1,2]")}},
		{"number value as written", `{"topic":"properties","key":"acme/u1","value":42}`,
			engine.Record{Kind: engine.KindProperties, Topic: "properties", Key: []byte("acme/u1"), Value: []byte("42")}},
		{"null value is a tombstone", `{"topic":"profiles","key":"acme/u1","value":null}`,
			engine.Record{Kind: engine.KindProfiles, Topic: "profiles", Key: []byte("acme/u1")}},
		{"missing value is a tombstone", `{"topic":"definitions","key":"acme/group/g1"}`,
			engine.Record{Kind: engine.KindDefinitions, Topic: "definitions", Key: []byte("acme/group/g1")}},
		{"null key", `{"topic":"profiles","key":null,"value":` + obj + `}`,
			engine.Record{Kind: engine.KindProfiles, Topic: "profiles", Value: []byte(obj)}},
		{"missing key", `{"topic":"profiles","value":` + obj + `}`,
			engine.Record{Kind: engine.KindProfiles, Topic: "profiles", Value: []byte(obj)}},
		{"unknown topic: no kind, the engine dead-letters it", `{"topic":"bogus","key":"k","value":{}}`,
			engine.Record{Topic: "bogus", Key: []byte("k"), Value: []byte("{}")}},
		{"missing topic", `{"key":"k","value":{}}`,
			engine.Record{Key: []byte("k"), Value: []byte("{}")}},
		{"not JSON", `not json`,
			engine.Record{Value: []byte("not json"), Err: "input line 5 is not a JSON object {topic, key, value}: invalid character 'o' in literal null (expecting 'u')"}},
		{"truncated", `{"topic":"profiles",`,
			engine.Record{Value: []byte(`{"topic":"profiles",`), Err: "input line 5 is not a JSON object {topic, key, value}: unexpected end of JSON input"}},
		{"array line", `[1,2]`,
			engine.Record{Value: []byte("[1,2]"), Err: "input line 5 is not a JSON object {topic, key, value}: it is an array"}},
		{"string line", `"profiles"`,
			engine.Record{Value: []byte(`"profiles"`), Err: "input line 5 is not a JSON object {topic, key, value}: it is a string"}},
		{"number line", `42`,
			engine.Record{Value: []byte("42"), Err: "input line 5 is not a JSON object {topic, key, value}: it is a number"}},
		{"null line", `null`,
			engine.Record{Value: []byte("null"), Err: "input line 5 is not a JSON object {topic, key, value}: it is null"}},
		{"topic not a string", `{"topic":1,"key":"k","value":{}}`,
			engine.Record{Value: []byte(`{"topic":1,"key":"k","value":{}}`), Err: `input line 5 has a "topic" that is a number, not a string`}},
		{"key not a string", `{"topic":"profiles","key":{"spot":"acme"},"value":{}}`,
			engine.Record{Value: []byte(`{"topic":"profiles","key":{"spot":"acme"},"value":{}}`), Err: `input line 5 has a "key" that is an object, not a string or null`}},
		{"key a boolean", `{"topic":"profiles","key":true,"value":{}}`,
			engine.Record{Value: []byte(`{"topic":"profiles","key":true,"value":{}}`), Err: `input line 5 has a "key" that is a boolean, not a string or null`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Decode([]byte(tc.line), 4)
			want := tc.want
			want.Offset = 4
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Decode(%s)\n got  %#v\n want %#v", tc.line, got, want)
			}
			if (got.Value == nil) != (want.Value == nil) {
				t.Fatalf("tombstone %v, want %v", got.Value == nil, want.Value == nil)
			}
		})
	}
}

func TestDecodeCopiesTheLine(t *testing.T) {
	line := []byte(`{"topic":"profiles","key":"acme/u1","value":{"a":1}}`)
	bad := []byte(`not json`)
	rec, badRec := Decode(line, 0), Decode(bad, 1)
	for i := range line {
		line[i] = 'x'
	}
	for i := range bad {
		bad[i] = 'x'
	}
	if string(rec.Key) != "acme/u1" || string(rec.Value) != `{"a":1}` || string(badRec.Value) != "not json" {
		t.Fatalf("records share the input buffer: %q %q %q", rec.Key, rec.Value, badRec.Value)
	}
}

func TestLineRoundTrip(t *testing.T) {
	key := "acme/<u&1>"
	for _, tc := range []struct {
		name string
		line Line
		want string
	}{
		{"null key and value", Line{Topic: "profiles"}, `{"topic":"profiles","key":null,"value":null}`},
		{"object value as written", Line{Topic: "profiles", Key: &key, Value: json.RawMessage(`{"a": 1}`)},
			`{"topic":"profiles","key":"acme/<u&1>","value":{"a": 1}}`},
		{"value spanning lines is compacted", Line{Topic: "profiles", Key: &key, Value: json.RawMessage("{\n\"a\": 1\n}")},
			`{"topic":"profiles","key":"acme/<u&1>","value":{"a":1}}`},
		{"string value", Line{Topic: "activities", Key: &key, Value: json.RawMessage(`"{\"broken"`)},
			`{"topic":"activities","key":"acme/<u&1>","value":"{\"broken"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.line.AppendJSON(nil)
			if err != nil || string(b) != tc.want {
				t.Fatalf("AppendJSON = %s, %v; want %s", b, err, tc.want)
			}
			var back Line
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back.Record(7), Decode(b, 7)) {
				t.Fatalf("Unmarshal then Record = %#v, Decode = %#v", back.Record(7), Decode(b, 7))
			}
			if back.Topic != tc.line.Topic || (back.Key == nil) != (tc.line.Key == nil) || (back.Value == nil) != (tc.line.Value == nil) {
				t.Fatalf("round trip gives %+v, want %+v", back, tc.line)
			}
		})
	}

	var l Line
	err := json.Unmarshal([]byte(`{"topic":"profiles","key":3}`), &l)
	if err == nil || err.Error() != `file: the line has a "key" that is a number, not a string or null` {
		t.Fatalf("Unmarshal of a numeric key: %v", err)
	}
	if _, err := (Line{Topic: "profiles", Value: json.RawMessage("{")}).AppendJSON(nil); !errors.Is(err, ErrInvalidValue) {
		t.Fatalf("AppendJSON of an invalid value: %v", err)
	}
	var out bytes.Buffer
	err = WriteLines(&out, []Line{{Topic: "profiles"}, {Topic: "profiles", Value: json.RawMessage("{")}})
	if !errors.Is(err, ErrInvalidValue) || err.Error() != "line 2: "+ErrInvalidValue.Error() {
		t.Fatalf("WriteLines with an invalid value: %v", err)
	}
}

func TestWriteLinesThenSource(t *testing.T) {
	k1, k2 := "acme/u1", "acme/u2"
	lines := []Line{
		{Topic: "definitions", Key: &k1, Value: json.RawMessage(`{"kind":"group"}`)},
		{Topic: "profiles", Key: &k2},
		{Topic: "profiles", Key: &k1, Value: json.RawMessage(`"raw bytes"`)},
	}
	var b bytes.Buffer
	if err := WriteLines(&b, lines); err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b.Bytes(), []byte("\n")); n != len(lines) {
		t.Fatalf("%d newlines for %d lines:\n%s", n, len(lines), b.Bytes())
	}
	recs, err := NewSource(&b).Next(10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(lines) {
		t.Fatalf("read %d records, wrote %d lines", len(recs), len(lines))
	}
	for i, l := range lines {
		if want := l.Record(int64(i)); !reflect.DeepEqual(recs[i], want) {
			t.Errorf("record %d = %#v, want %#v", i, recs[i], want)
		}
	}
}

// FuzzDecode checks that Decode frames any line without panicking, and
// that a line it accepts writes back as a line that decodes to the same
// record.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"topic":"profiles","key":"acme/u1","value":{"spot":"acme"}}`,
		`{"topic":"profiles","key":null,"value":"raw"}`,
		`{"topic":1}`, `[1]`, `null`, `not json`, `{"value":""}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		rec := Decode(line, 0)
		if rec.Err != "" {
			if !bytes.Equal(rec.Value, line) {
				t.Fatalf("a line that cannot be framed keeps its bytes: %q", rec.Value)
			}
			return
		}
		l, err := parseLine(line)
		if err != nil {
			t.Fatalf("Decode accepted what parseLine rejects: %v", err)
		}
		b, err := l.AppendJSON(nil)
		if err != nil {
			t.Fatalf("AppendJSON of a parsed line: %v", err)
		}
		if again := Decode(b, 0); !reflect.DeepEqual(again, rec) {
			t.Fatalf("%s decodes to %#v; written back as %s it decodes to %#v", line, rec, b, again)
		}
	})
}

// TestSourceMaxLine checks that NewSourceMax reads lines up to its limit
// and stops with an error naming the limit at a longer one.
func TestSourceMaxLine(t *testing.T) {
	short := `{"topic":"profiles","key":"acme/u1","value":{"x":"` + strings.Repeat("a", 40) + `"}}`
	long := `{"topic":"profiles","key":"acme/u1","value":{"x":"` + strings.Repeat("a", 200) + `"}}`
	src := NewSourceMax(strings.NewReader(short+"\n"+long+"\n"), 150)
	if recs, err := src.Next(1); err != nil || len(recs) != 1 {
		t.Fatalf("first line: %d records, %v", len(recs), err)
	}
	if _, err := src.Next(1); err == nil || !strings.Contains(err.Error(), "line 2 is longer than 150 bytes") {
		t.Fatalf("long line: %v", err)
	}
}
