package process

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/engine/rule"
)

const quickstartPath = "../../examples/quickstart.ndjson"

func readQuickstart(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(quickstartPath)
	require.NoError(t, err)
	return b
}

func fixedNow(t *testing.T, s string) Options {
	t.Helper()
	now, err := rule.ParseTime(s)
	require.NoError(t, err)
	return Options{Now: now, HasNow: true}
}

func run(t *testing.T, o Options, input []byte) (Stats, string, string) {
	t.Helper()
	var out, dead bytes.Buffer
	st, err := Run(context.Background(), o, bytes.NewReader(input), &out, &dead)
	require.NoError(t, err)
	return st, out.String(), dead.String()
}

func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

// The quickstart's membership stream at a fixed now, checked against
// SPEC by hand: vips needs (tag VIP or plan pro) and an attended_live in
// the last 30 days; vip-beta is vips and the static group g-static-1.
var quickstartAt25 = lines(
	// u1: tagged vip, in g-static-1; the live attendance adds both groups.
	`{"spot":"acme","group":"vips","member":"u1","op":"add","ts":"2026-11-20T10:00:00.000Z","reason":"rule","seq":1}`,
	`{"spot":"acme","group":"vip-beta","member":"u1","op":"add","ts":"2026-11-20T10:00:00.000Z","reason":"rule","seq":1}`,
	// u2: plan pro, then an attendance at epoch ms 1795251600000.
	`{"spot":"acme","group":"vips","member":"u2","op":"add","ts":"2026-11-21T09:00:00.000Z","reason":"rule","seq":1}`,
	// Blacklisting u1 from vips takes effect at now (definitions carry no ts).
	`{"spot":"acme","group":"vips","member":"u1","op":"remove","ts":"2026-11-25T00:00:00.000Z","reason":"blacklist","seq":2}`,
	`{"spot":"acme","group":"vip-beta","member":"u1","op":"remove","ts":"2026-11-25T00:00:00.000Z","reason":"blacklist","seq":2}`,
	// Deleting vips is refused (vip-beta references it); u2 is deactivated.
	`{"spot":"acme","group":"vips","member":"u2","op":"remove","ts":"2026-11-22T09:00:00.000Z","reason":"eligibility","seq":2}`,
)

var quickstartDead = []struct {
	topic  string
	offset int64
	key    string
	code   engine.Code
	reason string
}{
	{"properties", 9, "acme/u2", "type_mismatch", `custom.plan: option "enterprise" is not declared`},
	{"activities", 10, "acme/u3", "key_mismatch", `record key "acme/u3" does not equal <spot>/<member> "acme/u9" from its value`},
	{"definitions", 12, "acme/group/vips", "referenced", `group "vips" is referenced by smart group(s) vip-beta`},
}

func checkDead(t *testing.T, dead string) {
	t.Helper()
	ls := strings.Split(strings.TrimSuffix(dead, "\n"), "\n")
	require.Len(t, ls, len(quickstartDead), dead)
	for i, l := range ls {
		var d engine.DeadLetter
		require.NoError(t, json.Unmarshal([]byte(l), &d))
		w := quickstartDead[i]
		require.Equal(t, w.topic, d.Topic)
		require.Equal(t, int32(0), d.Partition)
		require.Equal(t, w.offset, d.Offset)
		require.Equal(t, w.key, d.Key)
		require.Equal(t, w.code, d.Code)
		require.Equal(t, w.reason, d.Reason)
	}
	// The raw value is kept as given.
	var d engine.DeadLetter
	require.NoError(t, json.Unmarshal([]byte(ls[0]), &d))
	require.Equal(t, `{"spot":"acme","member":"u2","ts":"2026-11-21T09:00:00Z","custom":{"plan":"enterprise"}}`, d.Value)
	require.NoError(t, json.Unmarshal([]byte(ls[2]), &d))
	require.Equal(t, "", d.Value, "a tombstone has no value")
}

func TestQuickstartFixedNow(t *testing.T) {
	st, out, dead := run(t, fixedNow(t, "2026-11-25T00:00:00Z"), readQuickstart(t))
	require.Equal(t, quickstartAt25, out)
	checkDead(t, dead)
	require.Equal(t, Stats{Records: 14, Events: 6, DeadLetters: 3}, st)
}

