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
	timeout        time.Duration
	open           bool  // a transaction is open
	n              int   // records produced in it
	commits        int64 // transactions committed with records
	err            error // the output failed: the replay stops

	mu         sync.Mutex
	produceErr error // first failed record of the open transaction
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

// add produces the records of a batch's kept output in the open
// transaction (beginning one if none is): kgo buffers a bounded number of
// records and sends them while the batch is being handed over.
func (k *kafkaOutput) add(res *engine.Result) error {
	if k.err != nil {
		return k.err
	}
	if !k.open {
		if err := k.cl.BeginTransaction(); err != nil {
			k.err = fmt.Errorf("replay: beginning a transaction: %w", err)
			return k.err
		}
		k.open = true
	}
	ctx := context.Background()
	if k.events != "" {
		for i := range res.Events {
			e := &res.Events[i]
			k.n++
			k.cl.Produce(ctx, &kgo.Record{Topic: k.events, Key: []byte(e.Key()), Value: engine.AppendEventJSON(nil, e)}, k.promise)
		}
	}
	if k.access != "" {
		for i := range res.Access {
			a := &res.Access[i]
			k.n++
			k.cl.Produce(ctx, &kgo.Record{Topic: k.access, Key: []byte(a.Key()), Value: engine.AppendAccessEventJSON(nil, a)}, k.promise)
		}
	}
	return nil
}

// promise records the first failed record of the open transaction.
func (k *kafkaOutput) promise(r *kgo.Record, err error) {
	if err == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.produceErr == nil {
		k.produceErr = fmt.Errorf("producing to %s: %w", r.Topic, err)
	}
}

// commit flushes the open transaction and commits it; a failed record
// aborts it instead (kgo would commit the others), and the replay stops.
func (k *kafkaOutput) commit() error {
	if k.err != nil {
		return k.err
	}
	if !k.open {
		return nil
	}
	k.open = false
	ctx := context.Background()
	ferr := k.cl.Flush(ctx)
	endCtx, cancel := context.WithTimeout(ctx, k.timeout+10*time.Second)
	defer cancel()
	k.mu.Lock()
	perr := k.produceErr
	k.mu.Unlock()
	if perr == nil && ferr != nil {
		perr = ferr
	}
	if perr != nil {
		_ = k.cl.AbortBufferedRecords(endCtx)
		_ = k.cl.EndTransaction(endCtx, kgo.TryAbort)
		k.err = fmt.Errorf("replay: output transaction aborted: %w", perr)
		return k.err
	}
	if err := k.cl.EndTransaction(endCtx, kgo.TryCommit); err != nil {
		k.err = fmt.Errorf("replay: committing an output transaction: %w", err)
		return k.err
	}
	if k.n > 0 {
		k.commits++
	}
	k.n = 0
	return nil
}

func (k *kafkaOutput) close() { k.cl.Close() }
