package kafka

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultOwnersTopic is the default Config.OwnersTopic.
const DefaultOwnersTopic = "smartgroups.owners"

// Owner kinds.
const (
	OwnerServe  = "serve"
	OwnerReplay = "replay"
)

// Owner is the claim of a deployment (or of a replay) on an output topic,
// the value of the owners topic's record keyed by the topic's name. A
// claim is stale, and so ignored, when the topic it names no longer exists
// or was recreated since (another TopicID).
type Owner struct {
	Topic string `json:"topic"`
	// TopicID is the hex id of the topic when it was claimed.
	TopicID string `json:"topic_id"`
	// Kind is OwnerServe or OwnerReplay.
	Kind string `json:"kind"`
	// GroupID and TransactionalIDPrefix identify a serve deployment: its
	// instances share both.
	GroupID               string `json:"group_id,omitempty"`
	TransactionalIDPrefix string `json:"transactional_id_prefix,omitempty"`
	// TransactionalID identifies a replay.
	TransactionalID string `json:"transactional_id,omitempty"`
	// TopicPrefix is the claimant's input topic prefix.
	TopicPrefix string `json:"topic_prefix"`
	// Host is the host name of the process that wrote the claim.
	Host  string    `json:"host,omitempty"`
	Since time.Time `json:"since"`
}

// ServeOwner is the claim of the serve deployment cfg describes.
func ServeOwner(cfg Config) Owner {
	host, _ := os.Hostname()
	return Owner{Kind: OwnerServe, GroupID: cfg.GroupID, TransactionalIDPrefix: cfg.TransactionalIDPrefix,
		TopicPrefix: cfg.TopicPrefix, Host: host}
}

// Same reports whether o and p are the same claimant: one serve
// deployment (group id and transactional id prefix) or one replay
// (transactional id).
func (o Owner) Same(p Owner) bool {
	if o.Kind != p.Kind {
		return false
	}
	if o.Kind == OwnerReplay {
		return o.TransactionalID == p.TransactionalID
	}
	return o.GroupID == p.GroupID && o.TransactionalIDPrefix == p.TransactionalIDPrefix
}

// String describes the claimant for people.
func (o Owner) String() string {
	var b strings.Builder
	if o.Kind == OwnerReplay {
		fmt.Fprintf(&b, "a replay (transactional id %q, input topic prefix %q)", o.TransactionalID, o.TopicPrefix)
	} else {
		fmt.Fprintf(&b, "the serve deployment with group id %q and transactional id prefix %q (topic prefix %q)",
			o.GroupID, o.TransactionalIDPrefix, o.TopicPrefix)
	}
	if o.Host != "" {
		fmt.Fprintf(&b, ", claimed from host %s", o.Host)
	}
	if !o.Since.IsZero() {
		fmt.Fprintf(&b, " on %s", o.Since.UTC().Format(time.RFC3339))
	}
	return b.String()
}

// OwnedError says that an output topic is owned by another claimant.
type OwnedError struct {
	Topic string
	Owner Owner
}

func (e *OwnedError) Error() string {
	return fmt.Sprintf("kafka: topic %s is the output of %s", e.Topic, e.Owner)
}

// Owners reads and writes the owners topic (Config.OwnersTopic): one
// compacted partition, one record per claimed output topic. It is how a
// deployment notices that the topic it is about to publish to is already
// the output of another one.
type Owners struct {
	cfg Config
	cl  *kgo.Client
	adm *kadm.Client
}

// NewOwners returns an Owners over its own client, built from cfg; Close
// it.
func NewOwners(cfg Config) (*Owners, error) {
	opts, err := cfg.validClientOpts([]kgo.Opt{
		kgo.ClientID(cfg.ClientID + "-owners"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	})
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: owners client: %w", err)
	}
	return &Owners{cfg: cfg, cl: cl, adm: kadm.NewClient(cl)}, nil
}

// Close closes the client.
func (o *Owners) Close() { o.cl.Close() }