func TestQuickstartFixedNowWindowExpired(t *testing.T) {
	// 30 days after the last attendance nobody is engaged: the records
	// apply, but no attendance is within the window at now.
	st, out, dead := run(t, fixedNow(t, "2027-01-01T00:00:00Z"), readQuickstart(t))
	require.Equal(t, "", out)
	require.Equal(t, 3, st.DeadLetters)
	require.Len(t, strings.Split(strings.TrimSpace(dead), "\n"), 3)
}

func TestQuickstartEventClock(t *testing.T) {
	_, out, dead := run(t, Options{}, readQuickstart(t))
	// With the event clock, now is the largest ts seen: 2026-11-21T09:00.
	require.Equal(t, strings.ReplaceAll(quickstartAt25, "2026-11-25T00:00:00.000Z", "2026-11-21T09:00:00.000Z"), out)
	checkDead(t, dead)
}

func TestQuickstartDeterministic(t *testing.T) {
	in := readQuickstart(t)
	for _, o := range []Options{fixedNow(t, "2026-11-25T00:00:00Z"), {}} {
		_, out1, dead1 := run(t, o, in)
		for _, batch := range []int{1, 3, 1000} {
			o2 := o
			o2.BatchSize = batch
			_, out2, dead2 := run(t, o2, in)
			require.Equal(t, out1, out2, "batch size %d", batch)
			require.Equal(t, dead1, dead2, "batch size %d", batch)
		}
	}
}

func TestDataDirContinues(t *testing.T) {
	in := readQuickstart(t)
	all := strings.SplitAfter(string(in), "\n")
	for _, o := range []Options{fixedNow(t, "2026-11-25T00:00:00Z"), {}} {
		want, _ := func() (string, string) { _, out, dead := run(t, o, in); return out, dead }()
		for _, split := range []int{1, 6, 9, 12} {
			dir := t.TempDir()
			o1 := o
			o1.DataDir = dir
			st1, out1, _ := run(t, o1, []byte(strings.Join(all[:split], "")))
			st2, out2, dead2 := run(t, o1, []byte(strings.Join(all[split:], "")))
			require.Equal(t, want, out1+out2, "split at line %d", split)
			require.Equal(t, 14, st1.Records+st2.Records)
			// Offsets of dead letters are positions in the second input.
			for _, l := range strings.Split(strings.TrimSpace(dead2), "\n") {
				if l == "" {
					continue
				}
				var d engine.DeadLetter
				require.NoError(t, json.Unmarshal([]byte(l), &d))
				require.Less(t, d.Offset, int64(len(all)-split))
			}
			// A third run with no input emits nothing and keeps the state.
			st3, out3, dead3 := run(t, o1, nil)
			require.Equal(t, Stats{}, st3)
			require.Equal(t, "", out3+dead3)
		}
	}
}

func TestDataDirStateIsKept(t *testing.T) {
	dir := t.TempDir()
	o := fixedNow(t, "2026-11-25T00:00:00Z")
	o.DataDir = dir
	first := lines(
		`{"topic":"definitions","key":"acme/group/g","value":{"kind":"group","spot":"acme","id":"g","type":"smart","name":"G","rule":{"field":"profile.tags","op":"has_any","value":["vip"]}}}`,
		`{"topic":"profiles","key":"acme/u1","value":{"spot":"acme","member":"u1","ts":"2026-11-20T09:00:00Z","profile":{"status":"accepted","tags":["vip"]}}}`,
	)
	_, out, _ := run(t, o, []byte(first))
	require.Equal(t, lines(`{"spot":"acme","group":"g","member":"u1","op":"add","ts":"2026-11-20T09:00:00.000Z","reason":"eligibility","seq":1}`), out)
	// The second run knows the group and the member: a tag change removes
	// with seq 2; a new member is added with seq 1.
	second := lines(
		`{"topic":"profiles","key":"acme/u1","value":{"spot":"acme","member":"u1","ts":"2026-11-20T10:00:00Z","profile":{"tags":null}}}`,
		`{"topic":"profiles","key":"acme/u2","value":{"spot":"acme","member":"u2","ts":"2026-11-20T10:00:00Z","profile":{"status":"pending","tags":["VIP"]}}}`,
	)
	_, out, _ = run(t, o, []byte(second))
	require.Equal(t, lines(
		`{"spot":"acme","group":"g","member":"u1","op":"remove","ts":"2026-11-20T10:00:00.000Z","reason":"rule","seq":2}`,
		`{"spot":"acme","group":"g","member":"u2","op":"add","ts":"2026-11-20T10:00:00.000Z","reason":"eligibility","seq":1}`,
	), out)
	// Without a data dir every run starts from nothing.
	_, out, _ = run(t, fixedNow(t, "2026-11-25T00:00:00Z"), []byte(second))
	require.Equal(t, "", out)
}

