package engine

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the engine's Prometheus metrics (SPEC §7).
type Metrics struct {
	RecordsConsumed   *prometheus.CounterVec
	UnknownFields     *prometheus.CounterVec
	DeadLetters       *prometheus.CounterVec
	MembershipChanges *prometheus.CounterVec
	AccessChanges     *prometheus.CounterVec
	Latency           prometheus.Histogram
	BatchDuration     prometheus.Histogram
	StateSize         prometheus.GaugeFunc
	Groups            prometheus.GaugeFunc
	Members           prometheus.GaugeFunc
	BackfillMembers   prometheus.Counter
	BackfillsRunning  prometheus.Gauge
	TimerQueueDepth   prometheus.GaugeFunc
	TimerLag          prometheus.GaugeFunc
	TimersFired       prometheus.Counter
	RuleEvaluations   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, e *Engine) (*Metrics, error) {
	m := &Metrics{
		RecordsConsumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartgroups_records_consumed_total", Help: "Input records consumed, by topic.",
		}, []string{"topic"}),
		UnknownFields: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartgroups_unknown_fields_total", Help: "Unknown fields ignored in input records, by topic.",
		}, []string{"topic"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartgroups_dead_letters_total", Help: "Input records dead-lettered, by topic and reason code.",
		}, []string{"topic", "reason"}),
		MembershipChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartgroups_membership_changes_total", Help: "Membership changes emitted, by op and reason.",
		}, []string{"op", "reason"}),
		AccessChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartgroups_access_changes_total", Help: "Access changes to linked resources emitted, by op (grant, revoke) and reason.",
		}, []string{"op", "reason"}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "smartgroups_event_to_output_latency_seconds",
			Help:    "Time from the production of the oldest input record of a batch to the moment its membership changes are visible to consumers.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		BatchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "smartgroups_batch_duration_seconds", Help: "Time to process and durably commit one input batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		StateSize: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "smartgroups_state_size_bytes", Help: "Size of the state store on disk.",
		}, func() float64 { return float64(e.st.DiskBytes()) }),
		Groups: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "smartgroups_groups", Help: "Live smart groups over all spots.",
		}, func() float64 { return float64(e.liveGroups.Load()) }),
		Members: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "smartgroups_members", Help: "Live members in the partitions this instance owns.",
		}, func() float64 { return float64(e.liveMembers.Load()) }),
		BackfillMembers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "smartgroups_backfill_members_total", Help: "Members evaluated by backfills of created or changed groups.",
		}),
		BackfillsRunning: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "smartgroups_backfills_running", Help: "Backfills in progress.",
		}),
		TimerQueueDepth: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "smartgroups_timer_queue_depth", Help: "Pending time-driven re-evaluations (one per member at most).",
		}, func() float64 { return float64(e.timers.Load()) }),
		TimerLag: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "smartgroups_timer_lag_seconds",
			Help: "How far behind the clock the earliest due time-driven re-evaluation is (0: none is overdue). Overdue timers fire over several batches after a clock jump or a restart; this is how far behind that work is.",
		}, func() float64 { return float64(e.timerLag.Load()) / 1000 }),
		TimersFired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "smartgroups_timers_fired_total", Help: "Time-driven re-evaluations performed.",
		}),
		RuleEvaluations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "smartgroups_rule_evaluations_total",
			Help: "Smart-group rules evaluated for one member on the record and timer path (backfills count in smartgroups_backfill_members_total).",
		}),
	}
	m.initLabels()
	initAccessChanges(m.AccessChanges)
	if reg != nil {
		for _, c := range []prometheus.Collector{m.RecordsConsumed, m.UnknownFields, m.DeadLetters,
			m.MembershipChanges, m.AccessChanges, m.Latency, m.BatchDuration, m.StateSize, m.Groups, m.Members,
			m.BackfillMembers, m.BackfillsRunning, m.TimerQueueDepth, m.TimerLag, m.TimersFired, m.RuleEvaluations} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("engine: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

// initLabels creates every series of the counters whose label values are
// known in advance (input kinds, dead-letter codes, ops and reasons) at
// zero, so that dashboards and rate() see them before the first increment.
func (m *Metrics) initLabels() {
	for _, k := range []Kind{KindProfiles, KindActivities, KindProperties, KindDefinitions} {
		m.RecordsConsumed.WithLabelValues(string(k))
		m.UnknownFields.WithLabelValues(string(k))
		for _, c := range Codes() {
			m.DeadLetters.WithLabelValues(string(k), string(c))
		}
	}
	for _, op := range []Op{OpAdd, OpRemove} {
		for _, r := range Reasons() {
			m.MembershipChanges.WithLabelValues(string(op), string(r))
		}
	}
}
