package jsonscan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// The seed corpus (testdata/fuzz/FuzzScanJSON) holds the values of the
// member records the engine's differential decoder tests start from.

// FuzzScanJSON compares the scanner with encoding/json: the same texts are
// valid, values span the bytes json.RawMessage holds, strings without
// escapes decode to their bytes, and compaction is json.Compact.
func FuzzScanJSON(f *testing.F) {
	for _, s := range []string{`{}`, ` {"a" : [1, -0.5e+3, true, false, null, "x\u00e9\n"]} `, `[`, `01`, `1.`, `-`, `"\u12"`, `{"a":1,}`,
		`[1,]`, "\"\x01\"", `"\q"`, `{"a" 1}`, `{1:2}`, `nulls`, `[1 2]`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000), "\"\xff\"", `{"a":{"b":{"c":[{}]}}}`, "1\v", "\"<a&b>\u2028\"", "\"\u2028\u2029\u2027\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, ok := Scan(data)
		if ok != json.Valid(data) {
			t.Fatalf("%q: Scan %v, json.Valid %v", data, ok, !ok)
		}
		if !ok {
			return
		}
		var raw json.RawMessage
		require.NoError(t, json.Unmarshal(data, &raw))
		if !bytes.Equal(v.Bytes, raw) {
			t.Fatalf("%q: value %q, json.RawMessage %q", data, v.Bytes, raw)
		}
		var compact bytes.Buffer
		require.NoError(t, json.Compact(&compact, v.Bytes))
		if got := AppendCompact(nil, v.Bytes); !bytes.Equal(got, compact.Bytes()) {
			t.Fatalf("%q: compacted %q, json.Compact %q", data, got, compact.Bytes())
		}
		if v.Kind != Obj && v.Kind != Arr { // utm values: strings and null
			want, err := json.Marshal(json.RawMessage(v.Bytes))
			require.NoError(t, err)
			if got := AppendHTMLEscaped(nil, v.Bytes); !bytes.Equal(got, want) {
				t.Fatalf("%q: escaped %q, json.Marshal %q", data, got, want)
			}
		}
		if p, ok := v.Plain(); ok {
			var s string
			require.NoError(t, json.Unmarshal(v.Bytes, &s))
			if utf8.Valid(p) && s != string(p) {
				t.Fatalf("%q: plain %q, decoded %q", data, p, s)
			}
		}
		if v.Kind == Obj && utf8.Valid(data) { // DecodeMember reads valid UTF-8 only
			var m map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(data, &m))
			got := map[string]json.RawMessage{}
			it := v.Members()
			for {
				key, esc, mv, ok := it.Next()
				if !ok {
					break
				}
				if esc {
					key = UnquoteKey(key)
				}
				got[string(key)] = mv.Bytes
			}
			require.False(t, it.Bad())
			if len(got) != len(m) {
				t.Fatalf("%q: %d members, encoding/json %d", data, len(got), len(m))
			}
			for k, x := range m {
				if !bytes.Equal(got[k], x) {
					t.Fatalf("%q: member %q is %q, encoding/json %q", data, k, got[k], x)
				}
			}
		}
	})
}
