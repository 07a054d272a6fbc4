package serve

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Broker health probing: how often, how long one probe may take, and how
// many probes in a row must fail before Kafka counts as unreachable.
const (
	probeInterval = time.Second
	probeTimeout  = 2 * time.Second
	probeFailures = 2
	// outageAftermath is how long after an outage the failures it caused
	// (a transaction or a group session that timed out in it) are
	// expected and retried quietly.
	outageAftermath = time.Minute
)

// brokerHealth tells whether the Kafka brokers answer. It probes them with
// a metadata request every probeInterval on its own client; the processing
// loop and the publication also report what they see through check. After
// probeFailures failures in a row Kafka counts as unreachable: /readyz
// answers 503 and one error is logged for the whole outage; the first
// successful probe ends it, with one info line.
type brokerHealth struct {
	cl          *kgo.Client
	log         *slog.Logger
	unreachable prometheus.Gauge

	mu    sync.Mutex
	fails int       // probes failed in a row
	down  bool      // Kafka counts as unreachable
	since time.Time // first failed probe of the current run of failures
	ended time.Time // end of the last outage
}

// newBrokerHealth creates the monitor with its own client from opts.
func newBrokerHealth(opts []kgo.Opt, log *slog.Logger, reg prometheus.Registerer) (*brokerHealth, error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("serve: kafka client of the broker health probe: %w", err)
	}
	h := &brokerHealth{cl: cl, log: log, unreachable: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "smartgroups_kafka_unreachable",
		Help: "1 while no Kafka broker answers (probed every second), else 0.",
	})}
	if err := registerAll(reg, h.unreachable); err != nil {
		cl.Close()
		return nil, err
	}
	return h, nil
}

// run probes every probeInterval until ctx is done.
func (h *brokerHealth) run(ctx context.Context) {
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = h.check(ctx)
		}
	}
}

// check probes the brokers now, records the result and returns the
// probe's error (nil: a broker answered).
func (h *brokerHealth) check(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	err := h.cl.Ping(pctx)
	cancel()
	if ctx.Err() != nil {
		return ctx.Err() // stopping: not a verdict on Kafka
	}
	h.report(err)
	return err
}

func (h *brokerHealth) report(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		if h.down {
			h.log.Info("Kafka is reachable again; resuming", "unreachable_for", time.Since(h.since).Round(time.Millisecond))
			h.unreachable.Set(0)
			h.ended = time.Now()
		}
		h.fails, h.down = 0, false
		return
	}
	if h.fails == 0 {
		h.since = time.Now()
	}
	h.fails++
	if !h.down && h.fails >= probeFailures {
		h.down = true
		h.unreachable.Set(1)
		h.log.Error("Kafka is unreachable; waiting for it (processing is paused, /readyz answers 503)",
			"since", h.since.Format(time.RFC3339), "err", err)
	}
}

// Down reports whether Kafka counts as unreachable.
func (h *brokerHealth) Down() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down
}

// recentOutage reports whether Kafka is unreachable or was within d: the
// errors seen then (a group session lost to missed heartbeats) are
// consequences of the outage, already logged.
func (h *brokerHealth) recentOutage(d time.Duration) bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down || (!h.ended.IsZero() && time.Since(h.ended) < d)
}

// waitUp probes until a broker answers or ctx is done.
func (h *brokerHealth) waitUp(ctx context.Context) error {
	for {
		if err := h.check(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(probeInterval):
		}
	}
}

// close closes the probe's client.
func (h *brokerHealth) close() { h.cl.Close() }