// ensure creates the owners topic when missing: one partition, compacted.
func (o *Owners) ensure(ctx context.Context) error {
	topic := o.cfg.OwnersTopic
	_, err := o.adm.CreateTopic(ctx, 1, o.cfg.ReplicationFactor, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("kafka: creating the owners topic %s: %w", topic, err)
	}
	for attempt := 0; ; attempt++ {
		details, err := o.adm.ListTopics(fresh(ctx), topic)
		if err != nil {
			return fmt.Errorf("kafka: listing %s: %w", topic, err)
		}
		if len(missingTopics(details, []string{topic})) == 0 {
			return nil
		}
		if attempt >= 20 {
			return fmt.Errorf("kafka: the owners topic %s does not appear", topic)
		}
		if err := sleepCtx(ctx, time.Duration(attempt+1)*50*time.Millisecond); err != nil {
			return err
		}
	}
}

// Read returns the current claims, by topic, stale ones (the topic is gone
// or was recreated) left out. It creates the owners topic when missing.
func (o *Owners) Read(ctx context.Context) (map[string]Owner, error) {
	claims, _, _, err := o.read(ctx, -1)
	return claims, err
}

// claimRecord is one record of the owners topic; Owner is nil for a
// tombstone.
type claimRecord struct {
	offset int64
	topic  string
	owner  *Owner
}

// read reads the owners topic: the current claims (stale ones left out),
// the records at or after offset from (none for a negative from), and the
// offset its read ended at.
func (o *Owners) read(ctx context.Context, from int64) (map[string]Owner, []claimRecord, int64, error) {
	if err := o.ensure(ctx); err != nil {
		return nil, nil, 0, err
	}
	all := map[string]Owner{}
	var recs []claimRecord
	end, err := readPartitionToEnd(ctx, o.cl, o.cfg.OwnersTopic, 0, -1, func(r *kgo.Record) error {
		cr := claimRecord{offset: r.Offset, topic: string(r.Key)}
		if r.Value == nil {
			delete(all, cr.topic)
		} else {
			var ow Owner
			if err := json.Unmarshal(r.Value, &ow); err != nil {
				return nil // not a claim: ignored
			}
			all[cr.topic] = ow
			cr.owner = &ow
		}
		if from >= 0 && r.Offset >= from {
			recs = append(recs, cr)
		}
		return nil
	})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("kafka: reading the owners topic %s: %w", o.cfg.OwnersTopic, err)
	}
	if len(all) == 0 {
		return all, recs, end, nil
	}
	ids, err := o.topicIDs(ctx, keys(all)...)
	if err != nil {
		return nil, nil, 0, err
	}
	for t, ow := range all {
		if id, ok := ids[t]; !ok || id != ow.TopicID {
			delete(all, t)
		}
	}
	return all, recs, end, nil
}

func keys(m map[string]Owner) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// topicIDs returns the hex ids of the topics that exist among topics.
func (o *Owners) topicIDs(ctx context.Context, topics ...string) (map[string]string, error) {
	details, err := o.adm.ListTopics(fresh(ctx), topics...)
	if err != nil {
		return nil, fmt.Errorf("kafka: listing topics: %w", err)
	}
	out := map[string]string{}
	for _, t := range topics {
		d, ok := details[t]
		if ok && d.Err == nil && len(d.Partitions) > 0 {
			out[t] = hex.EncodeToString(d.ID[:])
		}
	}
	return out, nil
}

