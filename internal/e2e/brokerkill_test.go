package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestBrokerKill9 kills the Apache Kafka broker itself with SIGKILL, twice,
// while serve runs and input flows, restarts it on the same data dir each
// time, then lets serve catch up and checks that the memberships and
// access topics, read read_committed, hold every transition exactly once
// (per key, seq +1 from 1) and end with the reference's memberships and
// access, and that every invalid record was dead-lettered exactly once.
//
// The broker is the test's own: scripts/kafka/start.sh on two free ports
// below the ephemeral range (nothing else grabs them while the broker is
// down) with a data dir and PID file in the test's directory, so it never
// touches the broker of KAFKA_BROKERS. The kill is a SIGKILL of its java
// process (from the PID file); the restart is start.sh again with
// KAFKA_KEEP_DATA=1, which recovers the killed broker's logs. It runs when
// KAFKA_BROKERS is set (the real-Kafka phase of .ci/run, which installed
// Kafka) or E2E_OWN_KAFKA=1, and Apache Kafka is installed in
// $KAFKA_HOME/lib (scripts/kafka/install.sh); otherwise it skips and says
// why.
//
// The two outages:
//
//   - short: the broker is restarted as soon as serve noticed the outage
//     (/readyz answers 503);
//   - long: the broker stays down for the transaction timeout (30s) and a
//     bit more, so the output transactions open at the kill time out: the
//     restarted broker aborts them and serve must publish them again.
//
// The outages come once a third and two thirds of the input were
// produced, each kill a random moment (0-30ms) after the producer's next
// chunk, while serve processes it. serve is not restarted: it waits the
// outages out (README, "Kafka is unreachable"), and the test fails if it
// exits.
func TestBrokerKill9(t *testing.T) {
	if why := ownKafkaUnavailable(); why != "" {
		t.Skip(why)
	}
	t.Parallel()
	k := startOwnKafka(t)
	e := newEnvOn(t, []string{k.addr()})
	sd := seed(t, 31)
	rnd := rand.New(rand.NewPCG(sd, 77))
	w := newWorkload(defaultWorkloadConfig(sd))
	ctx := e.ctx(15 * time.Minute)
	if err := e.produce(ctx, w.defs); err != nil {
		t.Fatal(err)
	}
	var recs []wrec
	recs = append(recs, w.initial()...)
	recs = append(recs, w.batch(3000)...)

	s := e.newServe("a", "--batch-size", "100")
	s.start()
	s.waitReady(time.Minute)
	pr := e.producePaced(ctx, recs, 100*time.Second, 20)

	outages := []struct {
		name string
		hold time.Duration // down at least this long after the kill
	}{
		{"short", 0},
		{"long", 35 * time.Second},
	}
	for i, o := range outages {
		// Spread over the input: outage i comes once (i+1)/3 of it was
		// produced, while serve is busy (it owns every partition and
		// commits output).
		e.waitFor(4*time.Minute, "the producer to progress", func() (bool, string) {
			if pr.finished() {
				pr.wait(t, time.Minute) // fails on its error
				return true, "finished"
			}
			return pr.progress() >= (i+1)*len(recs)/(len(outages)+1), fmt.Sprintf("%d of %d records produced", pr.progress(), len(recs))
		})
		before := commits(ctx, s)
		e.waitFor(3*time.Minute, "serve to process input", func() (bool, string) {
			if !s.running() {
				t.Fatalf("serve exited; log:\n%s", tail(s.logPath(), 40))
			}
			c := commits(ctx, s)
			return len(s.owned()) == numPartitions && c > before, fmt.Sprintf("owns %s, %g committed transactions", fmtSet(s.owned()), c)
		})
		pr.nextChunk(5 * time.Second)
		time.Sleep(time.Duration(rnd.Int64N(int64(30 * time.Millisecond))))
		if pr.finished() {
			t.Logf("note: outage %d came after the producer finished", i+1)
		}
		killed := time.Now()
		k.kill()
		t.Logf("outage %d/%d (%s): broker killed; %d of %d records produced, %g transactions committed",
			i+1, len(outages), o.name, pr.progress(), len(recs), commits(ctx, s))
		e.waitFor(time.Minute, "serve to notice the outage (/readyz 503)", func() (bool, string) {
			if !s.running() {
				t.Fatalf("serve exited in the outage; log:\n%s", tail(s.logPath(), 40))
			}
			st := s.readyzStatus()
			return st == 503, fmt.Sprintf("/readyz %d", st)
		})
		time.Sleep(time.Until(killed.Add(o.hold)))
		k.start()
		s.waitReady(3 * time.Minute)
		t.Logf("outage %d/%d (%s): serve ready again %v after the kill", i+1, len(outages), o.name, time.Since(killed).Round(time.Millisecond))
	}
	pr.wait(t, 5*time.Minute)
	e.waitForOutput(6*time.Minute, w.deadLetters())
	e.waitCaughtUp(2*time.Minute, w.deadLetters(), s)
	if n := s.runCount(); n != 1 {
		t.Errorf("serve was started %d times, want 1: it must wait broker outages out", n)
	}
	e.verify(w.reference(t), w.deadLetters())
	e.verifyAccess(w.referenceAccess(t))

	aborted, err := e.abortedTransactions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	log := s.runLog(1)
	t.Logf("%d output transactions aborted; serve logged %d outages, %d publications retried after one",
		aborted, strings.Count(log, `msg="Kafka is unreachable`), strings.Count(log, `msg="publishing again after the Kafka outage"`))
}

