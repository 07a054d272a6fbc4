package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/state"
)

// numPartitions is the partition count of every topic the tests create
// (serve runs with --partitions 4).
const numPartitions = 4

var (
	// binPath is the smartgroups binary TestMain built.
	binPath string
	// moduleRoot is the directory holding go.mod.
	moduleRoot string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped in -short mode")
		return 0
	}
	root, err := findModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	moduleRoot = root
	dir, err := os.MkdirTemp("", "smartgroups-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	binPath = filepath.Join(dir, "smartgroups")
	args := []string{"build", "-o", binPath}
	if os.Getenv("E2E_RACE") == "1" { // a race-enabled serve: slower, stricter
		args = append(args, "-race")
	}
	args = append(args, "./cmd/smartgroups")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go %s: %v\n%s", strings.Join(args, " "), err, out)
		return 1
	}
	// The tests mostly wait (for brokers, rebalances, subprocesses): run
	// them all at once unless -test.parallel says otherwise.
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "8")
	}
	return m.Run()
}

func findModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside a module")
	}
	return filepath.Dir(gomod), nil
}

func realBrokers() []string {
	v := strings.TrimSpace(os.Getenv("KAFKA_BROKERS"))
	if v == "" {
		return nil
	}
	var out []string
	for _, b := range strings.Split(v, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

var nonNameChars = regexp.MustCompile(`[^a-zA-Z0-9-]+`)

// uniqueName is a short name for t that differs on every run, so that tests
// sharing a real broker never share a topic, group or transactional id.
func uniqueName(t *testing.T) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.ToLower(nonNameChars.ReplaceAllString(strings.TrimPrefix(t.Name(), "Test"), "-"))
	if len(name) > 40 {
		name = name[:40]
	}
	return name + "-" + hex.EncodeToString(b[:])
}

// env is one test's broker, names and clients.
type env struct {
	t        *testing.T
	dir      string
	brokers  []string
	embedded *kafka.Embedded // nil against a real broker
	cfg      kafka.Config    // what the serve processes are configured with
	cl       *kgo.Client     // producer and admin
	adm      *kadm.Client

	mu    sync.Mutex
	procs []*serveProc
}

// newEnv starts (or connects to) the broker and creates the topics of a
// deployment with a unique prefix.
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvOn(t, realBrokers())
}

// newEnvOn is newEnv on the given brokers; nil starts an embedded one.
func newEnvOn(t *testing.T, brokers []string) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	if os.Getenv("E2E_KEEP") == "1" { // keep logs and data dirs for a post-mortem
		dir, err := os.MkdirTemp("", "smartgroups-e2e-"+nonNameChars.ReplaceAllString(t.Name(), "-")+"-")
		if err != nil {
			t.Fatal(err)
		}
		e.dir = dir
		t.Logf("E2E_KEEP=1: logs and data dirs are kept in %s", dir)
	}
	if brokers != nil {
		e.brokers = brokers
	} else {
		emb, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: filepath.Join(e.dir, "broker")})
		if err != nil {
			t.Fatalf("starting the embedded broker: %v", err)
		}
		t.Cleanup(func() { _ = emb.Close() }) // runs last: after every serve process is gone
		e.embedded = emb
		e.brokers = []string{emb.Addr()}
	}
	id := uniqueName(t)
	cfg := kafka.DefaultConfig()
	cfg.Brokers = e.brokers
	cfg.TopicPrefix = "e2e." + id + "."
	cfg.Partitions = numPartitions
	cfg.GroupID = "e2e-" + id
	cfg.TransactionalIDPrefix = "e2e-" + id + "-txn-"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e.cfg = cfg

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(e.brokers...),
		// murmur2 of the key, like the Java client and the engine's
		// PartitionOf: "<spot>/<member>" keys are co-partitioned.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerLinger(5*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	e.cl = cl
	e.adm = kadm.NewClient(cl)
	t.Cleanup(e.cleanup)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, e.adm, cfg); err != nil {
		t.Fatalf("creating topics: %v", err)
	}
	t.Logf("broker %s, topic prefix %s", strings.Join(e.brokers, ","), cfg.TopicPrefix)
	return e
}