// Claim records me as the owner of topics (which must exist). A topic
// owned by another claimant stops it with an *OwnedError, unless takeOver:
// then the claim is moved to me and the previous owners are returned (for
// the caller to log). A topic already claimed by me is not written again.
//
// Two claimants racing for a topic both write their claim: the first
// claim written after the read a claimant decided on wins (see settle).
func (o *Owners) Claim(ctx context.Context, me Owner, topics []string, takeOver bool) ([]Owner, error) {
	current, _, from, err := o.read(ctx, -1)
	if err != nil {
		return nil, err
	}
	recs, previous, err := o.claimRecords(ctx, me, topics, takeOver, current)
	if err != nil || len(recs) == 0 {
		return previous, err
	}
	if err := o.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, fmt.Errorf("kafka: writing to the owners topic %s: %w", o.cfg.OwnersTopic, err)
	}
	if err := o.settle(ctx, me, recs, from); err != nil {
		return nil, err
	}
	return previous, nil
}

// claimRecords returns the claim records to write for me, given the
// current claims, and the owners taken over.
func (o *Owners) claimRecords(ctx context.Context, me Owner, topics []string, takeOver bool, current map[string]Owner) ([]*kgo.Record, []Owner, error) {
	ids, err := o.topicIDs(ctx, topics...)
	if err != nil {
		return nil, nil, err
	}
	var previous []Owner
	var recs []*kgo.Record
	for _, t := range topics {
		id, ok := ids[t]
		if !ok {
			return nil, nil, fmt.Errorf("kafka: cannot claim topic %s: it does not exist", t)
		}
		if cur, ok := current[t]; ok {
			if cur.Same(me) {
				continue
			}
			if !takeOver {
				return nil, nil, &OwnedError{Topic: t, Owner: cur}
			}
			previous = append(previous, cur)
		}
		c := me
		c.Topic, c.TopicID, c.Since = t, id, time.Now().UTC()
		v, err := json.Marshal(c)
		if err != nil {
			return nil, nil, err
		}
		recs = append(recs, &kgo.Record{Topic: o.cfg.OwnersTopic, Partition: 0, Key: []byte(t), Value: v})
	}
	return recs, previous, nil
}

// settle reads back the claims written after offset from (where the read
// that decided to write recs ended): for each topic, the first claim
// written there wins. A claimant that did not see the winner's claim
// before writing its own loses: it writes the winner's claim again (so
// that it is the latest) and gets an *OwnedError.
func (o *Owners) settle(ctx context.Context, me Owner, recs []*kgo.Record, from int64) error {
	_, after, _, err := o.read(ctx, from)
	if err != nil {
		return err
	}
	var lost *OwnedError
	var restore []*kgo.Record
	for _, r := range recs {
		t := string(r.Key)
		for _, cr := range after {
			if cr.topic != t || cr.owner == nil {
				continue
			}
			if !cr.owner.Same(me) {
				v, err := json.Marshal(cr.owner)
				if err != nil {
					return err
				}
				restore = append(restore, &kgo.Record{Topic: o.cfg.OwnersTopic, Partition: 0, Key: []byte(t), Value: v})
				if lost == nil {
					lost = &OwnedError{Topic: t, Owner: *cr.owner}
				}
			}
			break
		}
	}
	if lost == nil {
		return nil
	}
	if err := o.cl.ProduceSync(ctx, restore...).FirstErr(); err != nil {
		return fmt.Errorf("kafka: writing to the owners topic %s: %w", o.cfg.OwnersTopic, err)
	}
	return lost
}

// Release removes the claims of the topics owned by a claimant that is
// the same as me (Owner.Same), with tombstones; it returns the released
// topics.
func (o *Owners) Release(ctx context.Context, me Owner, topics []string) ([]string, error) {
	current, _, _, err := o.read(ctx, -1)
	if err != nil {
		return nil, err
	}
	var released []string
	var recs []*kgo.Record
	for _, t := range topics {
		if cur, ok := current[t]; ok && cur.Same(me) {
			recs = append(recs, &kgo.Record{Topic: o.cfg.OwnersTopic, Partition: 0, Key: []byte(t)})
			released = append(released, t)
		}
	}
	if len(recs) == 0 {
		return nil, nil
	}
	if err := o.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, fmt.Errorf("kafka: writing to the owners topic %s: %w", o.cfg.OwnersTopic, err)
	}
	return released, nil
}
