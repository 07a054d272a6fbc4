package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/state"
)

// runCLI runs the smartgroups command line in-process and returns its stdout.
func runCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

type exported struct {
	Spot   string `json:"spot"`
	Group  string `json:"group"`
	Member string `json:"member"`
	Since  string `json:"since"`
	Seq    uint64 `json:"seq"`
}

func parseExport(t *testing.T, out string) []exported {
	t.Helper()
	var rows []exported
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var r exported
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("export line %q: %v", l, err)
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Group+"/"+rows[i].Member < rows[j].Group+"/"+rows[j].Member })
	return rows
}

func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

func processInput(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// TestExportInspectProcess exports and inspects the state a process run
// left: the memberships are those the run's events leave, with since and
// seq; csv has a header; access lists the linked resource.
func TestExportInspectProcess(t *testing.T) {
	dir := t.TempDir()
	in := processInput(
		`{"topic":"definitions","key":"acme/group/vips","value":{"kind":"group","spot":"acme","id":"vips","type":"smart","name":"VIPs","rule":{"field":"profile.tags","op":"has_any","value":["vip"]},"resources":[{"id":"live-1","type":"live","title":"AMA"}]}}`,
		`{"topic":"profiles","key":"acme/u1","value":{"spot":"acme","member":"u1","ts":"2026-11-01T10:00:00Z","profile":{"status":"accepted","tags":["vip"]}}}`,
		`{"topic":"profiles","key":"acme/u2","value":{"spot":"acme","member":"u2","ts":"2026-11-01T11:00:00Z","profile":{"status":"accepted","tags":["vip"]}}}`,
		`{"topic":"profiles","key":"acme/u3","value":{"spot":"acme","member":"u3","ts":"2026-11-01T12:00:00Z","profile":{"status":"accepted"}}}`,
		`{"topic":"profiles","key":"acme/u2","value":{"spot":"acme","member":"u2","ts":"2026-11-02T10:00:00Z","profile":{"tags":[]}}}`,
		`{"topic":"profiles","key":"acme/u2","value":{"spot":"acme","member":"u2","ts":"2026-11-03T10:00:00Z","profile":{"tags":["vip"]}}}`,
		`{"topic":"profiles","key":"acme/u4","value":{"spot":"acme","member":"u4","ts":"2026-11-01T12:00:00Z","profile":{"status":"accepted","tags":["vip"]}}}`,
		`{"topic":"profiles","key":"acme/u4","value":null}`,
	)
	events, err := runCLI(t, in, "process", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	// The table the events leave: the last event per key.
	last := map[string]exported{}
	for _, l := range strings.Split(strings.TrimSpace(events), "\n") {
		var ev struct {
			exported
			Op string `json:"op"`
			TS string `json:"ts"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatal(err)
		}
		k := ev.Group + "/" + ev.Member
		if ev.Op == "add" {
			last[k] = exported{Spot: ev.Spot, Group: ev.Group, Member: ev.Member, Since: ev.TS, Seq: ev.Seq}
		} else {
			delete(last, k)
		}
	}
	var want []exported
	for _, r := range last {
		want = append(want, r)
	}
	sort.Slice(want, func(i, j int) bool { return want[i].Group+"/"+want[i].Member < want[j].Group+"/"+want[j].Member })

	out, err := runCLI(t, "", "export", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	got := parseExport(t, out)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("export:\n got  %+v\n want %+v", got, want)
	}
	if len(got) != 2 || got[1].Member != "u2" || got[1].Seq != 3 || got[1].Since != "2026-11-03T10:00:00.000Z" {
		t.Fatalf("u2 should be in vips since its third event: %+v", got)
	}

	out, err = runCLI(t, "", "export", "--data-dir", dir, "--format", "csv", "--group", "vips", "--spot", "acme")
	if err != nil {
		t.Fatal(err)
	}
	if want := "spot,group,member,since,seq\nacme,vips,u1,2026-11-01T10:00:00.000Z,1\nacme,vips,u2,2026-11-03T10:00:00.000Z,3\n"; out != want {
		t.Fatalf("csv export:\n%s\nwant\n%s", out, want)
	}
	if out, err = runCLI(t, "", "export", "--data-dir", dir, "--group", "nope"); err != nil || out != "" {
		t.Fatalf("export of an unknown group: %q, %v", out, err)
	}
	out, err = runCLI(t, "", "export", "--data-dir", dir, "--what", "access", "--format", "csv")
	if err != nil {
		t.Fatal(err)
	}
	if want := "spot,resource,member,seq\nacme,live-1,u1,1\nacme,live-1,u2,3\n"; out != want {
		t.Fatalf("access export:\n%s\nwant\n%s", out, want)
	}

	out, err = runCLI(t, "", "inspect", "--data-dir", dir, "member", "acme/u2")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Profile map[string]any `json:"profile"`
		Groups  []exported     `json:"groups"`
		History []struct {
			Op    string          `json:"op"`
			Seq   uint64          `json:"seq"`
			Cause json.RawMessage `json:"cause"`
		} `json:"history"`
		Access []struct {
			Resource string `json:"resource"`
		} `json:"access"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	if m.Profile["status"] != "accepted" || len(m.Groups) != 1 || m.Groups[0].Since != "2026-11-03T10:00:00.000Z" ||
		len(m.History) != 3 || m.History[0].Seq != 3 || len(m.Access) != 1 {
		t.Fatalf("inspect member:\n%s", out)
	}
	// The third profile line of u2 (line 6, offset 5) put it back.
	if compact(m.History[0].Cause) != `{"topic":"profiles","partition":0,"offset":5}` {
		t.Fatalf("cause of u2's last transition: %s", m.History[0].Cause)
	}
	if _, err := runCLI(t, "", "inspect", "--data-dir", dir, "member", "acme/u4"); err == nil || !strings.Contains(err.Error(), "unknown member") {
		t.Fatalf("inspect of an erased member: %v", err)
	}

	out, err = runCLI(t, "", "inspect", "--data-dir", dir, "group", "acme/vips")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		MemberCount   int             `json:"member_count"`
		BlacklistSize int             `json:"blacklist_size"`
		Definition    json.RawMessage `json:"definition"`
	}
	if err := json.Unmarshal([]byte(out), &g); err != nil || g.MemberCount != 2 || g.BlacklistSize != 0 || !bytes.Contains(g.Definition, []byte(`"vips"`)) {
		t.Fatalf("inspect group: %v\n%s", err, out)
	}

	out, err = runCLI(t, "", "inspect", "--data-dir", dir, "stats")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Definitions int `json:"definitions"`
		Partitions  []struct {
			Members        int              `json:"members"`
			HistoryEntries int              `json:"history_entries"`
			Positions      map[string]int64 `json:"positions"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Definitions != 1 || len(st.Partitions) != 1 ||
		st.Partitions[0].Members != 3 || st.Partitions[0].HistoryEntries != 4 || st.Partitions[0].Positions["profiles"] != 8 {
		t.Fatalf("inspect stats: %v\n%s", err, out)
	}
}

// TestHelperHoldState is not a test: run as a child process by
// TestExportRefusesStateInUse, it holds a store open until its stdin
// closes.
func TestHelperHoldState(t *testing.T) {
	dir := os.Getenv("TOOLS_TEST_HOLD_STATE")
	if dir == "" {
		t.Skip("only run as a child process")
	}
	st, err := state.Open(dir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("held")
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = st.Close()
}

// TestExportRefusesStateInUse: while another process has the state open,
// export and inspect refuse it with a message saying so; once it exits,
// they read it.
func TestExportRefusesStateInUse(t *testing.T) {
	dir := t.TempDir()
	if _, err := runCLI(t, processInput(`{"topic":"profiles","key":"acme/u1","value":{"spot":"acme","member":"u1","ts":"2026-11-01T10:00:00Z","profile":{"status":"accepted"}}}`),
		"process", "--data-dir", dir); err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^TestHelperHoldState$", "-test.count=1")
	child.Env = append(os.Environ(), "TOOLS_TEST_HOLD_STATE="+dir)
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "held\n" {
		_ = child.Process.Kill()
		t.Fatalf("child: %q, %v", line, err)
	}
	want := "state directory " + dir + " is in use by a running smartgroups (stop it first, or export through the API)"
	for _, args := range [][]string{{"export", "--data-dir", dir}, {"inspect", "--data-dir", dir, "stats"}} {
		if _, err := runCLI(t, "", args...); err == nil || err.Error() != want {
			t.Errorf("%s while the state is in use: %v, want %q", args[0], err, want)
		}
	}
	_ = stdin.Close()
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if err := child.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if _, err := runCLI(t, "", "export", "--data-dir", dir); err != nil {
		t.Fatalf("export once the state is free: %v", err)
	}
	if _, err := runCLI(t, "", "export", "--data-dir", filepath.Join(dir, "nope")); err == nil || !strings.Contains(err.Error(), "holds no smartgroups state") {
		t.Fatalf("export of a directory without state: %v", err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// TestExportInspectServe runs serve (embedded broker, event clock, two
// partitions, deferred writes), feeds it, stops it gracefully, then
// exports and inspects its data directory: the memberships are exactly
// those fed, with their since and seq, members and history are there.
// While serve runs, export refuses the directory.
func TestExportInspectServe(t *testing.T) {
	dir := t.TempDir()
	broker, httpAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root := newRootCmd()
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"serve", "--data-dir", dir, "--embedded-broker", broker, "--http", httpAddr,
		"--partitions", "2", "--clock", "event", "--log-level", "error"})
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(sctx) }()
	stopped := false
	defer func() {
		if !stopped {
			stop()
			<-done
		}
	}()
	get := func(path string) (int, []byte) {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	waitFor := func(what string, f func() bool) {
		t.Helper()
		for !f() {
			select {
			case err := <-done:
				t.Fatalf("serve stopped waiting for %s: %v", what, err)
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s", what)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	waitFor("readiness", func() bool { s, _ := get("/readyz"); return s == 200 })

	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	send := func(topic, key, value string) {
		r := &kgo.Record{Topic: "smartgroups." + topic, Key: []byte(key)}
		if value != "" {
			r.Value = []byte(value)
		}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	send("definitions", "acme/group/vips", `{"kind":"group","spot":"acme","id":"vips","type":"smart","name":"VIPs","rule":{"field":"profile.tags","op":"has_any","value":["vip"]}}`)
	var want []exported
	for i := range 40 {
		id := fmt.Sprintf("m%02d", i)
		ts := fmt.Sprintf("2026-11-01T10:%02d:00Z", i)
		tags := `[]`
		if i%2 == 0 {
			tags = `["vip"]`
			if i != 0 && i != 2 {
				want = append(want, exported{Spot: "acme", Group: "vips", Member: id, Since: fmt.Sprintf("2026-11-01T10:%02d:00.000Z", i), Seq: 1})
			}
		}
		send("profiles", "acme/"+id, fmt.Sprintf(`{"spot":"acme","member":%q,"ts":%q,"profile":{"status":"accepted","tags":%s}}`, id, ts, tags))
	}
	// m00 is erased; m02 blacklisted (it leaves with seq 2).
	send("profiles", "acme/m00", "")
	// serve reads the definitions topic apart from the member topics: the
	// blacklist entry goes out once m02 has joined, so that it leaves.
	waitFor("m02 to join", func() bool {
		s, b := get("/v1/spots/acme/members/m02/history")
		return s == 200 && bytes.Contains(b, []byte(`"op":"add"`))
	})
	send("definitions", "acme/blacklist/vips/m02", `{"kind":"blacklist","spot":"acme","group":"vips","member":"m02"}`)
	// The count alone can pass through len(want) on the way (before the
	// last members join, or before m02 leaves): wait for the last records'
	// effects too.
	waitFor("the memberships", func() bool {
		s, b := get("/v1/spots/acme/groups/vips")
		var g struct {
			MemberCount int `json:"member_count"`
		}
		if s != 200 || json.Unmarshal(b, &g) != nil || g.MemberCount != len(want) {
			return false
		}
		s, b = get("/v1/spots/acme/members/m02/history")
		if s != 200 || !bytes.Contains(b, []byte(`"reason":"blacklist"`)) {
			return false
		}
		s, b = get("/v1/spots/acme/members/m38/history")
		return s == 200 && bytes.Contains(b, []byte(`"op":"add"`))
	})

	if _, err := runCLI(t, "", "export", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "is in use by a running smartgroups") {
		t.Fatalf("export while serve runs: %v", err)
	}

	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("serve: %v", err)
	}
	stopped = true

	out, err := runCLI(t, "", "export", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	got := parseExport(t, out)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("export after serve stopped:\n got  %+v\n want %+v", got, want)
	}
	out, err = runCLI(t, "", "inspect", "--data-dir", dir, "stats")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Partitions []struct {
			Members  int `json:"members"`
			Snapshot *struct {
				Offset int64 `json:"offset"`
			} `json:"snapshot"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Partitions) != 2 {
		t.Fatalf("inspect stats: %v\n%s", err, out)
	}
	members := 0
	for _, p := range st.Partitions {
		members += p.Members
		if p.Snapshot == nil {
			t.Fatalf("a serve partition without a snapshot tag:\n%s", out)
		}
	}
	if members != 39 {
		t.Fatalf("inspect stats counts %d members, want 39:\n%s", members, out)
	}
	out, err = runCLI(t, "", "inspect", "--data-dir", dir, "member", "acme/m02")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Groups  []exported `json:"groups"`
		History []struct {
			Op     string          `json:"op"`
			Reason string          `json:"reason"`
			Cause  json.RawMessage `json:"cause"`
		} `json:"history"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil || len(m.Groups) != 0 || len(m.History) != 2 ||
		m.History[0].Reason != "blacklist" || compact(m.History[0].Cause) != `{"definition":"vips"}` {
		t.Fatalf("inspect member m02: %v\n%s", err, out)
	}
}
