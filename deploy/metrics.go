package deploy

// DashboardMetrics lists every smartgroups_ metric that the Grafana dashboard
// (grafana/dashboards/smartgroups.json) queries, by its registered name:
// histograms appear without their _bucket, _sum or _count suffix.
//
// TestDashboardMetricsListed keeps this list equal to the set of names the
// dashboard uses. The engine's metrics test asserts that each name here is
// registered, so a renamed or dropped metric breaks a test instead of leaving
// an empty panel.
var DashboardMetrics = []string{
	"smartgroups_access_changes_total",
	"smartgroups_backfill_members_total",
	"smartgroups_backfills_running",
	"smartgroups_batch_duration_seconds",
	"smartgroups_consumer_lag_records",
	"smartgroups_dead_letters_total",
	"smartgroups_event_to_output_latency_seconds",
	"smartgroups_groups",
	"smartgroups_members",
	"smartgroups_membership_changes_total",
	"smartgroups_rebalances_total",
	"smartgroups_records_consumed_total",
	"smartgroups_restore_records_total",
	"smartgroups_restore_remaining_records",
	"smartgroups_state_size_bytes",
	"smartgroups_timer_queue_depth",
	"smartgroups_transactions_total",
}

// GlobalGauges are the gauges every instance reports with the same value
// (each holds every definition): a dashboard aggregates them across
// instances with max(), never sum(), which would multiply them by the
// instance count. The other gauges (members, consumer lag, timer queue
// depth, ...) count what an instance's partitions hold and add up.
var GlobalGauges = []string{
	"smartgroups_groups",
}

// DefinitionsCounters are the counters with a topic label that every
// instance increments for each record of the definitions topic (each
// instance consumes all of it): across instances, their
// topic="definitions" series are aggregated with max() and the member
// topics' series with sum().
var DefinitionsCounters = []string{
	"smartgroups_dead_letters_total",
	"smartgroups_records_consumed_total",
}