// waitForOutput waits up to d until the dead-letter topic holds wantDead
// committed dead letters (serve processed every input record, see the
// package doc), checking meanwhile that the broker did not leave a hanging
// transaction behind: one that its coordinator completed (or forgot) but
// whose commit or abort marker never reached a partition. Apache Kafka 4
// can do that when a single combined broker restarts after SIGKILL (its
// transaction coordinator starts completing the transactions it finds
// prepared before the restarted controller settles the partitions'
// leadership, finds no leader for them, skips their markers as if the
// topics were deleted, and records the transaction complete). Every
// read_committed consumer of such a partition, serve included, then stops
// at it until an operator completes the transaction, so the exactly-once
// check cannot run: the test skips and says so, or fails with
// E2E_KNOWN_BUGS=1.
func (e *env) waitForOutput(d time.Duration, wantDead int) {
	t := e.t
	t.Helper()
	ctx := e.ctx(d + time.Minute)
	var prev map[openTxn]bool
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, _, err := e.deadLetters(rctx) // fails while a transaction holds a partition back
		cancel()
		if err == nil && n >= wantDead {
			return
		}
		hanging, open, err := e.hangingTransactions(ctx, prev)
		if err != nil {
			t.Logf("checking for hanging transactions: %v", err)
		}
		if len(hanging) > 0 {
			msg := fmt.Sprintf("the restarted broker left %d hanging transactions, read_committed consumers of their partitions are stuck:\n  %s\n"+
				"Apache Kafka's fault, not serve's (see waitForOutput); complete them with kafka-transactions.sh to unblock consumers",
				len(hanging), strings.Join(hanging, "\n  "))
			if os.Getenv("E2E_KNOWN_BUGS") == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg + " (E2E_KNOWN_BUGS=1 makes this a failure)")
		}
		prev = open
		time.Sleep(10 * time.Second)
	}
}

// ownKafkaUnavailable says why TestBrokerKill9 cannot start its own broker,
// or "" when it can.
func ownKafkaUnavailable() string {
	if os.Getenv("KAFKA_BROKERS") == "" && os.Getenv("E2E_OWN_KAFKA") != "1" {
		return "needs an Apache Kafka broker of its own: runs when KAFKA_BROKERS is set or E2E_OWN_KAFKA=1 (with scripts/kafka/install.sh done)"
	}
	lib := filepath.Join(kafkaHome(), "lib")
	if _, err := os.Stat(filepath.Join(lib, ".installed")); err != nil {
		return "Apache Kafka is not installed in " + lib + ": run scripts/kafka/install.sh"
	}
	if _, err := exec.LookPath("java"); err != nil {
		return "no java on PATH to run Apache Kafka: run scripts/kafka/install.sh"
	}
	return ""
}