func (e *env) cleanup() {
	if e.t.Failed() {
		e.t.Log(e.diagnostics())
	}
	e.mu.Lock()
	procs := append([]*serveProc(nil), e.procs...)
	e.mu.Unlock()
	for _, p := range procs {
		if p.running() && e.t.Failed() {
			// A hang shows in the goroutine stacks: SIGQUIT makes the Go
			// runtime write them to the run's log, and exit.
			p.signal(syscall.SIGQUIT)
			if p.wait(10 * time.Second) {
				e.t.Logf("serve %s: goroutine stacks (SIGQUIT) at the end of %s", p.name, p.logPath())
			}
		}
		if p.running() {
			p.signal(syscall.SIGKILL)
			p.wait(30 * time.Second)
		}
	}
	if e.embedded == nil && e.t.Failed() {
		e.t.Logf("the topics of this test (prefix %s) are left on the broker for inspection", e.cfg.TopicPrefix)
	} else if e.embedded == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if all, err := e.adm.ListTopics(ctx); err == nil {
			var mine []string
			for _, n := range all.Names() {
				if strings.HasPrefix(n, e.cfg.TopicPrefix) {
					mine = append(mine, n)
				}
			}
			if len(mine) > 0 {
				_, _ = e.adm.DeleteTopics(ctx, mine...)
			}
		}
		_, _ = e.adm.DeleteGroups(ctx, e.cfg.GroupID)
	}
	e.cl.Close()
}

// diagnostics describes the serve processes: the tail of their latest log
// and their consumer lag.
func (e *env) diagnostics() string {
	e.mu.Lock()
	procs := append([]*serveProc(nil), e.procs...)
	e.mu.Unlock()
	var b strings.Builder
	for _, p := range procs {
		p.mu.Lock()
		logs := append([]string(nil), p.logs...)
		p.mu.Unlock()
		fmt.Fprintf(&b, "\n===== serve %q (run %d, running %v, data dir %s)\n", p.name, len(logs), p.running(), p.dataDir)
		for i, path := range logs[:max(len(logs)-1, 0)] {
			fmt.Fprintf(&b, "--- end of run %d (%s):\n%s", i+1, path, tail(path, 8))
		}
		if p.running() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			m, err := p.metrics(ctx)
			cancel()
			if err != nil {
				fmt.Fprintf(&b, "metrics: %v\n", err)
			} else {
				fmt.Fprintf(&b, "metrics: %s\n", m.summary())
			}
		}
		fmt.Fprintf(&b, "--- last lines of %s:\n%s", p.logPath(), tail(p.logPath(), 40))
	}
	return b.String()
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error() + "\n"
	}
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

// ctx returns a context bounded by d, canceled when the test ends.
func (e *env) ctx(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	e.t.Cleanup(cancel)
	return ctx
}

// partitionOf is the partition a key hashes to, as the producer, the
// engine and the publisher compute it.
func partitionOf(key string) int32 {
	p := kgo.StickyKeyPartitioner(nil).ForTopic("any")
	return int32(p.Partition(&kgo.Record{Key: []byte(key)}, numPartitions))
}

// ---------------------------------------------------------------- serve

// serveProc is one `smartgroups serve` instance: a data dir that survives
// restarts, and the process of the current run.
type serveProc struct {
	e       *env
	name    string
	dataDir string
	extra   []string // more serve flags

	mu       sync.Mutex
	runs     int
	httpAddr string
	cmd      *exec.Cmd
	done     chan struct{}
	logs     []string
}