func TestInvalidLines(t *testing.T) {
	input := lines(
		`not json`,
		`{"topic":"bogus","key":"acme/u1","value":{}}`,
		``,
		`{"topic":"profiles","key":"acme/u1","value":"{\"spot\":\"acme\",\"member\":\"u1\",\"ts\":0,\"profile\":{\"status\":\"accepted\"}}"}`,
		`{"topic":"definitions","key":"acme/group/g","value":{"kind":"group","spot":"acme","id":"g","type":"smart","name":"G","rule":{"all":[]}}}`,
	)
	st, out, dead := run(t, Options{}, []byte(input))
	require.Equal(t, Stats{Records: 4, Events: 1, DeadLetters: 2}, st)
	// A value given as a JSON string is the record value.
	require.Equal(t, lines(`{"spot":"acme","group":"g","member":"u1","op":"add","ts":"1970-01-01T00:00:00.000Z","reason":"definition","seq":1}`), out)
	ds := strings.Split(strings.TrimSpace(dead), "\n")
	require.Len(t, ds, 2)
	var d engine.DeadLetter
	require.NoError(t, json.Unmarshal([]byte(ds[0]), &d))
	require.Equal(t, engine.CodeInvalidInput, d.Code)
	require.Equal(t, int64(0), d.Offset)
	require.Equal(t, "not json", d.Value)
	require.Contains(t, d.Reason, "input line 1 is not a JSON object {topic, key, value}")
	require.NoError(t, json.Unmarshal([]byte(ds[1]), &d))
	require.Equal(t, engine.CodeUnknownTopic, d.Code)
	require.Equal(t, "bogus", d.Topic)
	require.Equal(t, int64(1), d.Offset)
}

// TestTooLargeDeadLetter checks SPEC §4 on the NDJSON dead letters: a
// record over the size limit is dead-lettered with its first 64 KiB, its
// size and its SHA-256, and the member's next record is applied.
func TestTooLargeDeadLetter(t *testing.T) {
	def := `{"topic":"definitions","key":"acme/group/g","value":{"kind":"group","spot":"acme","id":"g","type":"smart","name":"G","rule":{"field":"profile.tags","op":"has_any","value":["vip"]}}}`
	big := `{"spot":"acme","member":"u1","ts":1,"profile":{"status":"accepted","tags":["vip"],"title":"` + strings.Repeat("t", 2<<20) + `"}}`
	bigLine, err := json.Marshal(map[string]string{"topic": "profiles", "key": "acme/u1", "value": big})
	require.NoError(t, err)
	ok := `{"topic":"profiles","key":"acme/u1","value":{"spot":"acme","member":"u1","ts":2,"profile":{"status":"accepted","tags":["vip"]}}}`
	st, out, dead := run(t, Options{}, []byte(lines(def, string(bigLine), ok)))
	require.Equal(t, Stats{Records: 3, Events: 1, DeadLetters: 1}, st)
	require.Equal(t, lines(`{"spot":"acme","group":"g","member":"u1","op":"add","ts":"1970-01-01T00:00:00.002Z","reason":"eligibility","seq":1}`), out)
	var d engine.DeadLetter
	require.NoError(t, json.Unmarshal([]byte(dead), &d))
	sum := sha256.Sum256([]byte(big))
	require.Equal(t, engine.CodeTooLarge, d.Code)
	require.Equal(t, big[:engine.TruncatedValueBytes], d.Value)
	require.Equal(t, int64(len(big)), d.Size)
	require.Equal(t, hex.EncodeToString(sum[:]), d.SHA256)
	require.Contains(t, dead, `"size":`+strconv.Itoa(len(big)))

	// A lower limit is the limit dead letters name.
	lim := engine.DefaultLimits()
	lim.MaxRecordBytes = 50
	_, out, dead = run(t, Options{Limits: lim}, []byte(lines(ok)))
	require.Empty(t, out)
	require.NoError(t, json.Unmarshal([]byte(dead), &d))
	require.Equal(t, engine.CodeTooLarge, d.Code)
	require.Contains(t, d.Reason, "limit of 50 bytes")
}
