package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/smartgroups/smartgroups/engine"
)

// ErrNotCoPartitioned is wrapped by the error EnsureTopics and
// CheckTopics return when the member topics differ in partition count.
var ErrNotCoPartitioned = errors.New("kafka: member topics are not co-partitioned")

// TopicSpec is one topic the runtime needs.
type TopicSpec struct {
	Name       string
	Partitions int32
	Configs    map[string]string
}

// TopicSpecs lists the topics of a deployment with the partition counts and
// configs EnsureTopics creates them with:
//
//   - profiles, activities, properties: cfg.Partitions, cleanup.policy=delete
//   - definitions: 1 partition, cleanup.policy=compact
//   - memberships: cfg.Partitions, cleanup.policy=compact (read as a table)
//   - access: cfg.Partitions, cleanup.policy=compact (read as a table)
//   - deadletter: cfg.Partitions, cleanup.policy=delete
//   - progress: cfg.Partitions, cleanup.policy=compact. The marker of input
//     partition P lives in progress partition P, so only P's producer
//     writes there (and, in partition 0, the producer of
//     engine.DefPartition); reading P's progress does not wait on other
//     partitions' open transactions.
func TopicSpecs(cfg Config) []TopicSpec {
	compact := map[string]string{"cleanup.policy": "compact"}
	del := map[string]string{"cleanup.policy": "delete"}
	var specs []TopicSpec
	for _, t := range cfg.MemberTopics() {
		specs = append(specs, TopicSpec{Name: t, Partitions: cfg.Partitions, Configs: del})
	}
	return append(specs,
		TopicSpec{Name: cfg.Topic(engine.KindDefinitions), Partitions: 1, Configs: compact},
		TopicSpec{Name: cfg.MembershipsTopic(), Partitions: cfg.Partitions, Configs: compact},
		TopicSpec{Name: cfg.AccessTopic(), Partitions: cfg.Partitions, Configs: compact},
		TopicSpec{Name: cfg.DeadLetterTopic(), Partitions: cfg.Partitions, Configs: del},
		TopicSpec{Name: cfg.ProgressTopic(), Partitions: cfg.Partitions, Configs: compact},
		TopicSpec{Name: cfg.ChangelogTopic(), Partitions: cfg.Partitions, Configs: compact},
	)
}

// EnsureTopics creates the missing topics of TopicSpecs (existing topics are
// left as they are) and then checks the layout with CheckTopics. Creating a
// topic another instance created concurrently is not an error.
func EnsureTopics(ctx context.Context, adm *kadm.Client, cfg Config) error {
	specs := TopicSpecs(cfg)
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	existing, err := adm.ListTopics(fresh(ctx), names...)
	if err != nil {
		return fmt.Errorf("kafka: listing topics: %w", err)
	}
	for _, s := range specs {
		if existing.Has(s.Name) {
			continue
		}
		configs := make(map[string]*string, len(s.Configs))
		for k, v := range s.Configs {
			configs[k] = kadm.StringPtr(v)
		}
		resp, err := adm.CreateTopic(ctx, s.Partitions, cfg.ReplicationFactor, configs, s.Name)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			if resp.ErrMessage != "" {
				return fmt.Errorf("kafka: creating topic %s: %w (%s)", s.Name, err, resp.ErrMessage)
			}
			return fmt.Errorf("kafka: creating topic %s: %w", s.Name, err)
		}
	}
	return CheckTopics(ctx, adm, cfg)
}

// CheckTopics verifies the topic layout the engine relies on: the member
// topics exist and are co-partitioned, definitions has exactly one
// partition, and progress has at least as many partitions as the member
// topics. The co-partitioning error names every member topic and its count.
func CheckTopics(ctx context.Context, adm *kadm.Client, cfg Config) error {
	specs := TopicSpecs(cfg)
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	// Topic creation propagates asynchronously on a real cluster; retry
	// briefly while a topic we just created is not yet in the metadata.
	var details kadm.TopicDetails
	var err error
	for attempt := 0; ; attempt++ {
		details, err = adm.ListTopics(fresh(ctx), names...)
		if err != nil {
			return fmt.Errorf("kafka: listing topics: %w", err)
		}
		missing := missingTopics(details, names)
		if len(missing) == 0 {
			break
		}
		if attempt >= 20 || ctx.Err() != nil {
			return fmt.Errorf("kafka: topics missing: %s", strings.Join(missing, ", "))
		}
		if err := sleepCtx(ctx, time.Duration(attempt+1)*50*time.Millisecond); err != nil {
			return err
		}
	}

	counts := func(t string) int32 { return int32(len(details[t].Partitions)) }
	member := cfg.MemberTopics()
	same := true
	for _, t := range member[1:] {
		if counts(t) != counts(member[0]) {
			same = false
		}
	}
	if !same {
		var b strings.Builder
		for i, t := range member {
			if i == 0 {
				fmt.Fprintf(&b, "%s has %d partitions", t, counts(t))
			} else {
				fmt.Fprintf(&b, ", %s has %d", t, counts(t))
			}
		}
		return fmt.Errorf("%w: %s", ErrNotCoPartitioned, b.String())
	}
	if defs := cfg.Topic(engine.KindDefinitions); counts(defs) != 1 {
		return fmt.Errorf("kafka: definitions topic %s must have exactly 1 partition, has %d", defs, counts(defs))
	}
	for _, p := range []string{cfg.ProgressTopic(), cfg.ChangelogTopic()} {
		if counts(p) < counts(member[0]) {
			return fmt.Errorf("kafka: topic %s has %d partitions, fewer than the %d of the member topics; add partitions to it",
				p, counts(p), counts(member[0]))
		}
	}
	return nil
}

func missingTopics(details kadm.TopicDetails, names []string) []string {
	var missing []string
	for _, n := range names {
		d, ok := details[n]
		if !ok || d.Err != nil || len(d.Partitions) == 0 {
			missing = append(missing, n)
		}
	}
	return missing
}

// DefaultDeleteRetention is Kafka's default delete.retention.ms: how long
// a compacted topic keeps a tombstone after cleaning it.
const DefaultDeleteRetention = 24 * time.Hour

// ChangelogDeleteRetention returns the changelog topic's
// delete.retention.ms (DefaultDeleteRetention when the broker does not say).
// A local snapshot of a partition older than that may miss a tombstone
// that compaction removed since, so it cannot be brought up to date from
// the changelog's tail.
func ChangelogDeleteRetention(ctx context.Context, adm *kadm.Client, cfg Config) (time.Duration, error) {
	topic := cfg.ChangelogTopic()
	configs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("kafka: describing %s: %w", topic, err)
	}
	rc, err := configs.On(topic, nil)
	if err != nil {
		return 0, fmt.Errorf("kafka: describing %s: %w", topic, err)
	}
	if rc.Err != nil {
		return 0, fmt.Errorf("kafka: describing %s: %w", topic, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key != "delete.retention.ms" || c.Value == nil {
			continue
		}
		ms, err := strconv.ParseInt(*c.Value, 10, 64)
		if err != nil || ms < 0 {
			return 0, fmt.Errorf("kafka: %s has delete.retention.ms %q", topic, *c.Value)
		}
		return time.Duration(ms) * time.Millisecond, nil
	}
	return DefaultDeleteRetention, nil
}
