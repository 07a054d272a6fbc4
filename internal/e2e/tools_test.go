package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/connectors/file"
	"github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/internal/process"
	"github.com/smartgroups/smartgroups/internal/scenario"
)

// newServeBrokerEnv starts one serve instance and returns the env whose
// broker it uses: on the embedded broker (no KAFKA_BROKERS), serve's own,
// started without --brokers, so that the tools under test talk to the
// broker of a running serve; otherwise the real broker.
func newServeBrokerEnv(t *testing.T) (*env, *serveProc) {
	t.Helper()
	if realBrokers() != nil {
		e := newEnv(t)
		s := e.newServe("a")
		s.start()
		s.waitReady(2 * time.Minute)
		return e, s
	}
	addr := freeAddr(t)
	e := &env{t: t, dir: t.TempDir(), brokers: []string{addr}}
	id := uniqueName(t)
	cfg := kafka.DefaultConfig()
	cfg.Brokers = e.brokers
	cfg.TopicPrefix = "e2e." + id + "."
	cfg.Partitions = numPartitions
	cfg.GroupID = "e2e-" + id
	cfg.TransactionalIDPrefix = "e2e-" + id + "-txn-"
	e.cfg = cfg
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	e.cl, e.adm = cl, kadm.NewClient(cl)
	t.Cleanup(e.cleanup)
	// serve creates the topics; its embedded broker lives as long as it.
	s := e.newServe("a", "--brokers", "", "--embedded-broker", addr)
	s.start()
	s.waitReady(2 * time.Minute)
	t.Logf("serve's embedded broker %s, topic prefix %s", addr, cfg.TopicPrefix)
	return e, s
}

// produceTimed produces lines in order, each with a record timestamp one
// millisecond after the previous one (in the past, so that no broker
// refuses them), so that a replay merges them back in this order.
func (e *env) produceTimed(ctx context.Context, lines []file.Line) error {
	base := time.Now().Add(-48 * time.Hour).Truncate(time.Millisecond)
	recs := make([]*kgo.Record, 0, len(lines))
	for i, l := range lines {
		r := l.Record(int64(i))
		if r.Err != "" {
			return fmt.Errorf("line %d: %s", i, r.Err)
		}
		recs = append(recs, &kgo.Record{Topic: e.cfg.Topic(r.Kind), Key: r.Key, Value: r.Value,
			Timestamp: base.Add(time.Duration(i) * time.Millisecond)})
	}
	for i := 0; i < len(recs); i += 500 {
		if err := e.cl.ProduceSync(ctx, recs[i:min(i+500, len(recs))]...).FirstErr(); err != nil {
			return err
		}
	}
	return nil
}

// wrecLines turns workload records into process input lines.
func wrecLines(recs []wrec) []file.Line {
	out := make([]file.Line, len(recs))
	for i, r := range recs {
		k := r.Key
		var v json.RawMessage
		if r.Value != nil {
			b, _ := json.Marshal(string(r.Value)) // the raw bytes, as a JSON string
			v = b
		}
		out[i] = file.Line{Topic: string(r.Kind), Key: &k, Value: v}
	}
	return out
}

// processOutput runs `process` (in-process) over lines: the membership
// events, the access events and the dead letters it writes.
func processOutput(t *testing.T, lines []file.Line) (events, access, dead string) {
	t.Helper()
	var in, out, acc, dl bytes.Buffer
	if err := file.WriteLines(&in, lines); err != nil {
		t.Fatal(err)
	}
	if _, err := process.Run(context.Background(), process.Options{Access: &acc}, &in, &out, &dl); err != nil {
		t.Fatal(err)
	}
	return out.String(), acc.String(), dl.String()
}

// runTool runs the smartgroups binary with args; it returns the combined
// output and the exit code.
func (e *env) runTool(args ...string) (string, int) {
	e.t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Dir = e.dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SMARTGROUPS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			e.t.Fatalf("running %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	e.t.Logf("smartgroups %s: exit %d\n%s", strings.Join(args, " "), code, out.String())
	return out.String(), code
}

// replayArgs are the flags naming the env's broker and deployment.
func (e *env) replayArgs(extra ...string) []string {
	return append([]string{"replay", "--brokers", strings.Join(e.brokers, ","), "--topic-prefix", e.cfg.TopicPrefix}, extra...)
}

// finalTable is the last event per key of NDJSON membership events: the
// keys whose last op is add.
func finalTable(t *testing.T, ndjson string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(ndjson), "\n") {
		if l == "" {
			continue
		}
		var ev engine.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("event %q: %v", l, err)
		}
		if ev.Op == engine.OpAdd {
			out[ev.Key()] = true
		} else {
			delete(out, ev.Key())
		}
	}
	return out
}