// kafkaHome is the install root of scripts/kafka.
func kafkaHome() string {
	if h := os.Getenv("KAFKA_HOME"); h != "" {
		return h
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "smartgroups", "kafka")
}

// ownKafka is a broker a test started with scripts/kafka and controls.
type ownKafka struct {
	t       *testing.T
	port    int // client port; the controller's is port+1
	dataDir string
	pidFile string
}

// startOwnKafka starts a broker on free ports with a data dir in the
// test's temporary directory; it is stopped when the test ends, after the
// test's other cleanups (serve processes, clients).
func startOwnKafka(t *testing.T) *ownKafka {
	t.Helper()
	dir := t.TempDir()
	if os.Getenv("E2E_KEEP") == "1" {
		d, err := os.MkdirTemp("", "smartgroups-e2e-kafka-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
		t.Logf("E2E_KEEP=1: the broker's data dir and log are kept in %s", dir)
	}
	k := &ownKafka{t: t, port: freePortPair(t), dataDir: filepath.Join(dir, "data"), pidFile: filepath.Join(dir, "kafka.pid")}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- last lines of the broker log %s:\n%s", k.logPath(), tail(k.logPath(), 30))
		}
		if out, err := k.script("stop.sh"); err != nil {
			t.Errorf("stopping the broker: %v\n%s", err, out)
		}
	})
	k.start()
	return k
}

func (k *ownKafka) addr() string { return "127.0.0.1:" + strconv.Itoa(k.port) }

func (k *ownKafka) logPath() string { return filepath.Join(k.dataDir, "kafka.log") }

// script runs one of scripts/kafka with this broker's settings and
// returns its stdout, or its stderr with the error.
func (k *ownKafka) script(name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(moduleRoot, "scripts", "kafka", name))
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "KAFKA_BROKERS", "KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "KAFKA_DATA_DIR", "KAFKA_PID_FILE", "KAFKA_KEEP_DATA", "KAFKA_CLUSTER_ID", "KAFKA_EXTRA_CONFIG":
		default:
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env,
		"KAFKA_PORT="+strconv.Itoa(k.port),
		"KAFKA_CONTROLLER_PORT="+strconv.Itoa(k.port+1),
		"KAFKA_DATA_DIR="+k.dataDir,
		"KAFKA_PID_FILE="+k.pidFile,
		"KAFKA_KEEP_DATA=1",
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return stderr.String(), fmt.Errorf("scripts/kafka/%s: %w", name, err)
	}
	return string(out), nil
}

