package serve

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/engine"
)

// cutListener is a broker's listener that the test can cut, like a
// broker gone from the network: while cut, the port is closed (clients get
// "connection refused") and open connections are closed. Restoring it
// listens on the same address again.
type cutListener struct {
	addr  string
	mu    sync.Mutex
	cond  *sync.Cond
	inner net.Listener
	cut   bool
	done  bool
	conns map[net.Conn]struct{}
}

func newCutListener(network, addr string) (*cutListener, error) {
	inner, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	l := &cutListener{addr: inner.Addr().String(), inner: inner, conns: map[net.Conn]struct{}{}}
	l.cond = sync.NewCond(&l.mu)
	return l, nil
}

// Accept implements net.Listener; it waits while the listener is cut.
func (l *cutListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		for l.cut && !l.done {
			l.cond.Wait()
		}
		if l.done {
			l.mu.Unlock()
			return nil, net.ErrClosed
		}
		inner := l.inner
		l.mu.Unlock()
		c, err := inner.Accept()
		l.mu.Lock()
		if err != nil {
			retry := !l.done && (l.cut || l.inner != inner) // cut under us
			l.mu.Unlock()
			if retry {
				continue
			}
			return nil, err
		}
		l.conns[c] = struct{}{}
		l.mu.Unlock()
		return c, nil
	}
}

// Close implements net.Listener.
func (l *cutListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
	l.cond.Broadcast()
	return l.inner.Close()
}

// Addr implements net.Listener.
func (l *cutListener) Addr() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inner.Addr()
}

// setCut cuts (true) or restores (false) the broker's network.
func (l *cutListener) setCut(t *testing.T, cut bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cut {
		l.cut = true
		_ = l.inner.Close()
		for c := range l.conns {
			_ = c.Close()
		}
		clear(l.conns)
		return
	}
	inner, err := net.Listen("tcp", l.addr)
	if err != nil {
		t.Errorf("listening on %s again: %v", l.addr, err)
		return
	}
	l.inner, l.cut = inner, false
	l.cond.Broadcast()
}

// TestBrokerOutage cuts serve off its broker for a few seconds while it
// publishes, longer than a transaction may take: /readyz answers 503
// during the outage, serve logs one error for it (not one per retry),
// waits, and resumes by itself once the broker answers; the memberships
// topic then holds each add exactly once.
func TestBrokerOutage(t *testing.T) {
	const n = 3000
	outage := 8 * time.Second
	if v := os.Getenv("SERVE_OUTAGE"); v != "" { // e.g. 70s: longer than a transaction may last
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SERVE_OUTAGE=%q: %v", v, err)
		}
		outage = d
	}
	var ln *cutListener
	emb, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: filepath.Join(t.TempDir(), "broker"),
		Opts: []kfake.Opt{kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			l, err := newCutListener(network, addr)
			ln = l
			return l, err
		})}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = emb.Close() }()

	cfg := testConfig(t)
	cfg.Kafka.Brokers = []string{emb.Addr()}
	cfg.BatchSize = 200
	var logs syncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cutc := make(chan struct{})
	var published atomic.Int32
	cfg.OnEvents = func([]engine.Event) {
		// Cut the broker off right after a publication: the next ones
		// start during the outage.
		if published.Add(1) == 3 {
			ln.setCut(t, true)
			close(cutc)
		}
	}
	var httpAddr atomic.Pointer[string]
	cfg.OnReady = func(r Ready) {
		httpAddr.Store(&r.HTTPAddr)
		cl, err := kgo.NewClient(kgo.SeedBrokers(r.Brokers...))
		if err != nil {
			t.Error(err)
			return
		}
		defer cl.Close()
		recs := append([]*kgo.Record{{Topic: cfg.Kafka.Topic(engine.KindDefinitions), Key: []byte("acme/group/vips"), Value: []byte(vipGroup)}},
			vipProfiles(cfg.Kafka.Topic(engine.KindProfiles), 0, n)...)
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Error(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()

	select {
	case <-cutc:
	case err := <-done:
		t.Fatalf("serve stopped before the outage: %v; log:\n%s", err, logs.String())
	case <-time.After(time.Minute):
		t.Fatalf("no publication in a minute; log:\n%s", logs.String())
	}
	readyz := func() int {
		a := httpAddr.Load()
		resp, err := http.Get("http://" + *a + "/readyz") //nolint:noctx // test
		if err != nil {
			return 0
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	unready := false
	for end := time.Now().Add(outage); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		unready = unready || readyz() == http.StatusServiceUnavailable
	}
	ln.setCut(t, false)
	if !unready {
		t.Errorf("/readyz never answered 503 during the %v outage", outage)
	}

	// serve resumes by itself: every add is published exactly once.
	checkAdds(t, readMemberships(t, []string{emb.Addr()}, cfg.Kafka.MembershipsTopic(), n), n)
	deadline := time.Now().Add(10 * time.Second)
	for readyz() != http.StatusOK && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := readyz(); got != http.StatusOK {
		t.Errorf("/readyz answers %d after the outage, want 200", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}

	log := logs.String()
	ps := problems(log)
	if len(ps) != 1 || !strings.Contains(ps[0], `level=ERROR msg="Kafka is unreachable`) {
		t.Errorf("want exactly one problem logged, the outage; got:\n%s", strings.Join(ps, "\n"))
	}
	if !strings.Contains(log, `msg="Kafka is reachable again; resuming"`) {
		t.Errorf("the end of the outage is not logged:\n%s", log)
	}
	t.Logf("log:\n%s", log)
}