// readEvents reads a membership topic read_committed and checks its per-key
// guarantees.
func (e *env) readEvents(ctx context.Context, topic string) ([]outEvent, *history) {
	e.t.Helper()
	recs, err := e.readTopic(ctx, topic, true, false)
	if err != nil {
		e.t.Fatalf("reading %s: %v", topic, err)
	}
	evs := make([]outEvent, 0, len(recs))
	for _, r := range recs {
		var ev engine.Event
		if err := decodeStrict(r.Value, &ev); err != nil {
			e.t.Fatalf("%s %d@%d: %v", topic, r.Partition, r.Offset, err)
		}
		evs = append(evs, outEvent{Event: ev, Key: string(r.Key), Partition: r.Partition, Offset: r.Offset})
	}
	h := checkHistory(evs)
	if len(h.problems) > 0 {
		e.t.Errorf("%s breaks the per-key guarantees:\n  %s", topic, strings.Join(h.problems, "\n  "))
	}
	return evs, h
}

// sortedLines returns the lines of s, sorted.
func sortedLines(s string) []string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	sort.Strings(ls)
	return ls
}

// deadLetterIDs describes dead letters by key, code and reason (their
// positions differ between process and replay).
func deadLetterIDs(t *testing.T, ndjson string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(ndjson), "\n") {
		if l == "" {
			continue
		}
		var d engine.DeadLetter
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("dead letter %q: %v", l, err)
		}
		out = append(out, d.Key+" "+string(d.Code)+" "+d.Reason)
	}
	sort.Strings(out)
	return out
}

// endOffsets are the end offsets of topic, "partition:offset" joined.
func (e *env) endOffsets(ctx context.Context, topic string) string {
	e.t.Helper()
	ends, err := e.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		e.t.Fatal(err)
	}
	var ps []string
	ends.Each(func(o kadm.ListedOffset) { ps = append(ps, fmt.Sprintf("%d:%d", o.Partition, o.Offset)) })
	sort.Strings(ps)
	return strings.Join(ps, ",")
}

