package kafka

import (
	"slices"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
)

// KafkaClientNamespace prefixes the franz-go client metrics (kprom).
const KafkaClientNamespace = "smartgroups_kafka"

// Metrics are the Kafka runtime's Prometheus metrics. A nil *Metrics is
// valid and records nothing.
type Metrics struct {
	// ConsumerLag is high watermark minus position per member partition.
	ConsumerLag *prometheus.GaugeVec
	// Transactions counts Publisher transactions by result.
	Transactions *prometheus.CounterVec
	// Rebalances counts completed consumer group rebalances.
	Rebalances prometheus.Counter

	reg prometheus.Registerer
	mu  sync.Mutex
}

// NewMetrics creates and registers the metrics on reg. Each Kafka client
// the runtime creates registers its own kprom collectors under
// KafkaClientNamespace with a client_id label, and unregisters them when
// closed.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "smartgroups_consumer_lag_records",
			Help: "Records between the consumer position and the high watermark, per member topic partition.",
		}, []string{"topic", "partition"}),
		Transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartgroups_transactions_total",
			Help: "Output transactions ended, by result (commit or abort).",
		}, []string{"result"}),
		Rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "smartgroups_rebalances_total",
			Help: "Consumer group rebalances this instance took part in.",
		}),
		reg: reg,
	}
	for _, c := range []prometheus.Collector{m.ConsumerLag, m.Transactions, m.Rebalances} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Show both results from the start.
	m.Transactions.WithLabelValues("commit")
	m.Transactions.WithLabelValues("abort")
	return m, nil
}

// clientOpts returns the options of one client, in a new slice: base,
// then the given (unique) client id and the hooks into kprom, then extra.
func (m *Metrics) clientOpts(base []kgo.Opt, clientID string, extra ...kgo.Opt) []kgo.Opt {
	opts := append(slices.Clip(base), kgo.ClientID(clientID))
	if m != nil && m.reg != nil {
		kp := kprom.NewMetrics(KafkaClientNamespace, kprom.Registerer(lockedRegisterer{m}), kprom.WithClientLabel())
		opts = append(opts, kgo.WithHooks(kp))
	}
	return append(opts, extra...)
}

// lockedRegisterer serializes kprom's registrations and unregistrations
// from clients created and closed concurrently.
type lockedRegisterer struct{ m *Metrics }

func (l lockedRegisterer) Register(c prometheus.Collector) error {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	return l.m.reg.Register(c)
}

func (l lockedRegisterer) MustRegister(cs ...prometheus.Collector) {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	l.m.reg.MustRegister(cs...)
}

func (l lockedRegisterer) Unregister(c prometheus.Collector) bool {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	return l.m.reg.Unregister(c)
}

func (m *Metrics) transaction(commit bool) {
	if m == nil {
		return
	}
	if commit {
		m.Transactions.WithLabelValues("commit").Inc()
	} else {
		m.Transactions.WithLabelValues("abort").Inc()
	}
}

func (m *Metrics) rebalance() {
	if m != nil {
		m.Rebalances.Inc()
	}
}

func (m *Metrics) setLag(topic string, partition int32, lag int64) {
	if m != nil {
		m.ConsumerLag.WithLabelValues(topic, strconv.Itoa(int(partition))).Set(float64(lag))
	}
}

func (m *Metrics) dropLag(topic string, partition int32) {
	if m != nil {
		m.ConsumerLag.DeleteLabelValues(topic, strconv.Itoa(int(partition)))
	}
}
