package serve

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/state"
)

// metaChangelogID is the store's meta key holding the id of the changelog
// topic its partition snapshots come from.
const metaChangelogID = "changelog-topic-id"

// changelogTopicID returns the hex id of the deployment's changelog topic.
func changelogTopicID(ctx context.Context, kc kafka.Config) (string, error) {
	opts, err := kc.ClientOpts()
	if err != nil {
		return "", err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return "", fmt.Errorf("serve: kafka client: %w", err)
	}
	defer cl.Close()
	topic := kc.ChangelogTopic()
	details, err := kadm.NewClient(cl).ListTopics(kadm.WithAuthorizedOps(ctx), topic)
	if err != nil {
		return "", fmt.Errorf("serve: listing %s: %w", topic, err)
	}
	d, ok := details[topic]
	if !ok || d.Err != nil {
		return "", fmt.Errorf("serve: topic %s is missing", topic)
	}
	return hex.EncodeToString(d.ID[:]), nil
}

// reconcileChangelogID drops the local state of every partition when the
// changelog topic is not the one the store's snapshots were taken from
// (`smartgroups reset` deleted it, the deployment created a new one): a
// snapshot's tag is an offset in one particular changelog, and the new
// one may have grown past it with another history. It then records id.
// It returns the partitions dropped.
func reconcileChangelogID(st *state.Store, eng *engine.Engine, partitions int32, id string, log *slog.Logger) ([]int32, error) {
	old, known, err := st.Get(state.MetaKey(metaChangelogID))
	if err != nil {
		return nil, err
	}
	var dropped []int32
	if known && string(old) != id {
		for p := int32(0); p < partitions; p++ {
			has, err := eng.HasPartitionState(p)
			if err != nil {
				return nil, err
			}
			if !has {
				continue
			}
			if err := eng.DropPartition(p); err != nil {
				return nil, err
			}
			dropped = append(dropped, p)
		}
		log.Warn("the changelog topic is not the one the local state was restored from (was the deployment reset?): "+
			"dropping the local state; the partitions are restored from the new changelog or rebuilt from the inputs",
			"changelog_topic_id", id, "local_state_changelog_topic_id", string(old), "partitions", dropped)
	}
	if known && string(old) == id {
		return nil, nil
	}
	b := st.NewBatch()
	if err := b.Set(state.MetaKey(metaChangelogID), []byte(id)); err != nil {
		_ = b.Close()
		return nil, err
	}
	return dropped, b.Commit()
}