// TestReplayEqualsProcess: a generated scenario (every kind of record,
// invalid ones included, definitions changing along the way) produced
// through the broker of a running serve; `replay` into a new topic and a
// file writes exactly what `process` writes over the same records: the
// same event lines, the same access events, the same dead letters (at
// their Kafka positions), and the topic holds the same events,
// exactly once, well-formed per key.
func TestReplayEqualsProcess(t *testing.T) {
	t.Parallel()
	e, s := newServeBrokerEnv(t)
	ctx := e.ctx(5 * time.Minute)
	sc := scenario.DefaultConfig()
	sc.Records = 3000
	var lines []file.Line
	for _, l := range scenario.Generate(int64(seed(t, 7)), sc) {
		// Kafka refuses a record without a key on a compacted topic.
		if l.Topic == string(engine.KindDefinitions) && l.Key == nil {
			continue
		}
		lines = append(lines, l)
	}
	if err := e.produceTimed(ctx, lines); err != nil {
		t.Fatal(err)
	}
	wantEvents, wantAccess, wantDead := processOutput(t, lines)
	if strings.Count(wantEvents, "\n") < 100 {
		t.Fatalf("the scenario gives only %d events", strings.Count(wantEvents, "\n"))
	}

	out := filepath.Join(e.dir, "replay.ndjson")
	accessOut := filepath.Join(e.dir, "replay-access.ndjson")
	deadOut := filepath.Join(e.dir, "replay-dead.ndjson")
	topic, accessTopic := e.cfg.TopicPrefix+"replay.memberships", e.cfg.TopicPrefix+"replay.access"
	text, code := e.runTool(e.replayArgs("--output-topic", topic, "--access-output-topic", accessTopic,
		"--output-file", out, "--access-output-file", accessOut, "--deadletter", deadOut,
		"--data-dir", filepath.Join(e.dir, "replay-state"), "--batch-size", "700", "--json")...)
	if code != 0 {
		t.Fatalf("replay failed")
	}
	var sum struct {
		Records     int64 `json:"records"`
		Events      int64 `json:"events"`
		DeadLetters int64 `json:"dead_letters"`
	}
	if err := json.Unmarshal([]byte(text[strings.LastIndex(strings.TrimSpace(text), "\n")+1:]), &sum); err != nil {
		t.Fatalf("summary %q: %v", text, err)
	}
	if sum.Records != int64(len(lines)) || sum.Events != int64(strings.Count(wantEvents, "\n")) ||
		sum.DeadLetters != int64(strings.Count(wantDead, "\n")) {
		t.Errorf("summary %+v, want %d records, %d events, %d dead letters", sum, len(lines),
			strings.Count(wantEvents, "\n"), strings.Count(wantDead, "\n"))
	}

	gotEvents, _ := os.ReadFile(out)
	if string(gotEvents) != wantEvents {
		t.Errorf("--output-file differs from process's output (%d vs %d bytes)", len(gotEvents), len(wantEvents))
	}
	gotAccess, _ := os.ReadFile(accessOut)
	if string(gotAccess) != wantAccess {
		t.Errorf("--access-output-file differs from process's access output (%d vs %d bytes)", len(gotAccess), len(wantAccess))
	}
	gotDead, _ := os.ReadFile(deadOut)
	if g, w := deadLetterIDs(t, string(gotDead)), deadLetterIDs(t, wantDead); strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("dead letters differ from process's:\n got %d: %v\nwant %d: %v", len(g), g, len(w), w)
	}
	// Dead letters name the record's position in Kafka.
	for _, l := range strings.Split(strings.TrimSpace(string(gotDead)), "\n") {
		var d engine.DeadLetter
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(d.Topic, e.cfg.TopicPrefix) {
			t.Errorf("dead letter of topic %q, want one of the deployment's input topics", d.Topic)
			break
		}
	}

	evs, h := e.readEvents(ctx, topic)
	var fromTopic []string
	for _, ev := range evs {
		fromTopic = append(fromTopic, string(engine.AppendEventJSON(nil, &ev.Event)))
	}
	sort.Strings(fromTopic)
	if strings.Join(fromTopic, "\n") != strings.Join(sortedLines(wantEvents), "\n") {
		t.Errorf("the output topic holds %d events, process writes %d; they differ", len(fromTopic), strings.Count(wantEvents, "\n"))
	}
	if d := diffSets(h.final, finalTable(t, wantEvents), h); d != "" {
		t.Errorf("final memberships of the output topic differ from process's:\n%s", d)
	}
	accRecs, err := e.readTopic(ctx, accessTopic, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(accRecs) != strings.Count(wantAccess, "\n") {
		t.Errorf("the access output topic holds %d events, process writes %d", len(accRecs), strings.Count(wantAccess, "\n"))
	}
	if !s.running() {
		t.Fatalf("serve stopped during the replay")
	}

	// The same topic again: refused, it holds a replay's output.
	if text, code := e.runTool(e.replayArgs("--output-topic", topic)...); code == 0 || !strings.Contains(text, "is the output of a replay") {
		t.Errorf("a second replay into %s: exit %d, want a refusal naming the replay", topic, code)
	}
	// The live memberships topic: refused.
	if text, code := e.runTool(e.replayArgs("--output-topic", e.cfg.MembershipsTopic())...); code == 0 || !strings.Contains(text, "a topic of the live deployment") {
		t.Errorf("a replay into the live memberships topic: exit %d, want a refusal", code)
	}
	// A data dir that is not empty: refused.
	if _, code := e.runTool(e.replayArgs("--data-dir", filepath.Join(e.dir, "replay-state"))...); code == 0 {
		t.Errorf("a replay into a used data dir: exit 0, want a refusal")
	}
}