// newServe declares an instance (it does not start it), with extra serve
// flags.
func (e *env) newServe(name string, extra ...string) *serveProc {
	p := &serveProc{e: e, name: name, dataDir: filepath.Join(e.dir, "serve-"+name), extra: extra}
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// start starts a new run of the instance on its data dir.
func (p *serveProc) start() {
	t := p.e.t
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !closed(p.done) {
		t.Fatalf("serve %s: already running", p.name)
	}
	p.runs++
	p.httpAddr = freeAddr(t)
	logPath := filepath.Join(p.e.dir, fmt.Sprintf("serve-%s-run%d.log", p.name, p.runs))
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := p.e.cfg
	args := []string{"serve",
		"--brokers", strings.Join(p.e.brokers, ","),
		"--data-dir", p.dataDir,
		"--http", p.httpAddr,
		"--clock", "event",
		"--partitions", strconv.Itoa(numPartitions),
		"--topic-prefix", cfg.TopicPrefix,
		"--group-id", cfg.GroupID,
		"--transactional-id-prefix", cfg.TransactionalIDPrefix,
	}
	cmd := exec.Command(binPath, append(args, p.extra...)...)
	cmd.Dir = p.e.dir
	cmd.Stdout, cmd.Stderr = f, f
	for _, kv := range os.Environ() { // flags only: no stray SMARTGROUPS_* settings
		if !strings.HasPrefix(kv, "SMARTGROUPS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		t.Fatalf("serve %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = f.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
	p.logs = append(p.logs, logPath)
	t.Logf("serve %s run %d: pid %d, http %s", p.name, p.runs, cmd.Process.Pid, p.httpAddr)
}

func closed(c chan struct{}) bool {
	if c == nil {
		return true
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (p *serveProc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !closed(p.done)
}

func (p *serveProc) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(sig)
	}
}

// wait waits up to d for the current run to exit; it reports whether it did.
func (p *serveProc) wait(d time.Duration) bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// kill SIGKILLs the current run and waits for it to be gone.
func (p *serveProc) kill() {
	t := p.e.t
	t.Helper()
	p.signal(syscall.SIGKILL)
	if !p.wait(30 * time.Second) {
		t.Fatalf("serve %s: still running 30s after SIGKILL", p.name)
	}
	t.Logf("serve %s run %d: killed with SIGKILL", p.name, p.runs)
}

// terminate sends SIGTERM and waits up to d; it returns the exit code, or
// fails the test when the process did not exit in time.
func (p *serveProc) terminate(d time.Duration) int {
	t := p.e.t
	t.Helper()
	p.signal(syscall.SIGTERM)
	if !p.wait(d) {
		t.Fatalf("serve %s: still running %v after SIGTERM", p.name, d)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.ProcessState.ExitCode()
}

func (p *serveProc) addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.httpAddr
}

func (p *serveProc) logPath() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.logs) == 0 {
		return "(never started)"
	}
	return p.logs[len(p.logs)-1]
}

// runLog returns the log of run n (1-based) so far.
func (p *serveProc) runLog(n int) string {
	p.mu.Lock()
	path := ""
	if n >= 1 && n <= len(p.logs) {
		path = p.logs[n-1]
	}
	p.mu.Unlock()
	data, _ := os.ReadFile(path)
	return string(data)
}

func (p *serveProc) runCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runs
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// snapshotLag inspects the store of a stopped instance: per partition, how
// many changelog offsets its persisted snapshot is behind the end of the
// changelog (transaction markers included: 1 when the snapshot is
// current), for partitions that have a snapshot. A kill that left a partition behind makes the next run replay
// that tail; an absent partition is restored from scratch.
func (p *serveProc) snapshotLag(ctx context.Context) map[int32]int64 {
	t := p.e.t
	t.Helper()
	if p.running() {
		t.Fatalf("serve %s: inspecting the store of a running instance", p.name)
	}
	src := filepath.Join(p.dataDir, "state")
	if _, err := os.Stat(src); err != nil {
		return nil // killed before it created its store
	}
	// Open a copy: opening the store itself would recover it from its WAL
	// and close it cleanly, and the next run would not restart from the
	// state the kill left.
	dir, err := os.MkdirTemp(p.e.dir, "store-copy-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	if err := os.CopyFS(filepath.Join(dir, "state"), os.DirFS(src)); err != nil {
		t.Fatalf("serve %s: copying its store: %v", p.name, err)
	}
	st, err := state.Open(filepath.Join(dir, "state"), state.Options{})
	if err != nil {
		t.Fatalf("serve %s: opening its store: %v", p.name, err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Errorf("serve %s: closing its store: %v", p.name, err)
		}
	}()
	ends, err := p.e.adm.ListEndOffsets(ctx, p.e.cfg.ChangelogTopic())
	if err != nil {
		t.Fatalf("end offsets of the changelog: %v", err)
	}
	lag := map[int32]int64{}
	for part := int32(0); part < numPartitions; part++ {
		v, ok, err := st.Get(state.SnapshotKey(part))
		if err != nil {
			t.Fatalf("serve %s: reading its snapshot tag: %v", p.name, err)
		}
		if !ok {
			continue
		}
		off, _, valid := state.DecodeSnapshotTag(v)
		if !valid {
			t.Fatalf("serve %s: partition %d has a malformed snapshot tag", p.name, part)
		}
		end, _ := ends.Lookup(p.e.cfg.ChangelogTopic(), part)
		lag[part] = end.Offset - 1 - off
	}
	return lag
}

// waitReady waits until /readyz answers 200, failing when the process exits
// or d passes.
func (p *serveProc) waitReady(d time.Duration) {
	t := p.e.t
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if !p.running() {
			t.Fatalf("serve %s exited before it was ready; log:\n%s", p.name, tail(p.logPath(), 40))
		}
		resp, err := httpClient.Get("http://" + p.addr() + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve %s not ready after %v (last: %v)", p.name, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metricSet is a scrape of /metrics: "name{labels}" -> value.
type metricSet map[string]float64

func (p *serveProc) metrics(ctx context.Context) (metricSet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr()+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	m := metricSet{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// sum adds the values of every series of a metric name.
func (m metricSet) sum(name string) float64 {
	total := 0.0
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			total += v
		}
	}
	return total
}

// series returns the series of a metric name, sorted.
func (m metricSet) series(name string) []string {
	var out []string
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			out = append(out, fmt.Sprintf("%s %g", k, v))
		}
	}
	sort.Strings(out)
	return out
}

func (m metricSet) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lag total %g; ", m.sum("smartgroups_consumer_lag_records"))
	for _, s := range m.series("smartgroups_consumer_lag_records") {
		if !strings.HasSuffix(s, " 0") {
			fmt.Fprintf(&b, "%s; ", s)
		}
	}
	fmt.Fprintf(&b, "records consumed %g, dead letters %g, transactions %v, restores running %g, timers %g",
		m.sum("smartgroups_records_consumed_total"), m.sum("smartgroups_dead_letters_total"),
		m.series("smartgroups_transactions_total"), m.sum("smartgroups_restores_running"),
		m.sum("smartgroups_timer_queue_depth"))
	return b.String()
}