// start starts the broker, or restarts it on its data dir, and waits
// until it answers.
func (k *ownKafka) start() {
	k.t.Helper()
	begin := time.Now()
	out, err := k.script("start.sh")
	if err != nil {
		k.t.Fatalf("starting the broker: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(out), "KAFKA_BROKERS="+k.addr(); got != want {
		k.t.Fatalf("scripts/kafka/start.sh printed %q, want %q", got, want)
	}
	k.t.Logf("broker %s (data dir %s) answers, %v after the start", k.addr(), k.dataDir, time.Since(begin).Round(time.Millisecond))
}

// kill sends SIGKILL to the broker's java process and waits until it is
// gone (or a zombie: the broker is not the test's child, and whoever
// adopted it may not reap it; its ports are free either way).
func (k *ownKafka) kill() {
	k.t.Helper()
	data, err := os.ReadFile(k.pidFile)
	if err != nil {
		k.t.Fatalf("the broker's PID file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		k.t.Fatalf("the broker's PID file %s: %v", k.pidFile, err)
	}
	// The PID names the JVM running this broker's config, nothing else.
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if !bytes.Contains(cmdline, []byte("kafka.Kafka")) || !bytes.Contains(cmdline, []byte(k.dataDir)) {
		k.t.Fatalf("PID %d is not this test's broker (command line %q)", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		k.t.Fatalf("killing the broker (pid %d): %v", pid, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			k.t.Fatalf("the broker (pid %d) still runs 30s after SIGKILL", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	k.t.Logf("broker %s (pid %d) killed with SIGKILL", k.addr(), pid)
}

// processAlive reports whether pid runs (exists and is not a zombie).
func processAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) state ...": the state follows the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// freePortPair returns a port p such that p and p+1 are free on 127.0.0.1,
// chosen below Linux's ephemeral range (32768 and up) so that no outgoing
// connection takes either while the broker is down.
func freePortPair(t *testing.T) int {
	t.Helper()
	for range 200 {
		p := 20000 + rand.IntN(12000)
		l1, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
		_ = l1.Close()
		if err != nil {
			continue
		}
		_ = l2.Close()
		return p
	}
	t.Fatal("no two free consecutive ports in 20000-32000")
	return 0
}

// openTxn is a transaction open on one partition, as its leader sees it.
type openTxn struct {
	topic     string
	partition int32
	producer  int64
	epoch     int16
	start     int64 // offset of its first record
}

func (o openTxn) String() string {
	return fmt.Sprintf("%s/%d from offset %d (producer id %d, epoch %d)", o.topic, o.partition, o.start, o.producer, o.epoch)
}

// hangingTransactions lists the transactions open on the output topics'
// partitions (open) and, among those that were open at the previous call
// too (prev), the ones their transaction coordinator does not count as
// open on that partition any more: hanging transactions, which hold back
// the last stable offset, so every read_committed consumer of the
// partition, for good.
func (e *env) hangingTransactions(ctx context.Context, prev map[openTxn]bool) (hanging []string, open map[openTxn]bool, err error) {
	topics := kadm.TopicsSet{}
	for _, t := range []string{e.cfg.MembershipsTopic(), e.cfg.AccessTopic(), e.cfg.DeadLetterTopic(), e.cfg.ChangelogTopic(), e.cfg.ProgressTopic()} {
		for p := int32(0); p < numPartitions; p++ {
			topics.Add(t, p)
		}
	}
	producers, err := e.adm.DescribeProducers(ctx, topics)
	if err != nil {
		return nil, nil, fmt.Errorf("describing producers: %w", err)
	}
	open = map[openTxn]bool{}
	producers.EachProducer(func(d kadm.DescribedProducer) {
		if d.CurrentTxnStartOffset >= 0 {
			open[openTxn{d.Topic, d.Partition, d.ProducerID, d.ProducerEpoch, d.CurrentTxnStartOffset}] = true
		}
	})
	listed, err := e.adm.ListTransactions(ctx, nil, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("listing transactions: %w", err)
	}
	described, err := e.adm.DescribeTransactions(ctx, listed.TransactionalIDs()...)
	if err != nil {
		return nil, nil, fmt.Errorf("describing transactions: %w", err)
	}
	byProducer := map[int64]kadm.DescribedTransaction{}
	for _, d := range described {
		byProducer[d.ProducerID] = d
	}
	for o := range open {
		if !prev[o] {
			continue // may have just begun or be about to end
		}
		d, ok := byProducer[o.producer]
		if !ok {
			hanging = append(hanging, o.String()+": no transactional id has this producer id")
			continue
		}
		_, listedHere := d.Topics[o.topic][o.partition]
		switch d.State {
		case "Ongoing", "PrepareCommit", "PrepareAbort", "PrepareEpochFence":
			if listedHere {
				continue
			}
		}
		hanging = append(hanging, fmt.Sprintf("%s: its transactional id %s is in state %s at epoch %d (partition in its transaction: %v)",
			o, d.TxnID, d.State, d.ProducerEpoch, listedHere))
	}
	sort.Strings(hanging)
	return hanging, open, nil
}