// TestReplayBacktest: `replay --definitions` with a changed rule gives the
// memberships that rule would have produced over the whole history (what
// `process` gives over the history with that definition in force from the
// start), --emit-from leaves out the events before it, and nothing live
// changes: the live topics' end offsets stay where they were.
func TestReplayBacktest(t *testing.T) {
	t.Parallel()
	e, s := newServeBrokerEnv(t)
	ctx := e.ctx(5 * time.Minute)
	w := newWorkload(defaultWorkloadConfig(seed(t, 23)))
	recs := append(append([]wrec{}, w.defs...), w.initial()...)
	recs = append(recs, w.batch(1500)...)
	lines := wrecLines(recs)
	if err := e.produceTimed(ctx, lines); err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(3*time.Minute, w.deadLetters(), s)
	live := map[string]string{}
	liveTopics := []string{e.cfg.MembershipsTopic(), e.cfg.AccessTopic(), e.cfg.DeadLetterTopic(), e.cfg.ChangelogTopic(),
		e.cfg.ProgressTopic(), e.cfg.Topic(engine.KindDefinitions)}
	for _, topic := range liveTopics {
		live[topic] = e.endOffsets(ctx, topic)
	}

	// The rule change: attended a live in the last day, twice, instead of
	// once in the last 7 days.
	key := "acme/group/recent-attendees"
	var def map[string]any
	for _, r := range w.defs {
		if r.Key == key {
			if err := json.Unmarshal(r.Value, &def); err != nil {
				t.Fatal(err)
			}
		}
	}
	if def == nil {
		t.Fatalf("no definition %s in the workload", key)
	}
	def["rule"] = map[string]any{"activity": "attended_live", "when": map[string]any{"within_last": map[string]int{"hours": 24}},
		"count": map[string]int{"gte": 2}}
	newDef, _ := json.Marshal(def)
	defLine := file.Line{Topic: "definitions", Key: &key, Value: newDef}
	defsFile := filepath.Join(e.dir, "backtest-defs.ndjson")
	var buf bytes.Buffer
	if err := file.WriteLines(&buf, []file.Line{defLine}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(defsFile, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	// What the history gives with the new rule in force from the start.
	backtest := []file.Line{defLine}
	for _, l := range lines {
		if l.Topic == "definitions" && *l.Key == key {
			continue
		}
		backtest = append(backtest, l)
	}
	wantAll, _, _ := processOutput(t, backtest)
	original, _, _ := processOutput(t, lines)
	group := func(ndjson string) map[string]bool {
		out := map[string]bool{}
		for k := range finalTable(t, ndjson) {
			if strings.HasPrefix(k, "acme/recent-attendees/") {
				out[k] = true
			}
		}
		return out
	}
	if diffSets(group(wantAll), group(original), nil) == "" {
		t.Fatalf("the changed rule gives the same members as the original one: the test would prove nothing")
	}
	// --emit-from: the events from the middle of the history on.
	var all []engine.Event
	for _, l := range strings.Split(strings.TrimSpace(wantAll), "\n") {
		var ev engine.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatal(err)
		}
		all = append(all, ev)
	}
	var stamps []string
	for _, ev := range all {
		stamps = append(stamps, ev.TS)
	}
	sort.Strings(stamps)
	// The first instant after the middle one: the events at the start
	// share one instant.
	from := stamps[len(stamps)/2]
	if from == stamps[0] {
		for _, st := range stamps {
			if st > from {
				from = st
				break
			}
		}
	}
	var want strings.Builder
	left := 0
	for _, ev := range all {
		if ev.TS >= from {
			want.Write(engine.AppendEventJSON(nil, &ev))
			want.WriteByte('\n')
		} else {
			left++
		}
	}
	if left == 0 {
		t.Fatalf("no event before %s", from)
	}

	out := filepath.Join(e.dir, "backtest.ndjson")
	if _, code := e.runTool(e.replayArgs("--definitions", defsFile, "--emit-from", from, "--output-file", out)...); code != 0 {
		t.Fatalf("replay --definitions failed")
	}
	got, _ := os.ReadFile(out)
	if string(got) != want.String() {
		t.Errorf("the backtest's events differ from the history with the new rule from %s (%d vs %d bytes)", from, len(got), want.Len())
	}
	outAll := filepath.Join(e.dir, "backtest-all.ndjson")
	if _, code := e.runTool(e.replayArgs("--definitions", defsFile, "--output-file", outAll)...); code != 0 {
		t.Fatalf("replay --definitions failed")
	}
	gotAll, _ := os.ReadFile(outAll)
	if d := diffSets(group(string(gotAll)), group(wantAll), nil); d != "" {
		t.Errorf("the backtest's recent-attendees differ from what the new rule gives:\n%s", d)
	}

	for _, topic := range liveTopics {
		if now := e.endOffsets(ctx, topic); now != live[topic] {
			t.Errorf("the live topic %s moved during the backtest: end offsets %s, were %s", topic, now, live[topic])
		}
	}
	if !s.running() {
		t.Fatalf("serve stopped during the backtest")
	}
	e.verify(w.reference(t), w.deadLetters())
}

// TestOutputGuard: a second deployment (another group id and
// transactional id prefix) on the same topic prefix refuses to start,
// naming the owner and the ways out; the same deployment restarts fine;
// --take-over-output moves the topics, with a warning, after which the
// first deployment is the one refused.
func TestOutputGuard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.newServe("a")
	a.start()
	a.waitReady(2 * time.Minute)

	other := []string{"--group-id", e.cfg.GroupID + "-other", "--transactional-id-prefix", e.cfg.TransactionalIDPrefix + "other-"}
	b := e.newServe("b", other...)
	b.start()
	if !b.wait(time.Minute) {
		t.Fatalf("the second deployment did not stop")
	}
	log := b.runLog(1)
	for _, want := range []string{"refusing to start", e.cfg.MembershipsTopic() + " is the output of the serve deployment with group id \"" + e.cfg.GroupID + "\"",
		"--topic-prefix", "replay --output-topic", "smartgroups reset", "--take-over-output"} {
		if !strings.Contains(log, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, log)
		}
	}

	// The same deployment: a second instance and a restart start fine.
	a2 := e.newServe("a2")
	a2.start()
	a2.waitReady(2 * time.Minute)
	if code := a2.terminate(time.Minute); code != 0 {
		t.Fatalf("a2 exited %d", code)
	}
	if code := a.terminate(time.Minute); code != 0 {
		t.Fatalf("a exited %d", code)
	}
	a.start()
	a.waitReady(2 * time.Minute)
	if code := a.terminate(time.Minute); code != 0 {
		t.Fatalf("a exited %d", code)
	}

	// A deliberate move.
	b2 := e.newServe("b2", append(other, "--take-over-output")...)
	b2.start()
	b2.waitReady(2 * time.Minute)
	if log := b2.runLog(1); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "TAKING OVER") {
		t.Errorf("the take-over is not logged as a warning:\n%s", log)
	}
	a.start()
	if !a.wait(time.Minute) {
		t.Fatalf("the first deployment started on topics it no longer owns")
	}
	if log := a.runLog(a.runCount()); !strings.Contains(log, "group id \""+e.cfg.GroupID+"-other\"") {
		t.Errorf("the refusal does not name the new owner:\n%s", log)
	}
	if code := b2.terminate(time.Minute); code != 0 {
		t.Fatalf("b2 exited %d", code)
	}
}