// ---------------------------------------------------------------- logs

var partitionListRE = regexp.MustCompile(`partitions="?\[([0-9 ]*)\]"?`)

// ownedPartitions replays a run's "partitions assigned" / "partitions
// revoked" log lines and returns the partitions the run owns.
func ownedPartitions(log string) map[int32]bool {
	owned := map[int32]bool{}
	for _, line := range strings.Split(log, "\n") {
		assigned := strings.Contains(line, `msg="partitions assigned"`)
		revoked := strings.Contains(line, `msg="partitions revoked"`)
		if !assigned && !revoked {
			continue
		}
		m := partitionListRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, f := range strings.Fields(m[1]) {
			n, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			if assigned {
				owned[int32(n)] = true
			} else {
				delete(owned, int32(n))
			}
		}
	}
	return owned
}

func (p *serveProc) owned() map[int32]bool { return ownedPartitions(p.runLog(p.runCount())) }

// waitFor polls cond every 250ms until it returns true, failing with what
// describe says and the diagnostics after d.
func (e *env) waitFor(d time.Duration, what string, cond func() (bool, string)) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %v waiting for %s; last state: %s", d, what, state)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// ---------------------------------------------------------------- produce

// wrec is one input record of a workload.
type wrec struct {
	Kind    engine.Kind
	Key     string
	Value   []byte
	Invalid bool // the engine must dead-letter it
}

