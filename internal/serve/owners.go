package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/smartgroups/smartgroups/connectors/kafka"
)

// claimOutput records this deployment as the owner of its output topics
// (memberships and access) in the owners topic, and refuses to start when
// another deployment owns them: two deployments publishing one topic
// would interleave two membership histories, each with its own seqs.
// Instances of one deployment (the same group id and transactional id
// prefix) share the claim. With cfg.TakeOverOutput the claim is moved to
// this deployment, loudly.
func claimOutput(ctx context.Context, cfg Config, log *slog.Logger) error {
	owners, err := kafka.NewOwners(cfg.Kafka)
	if err != nil {
		return err
	}
	defer owners.Close()
	topics := []string{cfg.Kafka.MembershipsTopic(), cfg.Kafka.AccessTopic()}
	previous, err := owners.Claim(ctx, kafka.ServeOwner(cfg.Kafka), topics, cfg.TakeOverOutput)
	var owned *kafka.OwnedError
	if errors.As(err, &owned) {
		return fmt.Errorf("serve: refusing to start: %s is the output of %s, recorded in %s. "+
			"Two deployments publishing one topic would interleave two membership histories. "+
			"Give this deployment its own topics with another --topic-prefix; "+
			"or compute into a new topic without publishing live with `smartgroups replay --output-topic`; "+
			"or stop the other deployment and run `smartgroups reset` on it, which releases its topics; "+
			"or, to move the topic to this deployment deliberately, start with --take-over-output",
			owned.Topic, owned.Owner, cfg.Kafka.OwnersTopic)
	}
	if err != nil {
		return fmt.Errorf("serve: claiming the output topics: %w", err)
	}
	for _, p := range previous {
		log.Warn("TAKING OVER an output topic owned by another deployment (--take-over-output): "+
			"the previous owner must not publish to it any more",
			"topic", p.Topic, "previous_owner", p.String(), "group_id", cfg.Kafka.GroupID,
			"transactional_id_prefix", cfg.Kafka.TransactionalIDPrefix)
	}
	return nil
}