// TestReset: reset refuses while the deployment runs (and changes
// nothing), prints its plan without --yes, and after a SIGKILL (the
// instance stays a static member of the group) deletes the state; the
// restarted deployment rebuilds it from the inputs: a fresh, well-formed
// history (seqs from 1) that ends with the same memberships. Reset again
// without the data dir: the instance drops its local state, taken from
// the deleted changelog, and rebuilds again.
func TestReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := e.ctx(6 * time.Minute)
	w := newWorkload(defaultWorkloadConfig(seed(t, 31)))
	if err := e.produce(ctx, w.defs); err != nil {
		t.Fatal(err)
	}
	if err := e.produce(ctx, append(w.initial(), w.batch(1000)...)); err != nil {
		t.Fatal(err)
	}
	s := e.newServe("a")
	s.start()
	s.waitReady(2 * time.Minute)
	e.waitCaughtUp(3*time.Minute, w.deadLetters(), s)
	e.verify(w.reference(t), w.deadLetters())

	args := []string{"reset", "--brokers", strings.Join(e.brokers, ","), "--topic-prefix", e.cfg.TopicPrefix,
		"--group-id", e.cfg.GroupID, "--transactional-id-prefix", e.cfg.TransactionalIDPrefix, "--data-dir", s.dataDir, "--live-wait", "8s"}
	text, code := e.runTool(args...)
	if code == 0 || !strings.Contains(text, "run again with --yes") || !strings.Contains(text, e.cfg.ChangelogTopic()) {
		t.Errorf("reset without --yes: exit %d, want a plan naming the changelog and a non-zero exit", code)
	}
	// Running: the live instance joins the group again after reset
	// removed it, and reset refuses; with its data dir, the store's lock
	// gives it away first.
	text, code = e.runTool(append(args[:len(args)-4:len(args)-4], "--live-wait", "8s", "--yes")...)
	if code == 0 || !strings.Contains(text, "live members") {
		t.Fatalf("reset of a running deployment: exit %d, want a refusal naming its live members", code)
	}
	text, code = e.runTool(append(args, "--yes")...)
	if code == 0 || !strings.Contains(text, "is serve running") {
		t.Fatalf("reset of a running instance's data dir: exit %d, want a refusal", code)
	}
	details, err := e.adm.ListTopics(kadm.WithAuthorizedOps(ctx), e.cfg.ChangelogTopic())
	if d, ok := details[e.cfg.ChangelogTopic()]; err != nil || !ok || d.Err != nil {
		t.Fatalf("the refused reset deleted the changelog (%v)", err)
	}
	if !s.running() {
		t.Fatalf("serve stopped after the refused reset")
	}

	s.kill()
	// The killed instance is still a static member of the group.
	text, code = e.runTool(append(args, "--yes")...)
	if code != 0 {
		t.Fatalf("reset after the kill failed:\n%s", text)
	}
	for _, want := range []string{"removed 1 static member", "deleted topic " + e.cfg.ChangelogTopic(), "deleted topic " + e.cfg.ProgressTopic(),
		"released the claim on " + e.cfg.MembershipsTopic(), "deleted consumer group"} {
		if !strings.Contains(text, want) {
			t.Errorf("reset does not say %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "state")); !os.IsNotExist(err) {
		t.Errorf("the local state is still there: %v", err)
	}
	groups, err := e.adm.DescribeGroups(ctx, e.cfg.GroupID)
	if err == nil {
		if g, ok := groups[e.cfg.GroupID]; ok && g.Err == nil && g.State != "Dead" && len(g.Members) > 0 {
			t.Errorf("the consumer group still has members: %+v", g.Members)
		}
	}

	e.checkRebuild(ctx, s, w, 2*w.deadLetters())

	// Reset without the data dir: the instance finds a local state taken
	// from a changelog that no longer exists, drops it and rebuilds.
	s.kill()
	if text, code := e.runTool(append(args[:len(args)-4:len(args)-4], "--live-wait", "8s", "--yes")...); code != 0 {
		t.Fatalf("reset without the data dir failed:\n%s", text)
	}
	// The definitions are kept in the data dir's global state: only the
	// invalid member records are dead-lettered again.
	e.checkRebuild(ctx, s, w, 3*w.deadLetters()-w.countInvalid(w.defs))
	if log := s.runLog(s.runCount()); !strings.Contains(log, "dropping the local state") {
		t.Errorf("the instance did not drop its local state of the old changelog:\n%s", tail(s.logPath(), 30))
	}
}

// checkRebuild restarts s after a reset and checks that it rebuilds from
// the inputs: the events it publishes after the restart are a fresh,
// well-formed history (seqs from 1) ending in the reference memberships;
// wantDead is the number of dead letters published by then.
func (e *env) checkRebuild(ctx context.Context, s *serveProc, w *workload, wantDead int) {
	t := e.t
	t.Helper()
	before := map[int32]int64{}
	ends, err := e.adm.ListEndOffsets(ctx, e.cfg.MembershipsTopic())
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) { before[o.Partition] = o.Offset })
	s.start()
	s.waitReady(2 * time.Minute)
	// Invalid records are dead-lettered once more by the rebuild.
	e.waitCaughtUp(3*time.Minute, wantDead, s)
	evs, err := e.readMemberships(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rebuilt []outEvent
	for _, ev := range evs {
		if ev.Offset >= before[ev.Partition] {
			rebuilt = append(rebuilt, ev)
		}
	}
	h := checkHistory(rebuilt)
	t.Logf("rebuilt history: %s", h)
	if len(h.problems) > 0 {
		t.Errorf("the rebuilt history is not a fresh well-formed one:\n  %s", strings.Join(h.problems, "\n  "))
	}
	if d := diffSets(h.final, w.reference(t), h); d != "" {
		t.Errorf("the rebuilt memberships differ from the reference:\n%s", d)
	}
}