func (e *env) kgoRecords(recs []wrec) []*kgo.Record {
	out := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		out[i] = &kgo.Record{Topic: e.cfg.Topic(r.Kind), Key: []byte(r.Key), Value: r.Value}
	}
	return out
}

// produce writes recs and returns once they are all acknowledged.
func (e *env) produce(ctx context.Context, recs []wrec) error {
	if len(recs) == 0 {
		return nil
	}
	return e.cl.ProduceSync(ctx, e.kgoRecords(recs)...).FirstErr()
}

// producer writes records in the background at a steady pace.
type producer struct {
	done   chan struct{}
	err    error
	mu     sync.Mutex
	sent   int
	chunks int
}

// producePaced writes recs in chunks spread over about d, in order.
func (e *env) producePaced(ctx context.Context, recs []wrec, d time.Duration, chunk int) *producer {
	pr := &producer{done: make(chan struct{})}
	n := (len(recs) + chunk - 1) / chunk
	interval := d / time.Duration(max(n, 1))
	go func() {
		defer close(pr.done)
		next := time.Now()
		for i := 0; i < len(recs); i += chunk {
			part := recs[i:min(i+chunk, len(recs))]
			if err := e.produce(ctx, part); err != nil {
				pr.err = fmt.Errorf("producing records %d..%d: %w", i, i+len(part), err)
				return
			}
			pr.mu.Lock()
			pr.sent += len(part)
			pr.chunks++
			pr.mu.Unlock()
			next = next.Add(interval)
			select {
			case <-ctx.Done():
				pr.err = ctx.Err()
				return
			case <-time.After(time.Until(next)):
			}
		}
	}()
	return pr
}

func (pr *producer) progress() int {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.sent
}

func (pr *producer) finished() bool { return closed(pr.done) }

// nextChunk waits (up to d) until the producer acknowledged another chunk:
// serve is busy with it right after.
func (pr *producer) nextChunk(d time.Duration) {
	pr.mu.Lock()
	n := pr.chunks
	pr.mu.Unlock()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && !pr.finished() {
		pr.mu.Lock()
		more := pr.chunks > n
		pr.mu.Unlock()
		if more {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// wait waits for the producer to finish and fails the test on its error.
func (pr *producer) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-pr.done:
	case <-time.After(d):
		t.Fatalf("producer not done after %v (%d records sent)", d, pr.progress())
	}
	if pr.err != nil {
		t.Fatal(pr.err)
	}
}

// ---------------------------------------------------------------- read

// readTopic reads every partition of topic from its start to the high
// watermark as of the call, read_committed (committed is false: every data
// record, aborted or not), and returns the data records in offset order per
// partition. With controls, transaction markers are returned too.
func (e *env) readTopic(ctx context.Context, topic string, committed, controls bool) ([]*kgo.Record, error) {
	ends, err := e.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	starts, err := e.adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("start offsets of %s: %w", topic, err)
	}
	target := map[int32]int64{}
	next := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	var lerr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			lerr = o.Err
			return
		}
		so, _ := starts.Lookup(topic, o.Partition)
		target[o.Partition] = o.Offset
		next[o.Partition] = so.Offset
		offsets[o.Partition] = kgo.NewOffset().AtStart()
	})
	if lerr != nil {
		return nil, fmt.Errorf("offsets of %s: %w", topic, lerr)
	}
	behind := func() bool {
		for p, end := range target {
			if next[p] < end {
				return true
			}
		}
		return false
	}
	if !behind() {
		return nil, nil
	}
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(e.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchIsolationLevel(iso),
		kgo.KeepControlRecords(), // they mark how far the read got
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []*kgo.Record
	for behind() {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading %s: %w (at %v, target %v; %s)", topic, err, next, target, e.offsetsInfo(topic))
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("fetching %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			// Read committed, the records of an aborted transaction are
			// never returned, so the end of the read may fall inside one
			// (it was open when the end was listed): any later record,
			// its abort marker at least, shows the read got past it.
			next[r.Partition] = max(next[r.Partition], r.Offset+1)
			if r.Offset >= target[r.Partition] {
				return
			}
			if controls || !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
	return out, nil
}

// offsetsInfo describes a topic's start, last stable and end offsets, for
// diagnostics: a last stable offset below the end is an open transaction.
func (e *env) offsetsInfo(topic string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hw, err := e.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return err.Error()
	}
	lso, err := e.adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return err.Error()
	}
	var parts []string
	hw.Each(func(o kadm.ListedOffset) {
		c, _ := lso.Lookup(topic, o.Partition)
		parts = append(parts, fmt.Sprintf("%d: stable %d end %d", o.Partition, c.Offset, o.Offset))
	})
	sort.Strings(parts)
	return topic + " offsets " + strings.Join(parts, ", ")
}

