package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/connectors/file"
	"github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/engine"
)

// fileOutputs are the NDJSON files of a replay.
type fileOutputs struct {
	out, access, dead *os.File
}

func openFiles(cfg Config) (*fileOutputs, error) {
	f := &fileOutputs{}
	for _, o := range []struct {
		path, flag string
		dst        **os.File
	}{
		{cfg.OutputFile, "--output-file", &f.out},
		{cfg.AccessOutputFile, "--access-output-file", &f.access},
		{cfg.DeadLetterFile, "--deadletter", &f.dead},
	} {
		if o.path == "" {
			continue
		}
		h, err := os.Create(o.path)
		if err != nil {
			_ = f.close()
			return nil, fmt.Errorf("replay: %s: %w", o.flag, err)
		}
		*o.dst = h
	}
	return f, nil
}

// sink returns the file sink of the outputs (io.Discard for those not
// asked for).
func (f *fileOutputs) sink() *file.Sink {
	s := file.NewSink(orDiscard(f.out), orDiscard(f.dead))
	if f.access != nil {
		s.WithAccess(f.access)
	}
	return s
}

func orDiscard(f *os.File) io.Writer {
	if f == nil {
		return io.Discard
	}
	return f
}

func (f *fileOutputs) close() error {
	var errs []error
	for _, h := range []*os.File{f.out, f.access, f.dead} {
		if h != nil {
			if err := h.Close(); err != nil {
				errs = append(errs, fmt.Errorf("replay: closing %s: %w", h.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// kafkaOutput writes a replay's events to its output topics, one Kafka
// transaction per engine batch.
type kafkaOutput struct {
	cl             *kgo.Client
	events, access string
	recs           []*kgo.Record
	commits        int64
	timeout        time.Duration
}

// openKafkaOutput checks the output topics (not a topic of the live
// deployment, not owned by another deployment or replay, empty), creates
// the missing ones, claims them in the owners topic and initializes the
// transactional producer.
func openKafkaOutput(ctx context.Context, cfg Config, adm *kadm.Client, partitions int32) (*kafkaOutput, error) {
	var topics []string
	for _, t := range []struct{ flag, name string }{{"--output-topic", cfg.OutputTopic}, {"--access-output-topic", cfg.AccessOutputTopic}} {
		if t.name == "" {
			continue
		}
		if err := checkNotLive(cfg.Kafka, t.flag, t.name); err != nil {
			return nil, err
		}
		topics = append(topics, t.name)
	}
	owners, err := kafka.NewOwners(cfg.Kafka)
	if err != nil {
		return nil, err
	}
	defer owners.Close()
	claims, err := owners.Read(ctx)
	if err != nil {
		return nil, err
	}
	me := kafka.Owner{Kind: kafka.OwnerReplay, TransactionalID: cfg.TransactionalID, TopicPrefix: cfg.Kafka.TopicPrefix}
	me.Host, _ = os.Hostname()
	for _, t := range topics {
		if c, ok := claims[t]; ok {
			return nil, fmt.Errorf("replay: refusing to write to %s: it is the output of %s (recorded in %s); give a new topic", t, c, cfg.Kafka.OwnersTopic)
		}
		if err := ensureEmptyTopic(ctx, adm, cfg.Kafka, t, partitions); err != nil {
			return nil, err
		}
	}
	if _, err := owners.Claim(ctx, me, topics, false); err != nil {
		return nil, fmt.Errorf("replay: claiming %v: %w", topics, err)
	}
	opts, err := cfg.Kafka.ClientOpts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts,
		kgo.ClientID(cfg.Kafka.ClientID+"-replay-output"),
		kgo.TransactionalID(cfg.TransactionalID),
		kgo.TransactionTimeout(cfg.Kafka.TransactionTimeout),
		// murmur2 of the key, like serve's publisher: one key, one partition.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.RequestRetries(20),
	)...)
	if err != nil {
		return nil, fmt.Errorf("replay: output producer: %w", err)
	}
	return &kafkaOutput{cl: cl, events: cfg.OutputTopic, access: cfg.AccessOutputTopic, timeout: cfg.Kafka.TransactionTimeout}, nil
}

// checkNotLive refuses the topics of the deployment whose inputs are
// replayed (its output topics above all) and the owners topic.
func checkNotLive(kc kafka.Config, flag, topic string) error {
	live := append(kc.MemberTopics(), kc.Topic(engine.KindDefinitions), kc.MembershipsTopic(), kc.AccessTopic(),
		kc.DeadLetterTopic(), kc.ChangelogTopic(), kc.ProgressTopic(), kc.OwnersTopic)
	for _, l := range live {
		if topic == l {
			return fmt.Errorf("replay: %s %s is a topic of the live deployment (topic prefix %q): a replay never writes there; give a new topic", flag, topic, kc.TopicPrefix)
		}
	}
	return nil
}

// ensureEmptyTopic creates topic (compacted, like the memberships topic)
// when it does not exist, and refuses it when it holds records: a second
// replay into it would write every event twice.
func ensureEmptyTopic(ctx context.Context, adm *kadm.Client, kc kafka.Config, topic string, partitions int32) error {
	_, err := adm.CreateTopic(ctx, partitions, kc.ReplicationFactor, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("replay: creating %s: %w", topic, err)
	}
	for attempt := 0; ; attempt++ {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil && ends.Error() == nil && len(ends[topic]) > 0 {
			nonEmpty := false
			ends.Each(func(o kadm.ListedOffset) { nonEmpty = nonEmpty || o.Offset > 0 })
			if nonEmpty {
				return fmt.Errorf("replay: the output topic %s already holds records: a replay writes a whole history, so it needs a new (or empty) topic", topic)
			}
			return nil
		}
		if attempt >= 40 {
			if err == nil {
				err = ends.Error()
			}
			return fmt.Errorf("replay: output topic %s: %w", topic, err)
		}
		t := time.NewTimer(time.Duration(attempt+1) * 50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// add buffers the records of a batch's kept output.
func (k *kafkaOutput) add(res *engine.Result) {
	if k.events != "" {
		for i := range res.Events {
			e := &res.Events[i]
			k.recs = append(k.recs, &kgo.Record{Topic: k.events, Key: []byte(e.Key()), Value: engine.AppendEventJSON(nil, e)})
		}
	}
	if k.access != "" {
		for i := range res.Access {
			a := &res.Access[i]
			k.recs = append(k.recs, &kgo.Record{Topic: k.access, Key: []byte(a.Key()), Value: engine.AppendAccessEventJSON(nil, a)})
		}
	}
}

// commit writes the buffered records in one transaction. A failed record
// aborts the transaction: kgo would commit the others.
func (k *kafkaOutput) commit() error {
	if len(k.recs) == 0 {
		return nil
	}
	recs := k.recs
	k.recs = nil
	ctx := context.Background()
	if err := k.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("replay: beginning a transaction: %w", err)
	}
	var (
		mu       sync.Mutex
		firstErr error
	)
	for _, r := range recs {
		k.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("producing to %s: %w", r.Topic, err)
				}
				mu.Unlock()
			}
		})
	}
	ferr := k.cl.Flush(ctx)
	endCtx, cancel := context.WithTimeout(ctx, k.timeout+10*time.Second)
	defer cancel()
	mu.Lock()
	perr := firstErr
	mu.Unlock()
	if perr == nil && ferr != nil {
		perr = ferr
	}
	if perr != nil {
		_ = k.cl.AbortBufferedRecords(endCtx)
		_ = k.cl.EndTransaction(endCtx, kgo.TryAbort)
		return fmt.Errorf("replay: output transaction aborted: %w", perr)
	}
	if err := k.cl.EndTransaction(endCtx, kgo.TryCommit); err != nil {
		return fmt.Errorf("replay: committing an output transaction: %w", err)
	}
	k.commits++
	return nil
}

func (k *kafkaOutput) close() { k.cl.Close() }
