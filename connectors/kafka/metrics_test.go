package kafka

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func metricNames(t *testing.T, g prometheus.Gatherer) map[string]bool {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		require.NotEmpty(t, mf.GetHelp(), mf.GetName())
	}
	return names
}

func TestMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	m.setLag("t", 0, 3)
	m.rebalance()
	names := metricNames(t, reg)
	for _, n := range []string{"smartgroups_consumer_lag_records", "smartgroups_transactions_total", "smartgroups_rebalances_total"} {
		require.True(t, names[n], n)
	}
	m.dropLag("t", 0)

	_, err = NewMetrics(reg)
	require.Error(t, err, "registering twice fails")

	var nilM *Metrics // a nil *Metrics records nothing
	nilM.setLag("t", 0, 1)
	nilM.transaction(true)
	nilM.rebalance()
	nilM.dropLag("t", 0)
}

func TestMetricsKafkaClient(t *testing.T) {
	e := newEnv(t)
	e.ensureTopics()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	pub, err := NewPublisher(e.cfg, "test-instance", m)
	require.NoError(t, err)
	ctx := e.ctx()
	// Two clients at once: the progress reader and partition 0's producer.
	_, err = pub.Acquire(ctx, 0)
	require.NoError(t, err)
	_, err = pub.Acquire(ctx, 1)
	require.NoError(t, err)

	kafkaNames := 0
	for n := range metricNames(t, reg) {
		if strings.HasPrefix(n, KafkaClientNamespace+"_") {
			kafkaNames++
		}
	}
	require.Positive(t, kafkaNames)

	mfs, err := reg.Gather()
	require.NoError(t, err)
	clients := map[string]bool{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "client_id" {
					clients[l.GetValue()] = true
				}
			}
		}
	}
	require.True(t, clients["sgt-progress"], "%v", clients)
	require.True(t, clients["sgt-publisher-p0"], "%v", clients)

	pub.Close()
	for n := range metricNames(t, reg) {
		require.False(t, strings.HasPrefix(n, KafkaClientNamespace+"_"), "%s left registered after Close", n)
	}
}