// ---------------------------------------------------------------- check

// outEvent is a membership event as read from the memberships topic.
type outEvent struct {
	engine.Event
	Key       string
	Partition int32
	Offset    int64
}

func (e *env) readMemberships(ctx context.Context) ([]outEvent, error) {
	recs, err := e.readTopic(ctx, e.cfg.MembershipsTopic(), true, false)
	if err != nil {
		return nil, err
	}
	out := make([]outEvent, 0, len(recs))
	for _, r := range recs {
		var ev engine.Event
		if err := decodeStrict(r.Value, &ev); err != nil {
			return nil, fmt.Errorf("memberships %d@%d: %w: %s", r.Partition, r.Offset, err, r.Value)
		}
		out = append(out, outEvent{Event: ev, Key: string(r.Key), Partition: r.Partition, Offset: r.Offset})
	}
	return out, nil
}

// history is what the memberships topic says, checked.
type history struct {
	events   int
	keys     int
	adds     int
	removes  int
	final    map[string]bool // keys whose last op is add
	perKey   map[string][]outEvent
	problems []string
}

// checkHistory verifies the per-key guarantees of SPEC §4.2 over events in
// offset order per partition and computes the final memberships.
func checkHistory(events []outEvent) *history {
	h := &history{events: len(events), final: map[string]bool{}, perKey: map[string][]outEvent{}}
	bad := func(format string, args ...any) {
		if len(h.problems) < 50 {
			h.problems = append(h.problems, fmt.Sprintf(format, args...))
		}
	}
	for _, ev := range events {
		k := ev.Event.Key()
		if ev.Key != k {
			bad("record key %q at %d@%d holds the event of %q", ev.Key, ev.Partition, ev.Offset, k)
		}
		if want := partitionOf(k); ev.Partition != want {
			bad("key %q at partition %d, want %d (murmur2)", k, ev.Partition, want)
		}
		if ev.Reason == "" || ev.TS == "" {
			bad("key %q seq %d at %d@%d: empty reason or ts", k, ev.Seq, ev.Partition, ev.Offset)
		}
		prev := h.perKey[k]
		wantSeq, wantOp := uint64(1), engine.OpAdd
		if n := len(prev); n > 0 {
			wantSeq = prev[n-1].Seq + 1
			if prev[n-1].Op == engine.OpAdd {
				wantOp = engine.OpRemove
			}
		}
		switch {
		case ev.Seq < wantSeq:
			bad("duplicate: key %q seq %d (%s) at %d@%d after seq %d", k, ev.Seq, ev.Op, ev.Partition, ev.Offset, wantSeq-1)
		case ev.Seq > wantSeq:
			bad("missing transition: key %q seq %d (%s) at %d@%d, want seq %d", k, ev.Seq, ev.Op, ev.Partition, ev.Offset, wantSeq)
		case ev.Op != wantOp:
			bad("ops out of order: key %q seq %d is %s, want %s", k, ev.Seq, ev.Op, wantOp)
		}
		h.perKey[k] = append(prev, ev)
		if ev.Op == engine.OpAdd {
			h.adds++
			h.final[k] = true
		} else {
			h.removes++
			delete(h.final, k)
		}
	}
	h.keys = len(h.perKey)
	return h
}

