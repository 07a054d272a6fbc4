package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// TestCodesListsEveryConstant checks that Codes() holds exactly the Code
// constants declared in deadletter.go, so a new code cannot be left out of
// the metrics and the reference.
func TestCodesListsEveryConstant(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "deadletter.go", nil, 0)
	require.NoError(t, err)
	var declared []Code
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			lit := vs.Values[0].(*ast.BasicLit)
			declared = append(declared, Code(strings.Trim(lit.Value, `"`)))
		}
	}
	require.NotEmpty(t, declared)
	require.ElementsMatch(t, declared, Codes())
	seen := map[Code]bool{}
	for _, c := range Codes() {
		require.False(t, seen[c], "code %q listed twice", c)
		seen[c] = true
	}
}

func TestTruncateUTF8(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc"},
		{"ab\u00e9", 3, "ab"},              // é is 2 bytes: cut before it
		{"a\u20ac", 2, "a"},                // € is 3 bytes
		{"a\U0001F600b", 4, "a"},           // 4-byte rune cut at its last byte
		{"a\U0001F600b", 5, "a\U0001F600"}, // cut right after it
		{"\xff\xff\xff\xff\xff", 2, "\xff\xff"},
	} {
		require.Equal(t, tc.want, string(truncateUTF8([]byte(tc.in), tc.n)), "%q[:%d]", tc.in, tc.n)
	}
}

// TestDeadLetterOfTooLargeRecord checks SPEC §4: the dead letter of a
// record over the size limit carries its first 64 KiB, its size and its
// SHA-256, in the result, in the outbox and in its JSON; other dead
// letters carry the whole value and no size or digest.
func TestDeadLetterOfTooLargeRecord(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	big := `{"spot":"acme","member":"u1","ts":"` + at(0) + `","profile":{"first_name":"` + strings.Repeat("x", 2<<20) + `"}}`
	res := h.run(
		in{KindProfiles, "acme/u1", big},
		in{KindProfiles, "acme/u1", `{"spot":`},
	)
	require.Len(t, res.DeadLetters, 2)
	d := res.DeadLetters[0]
	sum := sha256.Sum256([]byte(big))
	require.Equal(t, CodeTooLarge, d.Code)
	require.Equal(t, big[:TruncatedValueBytes], d.Value)
	require.Equal(t, int64(len(big)), d.Size)
	require.Equal(t, hex.EncodeToString(sum[:]), d.SHA256)
	require.Contains(t, d.Reason, "max record bytes")

	var js map[string]any
	require.NoError(t, json.Unmarshal(AppendDeadLetterJSON(nil, &d), &js))
	require.Equal(t, float64(len(big)), js["size"])
	require.Equal(t, d.SHA256, js["sha256"])
	require.Len(t, js["value"], TruncatedValueBytes)

	other := res.DeadLetters[1]
	require.Equal(t, CodeInvalidJSON, other.Code)
	require.Equal(t, `{"spot":`, other.Value)
	require.Zero(t, other.Size)
	js = nil
	require.NoError(t, json.Unmarshal(AppendDeadLetterJSON(nil, &other), &js))
	require.NotContains(t, js, "size")
	require.NotContains(t, js, "sha256")

	// What a crash leaves unpublished is the same truncated dead letter.
	pend, err := h.e.Pending(0)
	require.NoError(t, err)
	i := slices.IndexFunc(pend, func(o OutboxEntry) bool { return len(o.DeadLetters) > 0 })
	require.GreaterOrEqual(t, i, 0, "an outbox entry holds the dead letters")
	require.Equal(t, res.DeadLetters, pend[i].DeadLetters)
}

// TestMetricsStartAtZero checks that the counters with known label values
// expose every series at zero before anything happens: dead letters for
// every input kind and code, membership changes for every op and reason.
func TestMetricsStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	cfg.Registerer = reg
	newHarness(t, cfg)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	series := map[string]map[string]float64{}
	for _, mf := range mfs {
		s := map[string]float64{}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			s[strings.Join(labels, ",")] = m.GetCounter().GetValue()
		}
		series[mf.GetName()] = s
	}
	dead := series["smartgroups_dead_letters_total"]
	require.Len(t, dead, 4*len(Codes()))
	for _, k := range []Kind{KindProfiles, KindActivities, KindProperties, KindDefinitions} {
		for _, c := range Codes() {
			v, ok := dead["reason="+string(c)+",topic="+string(k)]
			require.True(t, ok, "dead letters of %s %s", k, c)
			require.Zero(t, v)
		}
	}
	changes := series["smartgroups_membership_changes_total"]
	require.Len(t, changes, 2*len(Reasons()))
	for _, op := range []Op{OpAdd, OpRemove} {
		for _, r := range Reasons() {
			_, ok := changes["op="+string(op)+",reason="+string(r)]
			require.True(t, ok, "membership changes %s %s", op, r)
		}
	}
	require.Len(t, series["smartgroups_records_consumed_total"], 4)
}