func (h *history) String() string {
	return fmt.Sprintf("%d events (%d adds, %d removes) over %d keys, %d final memberships", h.events, h.adds, h.removes, h.keys, len(h.final))
}

// diffSets describes how got differs from want (at most 20 keys each way),
// with the history of each differing key.
func diffSets(got, want map[string]bool, h *history) string {
	var missing, extra []string
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return ""
	}
	sort.Strings(missing)
	sort.Strings(extra)
	var b strings.Builder
	describe := func(title string, keys []string) {
		fmt.Fprintf(&b, "%s: %d\n", title, len(keys))
		for i, k := range keys {
			if i == 20 {
				fmt.Fprintf(&b, "  ...\n")
				break
			}
			fmt.Fprintf(&b, "  %s:", k)
			if h != nil {
				for _, ev := range h.perKey[k] {
					fmt.Fprintf(&b, " %d:%s/%s@%s", ev.Seq, ev.Op, ev.Reason, ev.TS)
				}
			}
			b.WriteString("\n")
		}
	}
	describe("expected but not in the output (missing)", missing)
	describe("in the output but not expected (extra)", extra)
	return b.String()
}

// deadLetters reads the dead-letter topic read_committed and checks that
// no input record was dead-lettered twice. It returns the count.
func (e *env) deadLetters(ctx context.Context) (int, []string, error) {
	recs, err := e.readTopic(ctx, e.cfg.DeadLetterTopic(), true, false)
	if err != nil {
		return 0, nil, err
	}
	seen := map[string]bool{}
	var problems []string
	for _, r := range recs {
		var d engine.DeadLetter
		if err := decodeStrict(r.Value, &d); err != nil {
			return 0, nil, fmt.Errorf("dead letter %d@%d: %w", r.Partition, r.Offset, err)
		}
		id := fmt.Sprintf("%s/%d@%d", d.Topic, d.Partition, d.Offset)
		if seen[id] {
			problems = append(problems, "input record "+id+" dead-lettered twice")
		}
		seen[id] = true
	}
	return len(recs), problems, nil
}

// abortedTransactions counts the aborted transactions on the output topics
// (memberships, dead letters, changelog, progress): each is a publish that
// was interrupted (by a kill, say) and aborted when the next owner of the
// partition fenced its producer; the outbox entry was then published again.
func (e *env) abortedTransactions(ctx context.Context) (int, error) {
	type txn struct {
		pid   int64
		epoch int16
	}
	aborted := map[txn]bool{}
	for _, topic := range []string{e.cfg.MembershipsTopic(), e.cfg.DeadLetterTopic(), e.cfg.ChangelogTopic(), e.cfg.ProgressTopic()} {
		recs, err := e.readTopic(ctx, topic, false, true)
		if err != nil {
			return 0, err
		}
		for _, r := range recs {
			// A control record key is version (int16) and type
			// (int16): 0 abort, 1 commit.
			if r.Attrs.IsControl() && len(r.Key) >= 4 && r.Key[2] == 0 && r.Key[3] == 0 {
				aborted[txn{r.ProducerID, r.ProducerEpoch}] = true
			}
		}
	}
	return len(aborted), nil
}

func decodeStrict(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return err
	}
	return nil
}

// ---------------------------------------------------------------- catch up

// waitCaughtUp waits until the instances processed every input record and
// published the output: the dead-letter topic holds wantDead dead letters
// (the last record of every input partition is invalid, see package doc),
// every running instance reports zero consumer lag, no transaction is open
// on the memberships topic and its end has not moved for a few polls.
func (e *env) waitCaughtUp(d time.Duration, wantDead int, procs ...*serveProc) {
	e.t.Helper()
	ctx := e.ctx(d + 30*time.Second)
	var lastEnds string
	stable := 0
	e.waitFor(d, "serve to catch up", func() (bool, string) {
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		n, dups, err := e.deadLetters(rctx)
		if err != nil {
			return false, err.Error()
		}
		if n < wantDead {
			stable = 0
			return false, fmt.Sprintf("%d of %d dead letters published", n, wantDead)
		}
		if n > wantDead {
			e.t.Fatalf("%d dead letters published, want %d: %v", n, wantDead, dups)
		}
		for _, p := range procs {
			if !p.running() {
				return false, fmt.Sprintf("serve %s is not running", p.name)
			}
			m, err := p.metrics(ctx)
			if err != nil {
				return false, fmt.Sprintf("serve %s metrics: %v", p.name, err)
			}
			if lag := m.sum("smartgroups_consumer_lag_records"); lag != 0 {
				stable = 0
				return false, fmt.Sprintf("serve %s: %s", p.name, m.summary())
			}
		}
		topic := e.cfg.MembershipsTopic()
		hw, err := e.adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		lso, err := e.adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		var ends []string
		open := false
		hw.Each(func(o kadm.ListedOffset) {
			ends = append(ends, fmt.Sprintf("%d:%d", o.Partition, o.Offset))
			if c, ok := lso.Lookup(topic, o.Partition); !ok || c.Offset != o.Offset {
				open = true
			}
		})
		sort.Strings(ends)
		cur := strings.Join(ends, ",")
		if open || cur != lastEnds {
			lastEnds, stable = cur, 0
			return false, fmt.Sprintf("memberships ends %s still moving (open transaction: %v)", cur, open)
		}
		stable++
		return stable >= 6, fmt.Sprintf("memberships ends %s stable for %d polls", cur, stable)
	})
}

// verify reads the output and checks it against the expected memberships:
// per-key well-formedness, exact final set, exactly-once dead letters.
func (e *env) verify(want map[string]bool, wantDead int) *history {
	e.t.Helper()
	ctx := e.ctx(2 * time.Minute)
	events, err := e.readMemberships(ctx)
	if err != nil {
		e.t.Fatalf("reading memberships: %v", err)
	}
	h := checkHistory(events)
	e.t.Logf("memberships topic: %s; expected %d memberships", h, len(want))
	if len(h.problems) > 0 {
		e.t.Errorf("memberships topic breaks the per-key guarantees (%d problems, first ones):\n  %s",
			len(h.problems), strings.Join(h.problems, "\n  "))
	}
	if d := diffSets(h.final, want, h); d != "" {
		e.t.Errorf("final memberships differ from the reference:\n%s", d)
	}
	n, problems, err := e.deadLetters(ctx)
	if err != nil {
		e.t.Fatalf("reading dead letters: %v", err)
	}
	if n != wantDead || len(problems) > 0 {
		e.t.Errorf("dead letters: %d, want %d; %v", n, wantDead, problems)
	}
	return h
}

// seed returns the seed of a test's randomness: E2E_SEED when set (to
// replay a failure), else def. It is logged.
func seed(t *testing.T, def uint64) uint64 {
	t.Helper()
	s := def
	if v := os.Getenv("E2E_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("E2E_SEED=%q: %v", v, err)
		}
		s = n
	}
	t.Logf("seed %d (set E2E_SEED to change it)", s)
	return s
}

func fmtSet(s map[int32]bool) string {
	ps := make([]int, 0, len(s))
	for p := range s {
		ps = append(ps, int(p))
	}
	sort.Ints(ps)
	return fmt.Sprint(ps)
}
