package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/connectors/file"
	"github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/internal/process"
)

// Config configures a replay. Build it with DefaultConfig.
type Config struct {
	// Kafka names the brokers, the input topics (TopicPrefix), the owners
	// topic and the TLS and SASL settings. GroupID is not used: a replay
	// joins no consumer group.
	Kafka kafka.Config
	// DataDir receives the replay's state; it must not exist or be
	// empty. Empty: a temporary directory, removed at the end.
	DataDir string
	// EmitFrom, when HasEmitFrom, leaves out the membership and access
	// events whose ts is before it. Default: every event.
	EmitFrom    rule.Millis
	HasEmitFrom bool
	// OutputTopic and AccessOutputTopic receive the membership and access
	// events in Kafka transactions (TransactionalID). Empty: not written.
	OutputTopic       string
	AccessOutputTopic string
	// OutputFile, AccessOutputFile and DeadLetterFile receive the events,
	// the access events and the dead letters as NDJSON, as `process`
	// writes them. Empty: not written.
	OutputFile       string
	AccessOutputFile string
	DeadLetterFile   string
	// Definitions is an NDJSON file of definitions lines (as `process`
	// reads them) applied before the replayed records, whose keys replace
	// the definitions topic's records with the same keys. Empty: none.
	Definitions string
	// TransactionalID of the output producer. Default
	// "smartgroups-replay-<output topic>".
	TransactionalID string
	// OutputPartitions is the partition count of an output topic the
	// replay creates. Default (0): that of the member topics.
	OutputPartitions int32
	// BatchSize is the number of records per engine batch and output
	// transaction. Default 1000, as process: a batch's output is held in memory
	// and written to the store as one outbox entry.
	BatchSize int
	// Limits bound records and rules. Default engine.DefaultLimits().
	Limits engine.Limits
	// Progress, when set, receives a progress line every ProgressEvery.
	Progress      io.Writer
	ProgressEvery time.Duration
	// Logger logs what the replay does. Default: discard.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Kafka: kafka.DefaultConfig(), BatchSize: 1000, Limits: engine.DefaultLimits(),
		ProgressEvery: time.Second, Logger: slog.New(slog.DiscardHandler)}
}

// Summary is what a replay did.
type Summary struct {
	// Records are the input records replayed (topic records and
	// --definitions lines).
	Records int64 `json:"records"`
	// DefinitionsFromFile are the lines of Config.Definitions, and
	// DefinitionsOverridden the definitions topic's records they replaced.
	DefinitionsFromFile   int   `json:"definitions_from_file"`
	DefinitionsOverridden int64 `json:"definitions_overridden"`
	// ErasureTombstones are the definitions topic's tombstones written by
	// the engine for the blacklist entries of erased members, skipped
	// (and not counted in Records): the replay applies the erasures.
	ErasureTombstones int64 `json:"erasure_tombstones_skipped"`
	// Events and Access are the membership and access events written;
	// the ...BeforeEmitFrom ones were computed but left out.
	Events               int64 `json:"events"`
	EventsBeforeEmitFrom int64 `json:"events_before_emit_from"`
	Access               int64 `json:"access_events"`
	AccessBeforeEmitFrom int64 `json:"access_events_before_emit_from"`
	DeadLetters          int64 `json:"dead_letters"`
	// Transactions committed on the output topics.
	Transactions int64   `json:"transactions"`
	Seconds      float64 `json:"seconds"`
	RecordsPerS  float64 `json:"records_per_second"`
	// Ends are the end offsets the replay read up to, per input topic
	// and partition.
	Ends map[string]map[int32]int64 `json:"ends"`
}

// Run replays the input topics of cfg.Kafka from their start up to their
// end offsets as of the call, through the engine of `process`, and writes
// the output where cfg says.
func Run(ctx context.Context, cfg Config) (sum Summary, err error) {
	start := time.Now()
	if err := cfg.validate(); err != nil {
		return sum, err
	}
	log := cfg.Logger
	fileDefs, err := readDefinitions(cfg.Definitions, cfg.Limits)
	if err != nil {
		return sum, err
	}
	if err := checkDataDir(cfg.DataDir); err != nil {
		return sum, err
	}
	opts, err := cfg.Kafka.ClientOpts()
	if err != nil {
		return sum, err
	}
	cl, err := kgo.NewClient(append(opts, kgo.ClientID(cfg.Kafka.ClientID+"-replay"))...)
	if err != nil {
		return sum, fmt.Errorf("replay: kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	inputs := append(cfg.Kafka.MemberTopics(), cfg.Kafka.Topic(engine.KindDefinitions))
	kinds := map[string]engine.Kind{}
	for _, t := range inputs {
		kinds[t], _ = cfg.Kafka.Kind(t)
	}
	ranges, err := kafka.Ranges(ctx, adm, inputs...)
	if err != nil {
		return sum, fmt.Errorf("replay: input topics (prefix %q): %w", cfg.Kafka.TopicPrefix, err)
	}
	sum.Ends = map[string]map[int32]int64{}
	memberParts := int32(0)
	for _, r := range ranges {
		if sum.Ends[r.Topic] == nil {
			sum.Ends[r.Topic] = map[int32]int64{}
		}
		sum.Ends[r.Topic][r.Partition] = r.End
		if r.Topic == cfg.Kafka.Topic(engine.KindProfiles) {
			memberParts++
		}
	}

	var out *kafkaOutput
	if cfg.OutputTopic != "" || cfg.AccessOutputTopic != "" {
		parts := cfg.OutputPartitions
		if parts <= 0 {
			parts = memberParts
		}
		out, err = openKafkaOutput(ctx, cfg, adm, parts)
		if err != nil {
			return sum, err
		}
		defer out.close()
	}
	files, err := openFiles(cfg)
	if err != nil {
		return sum, err
	}
	defer func() {
		if cerr := files.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()

	m := newMerger(ranges, kinds)
	r := &replayer{cfg: cfg, m: m, out: out, files: files, sink: files.sink(), defs: fileDefs,
		overridden: map[string]bool{}, pending: map[int64]pendingDef{}, sum: &sum}
	for _, d := range fileDefs {
		r.overridden[string(d.Key)] = true
	}
	m.start(ctx, cl)
	defer m.stop()
	stopProgress := r.progress(start)
	log.Info("replaying", "topics", inputs, "offsets", m.total, "definitions_file", cfg.Definitions)
	_, err = process.RunSource(ctx, process.Options{DataDir: cfg.DataDir, BatchSize: cfg.BatchSize, Limits: cfg.Limits}, r, r)
	stopProgress()
	if err != nil {
		return sum, err
	}
	if err := r.finish(); err != nil {
		return sum, err
	}
	for _, p := range m.readers {
		sum.ErasureTombstones += p.skipped.Load()
	}
	sum.Seconds = time.Since(start).Seconds()
	if sum.Seconds > 0 {
		sum.RecordsPerS = float64(sum.Records) / sum.Seconds
	}
	if out != nil {
		sum.Transactions = out.commits
	}
	return sum, nil
}

func (c *Config) validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return err
	}
	if err := c.Limits.Validate(); err != nil {
		return err
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = time.Second
	}
	if c.OutputTopic != "" && c.OutputTopic == c.AccessOutputTopic {
		return errors.New("replay: --output-topic and --access-output-topic must differ")
	}
	var files []string
	for _, f := range []string{c.OutputFile, c.AccessOutputFile, c.DeadLetterFile} {
		if f != "" {
			if slices.Contains(files, f) {
				return fmt.Errorf("replay: %s is given as two outputs", f)
			}
			files = append(files, f)
		}
	}
	if c.TransactionalID == "" {
		c.TransactionalID = "smartgroups-replay-" + c.OutputTopic
		if c.OutputTopic == "" {
			c.TransactionalID = "smartgroups-replay-" + c.AccessOutputTopic
		}
	}
	return nil
}

// checkDataDir refuses a data dir that exists and is not empty: the
// replay's state must start from nothing.
func checkDataDir(dir string) error {
	if dir == "" {
		return nil
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("replay: --data-dir: %w", err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("replay: --data-dir %s is not empty: a replay starts from an empty state; give a new directory (or none, for a temporary one)", dir)
	}
	return nil
}

// readDefinitions reads the --definitions file: definitions lines only.
func readDefinitions(path string, lim engine.Limits) ([]engine.Record, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("replay: --definitions: %w", err)
	}
	defer func() { _ = f.Close() }()
	src := file.NewSourceMax(f, max(file.MaxLineBytes, 8*lim.MaxRecordBytes))
	var out []engine.Record
	for {
		recs, rerr := src.Next(1000)
		for _, r := range recs {
			if r.Err != "" {
				return nil, fmt.Errorf("replay: --definitions %s line %d: %s", path, r.Offset+1, r.Err)
			}
			if r.Kind != engine.KindDefinitions {
				return nil, fmt.Errorf("replay: --definitions %s line %d: topic %q: the file holds definitions only", path, r.Offset+1, r.Topic)
			}
			out = append(out, r)
		}
		if errors.Is(rerr, io.EOF) {
			return out, nil
		}
		if rerr != nil {
			return nil, fmt.Errorf("replay: --definitions: %w", rerr)
		}
	}
}

// pos is where a replayed record comes from.
type pos struct {
	topic     string
	partition int32
	offset    int64
	fromFile  bool
}

// pendingDef is a --definitions line the engine refused so far, with its
// last dead letter.
type pendingDef struct {
	rec  engine.Record
	line int64
	dead engine.DeadLetter
}

// replayer is the process.Source and process.Sink of a replay.
type replayer struct {
	cfg   Config
	m     *merger
	out   *kafkaOutput
	files *fileOutputs
	sink  *file.Sink
	sum   *Summary

	defs       []engine.Record      // --definitions lines, applied first
	defsSent   bool                 // defs were handed to the engine
	overridden map[string]bool      // definitions keys replaced by defs
	pending    map[int64]pendingDef // refused defs, by line
	retry      bool                 // hand the pending defs over again next
	eof        bool

	next    int64 // index of the next record handed to the engine
	base    int64 // index of the first record of the last batch
	batch   []pos // positions of the last batch's records
	batchMu sync.Mutex
}

var (
	_ process.Source = (*replayer)(nil)
	_ process.Sink   = (*replayer)(nil)
)

// Next hands the engine the --definitions lines first, then the merged
// topic records; refused --definitions lines again right after every
// definitions record of the topic (they may need a schema or group
// declared later).
func (r *replayer) Next(maxRecs int) ([]engine.Record, error) {
	r.batchMu.Lock()
	defer r.batchMu.Unlock()
	r.base, r.batch = r.next, r.batch[:0]
	var out []engine.Record
	add := func(rec engine.Record, p pos) {
		rec.Partition, rec.Offset = 0, r.next
		r.next++
		r.batch = append(r.batch, p)
		out = append(out, rec)
	}
	if !r.defsSent {
		r.defsSent = true
		for _, d := range r.defs {
			line := d.Offset
			d.Topic = string(engine.KindDefinitions)
			add(d, pos{topic: r.cfg.Definitions, offset: line, fromFile: true})
			r.pending[line] = pendingDef{rec: d, line: line}
			r.sum.Records++
		}
		r.sum.DefinitionsFromFile = len(r.defs)
		if len(out) > 0 {
			return out, nil
		}
	}
	if r.retry && len(r.pending) > 0 {
		r.retry = false
		lines := make([]int64, 0, len(r.pending))
		for l := range r.pending {
			lines = append(lines, l)
		}
		slices.Sort(lines)
		for _, l := range lines {
			add(r.pending[l].rec, pos{topic: r.cfg.Definitions, offset: l, fromFile: true})
		}
		return out, nil
	}
	if r.eof {
		return nil, io.EOF
	}
	for len(out) < maxRecs {
		kr, p, err := r.m.next()
		if errors.Is(err, io.EOF) {
			r.eof = true
			if len(out) == 0 {
				return nil, io.EOF
			}
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("replay: reading the input: %w", err)
		}
		r.sum.Records++
		if p.kind == engine.KindDefinitions && r.overridden[string(kr.Key)] {
			r.sum.DefinitionsOverridden++
			continue
		}
		rec := engine.Record{Kind: p.kind, Topic: kr.Topic, Key: kr.Key, Value: kr.Value, Produced: kr.Timestamp}
		add(rec, pos{topic: kr.Topic, partition: kr.Partition, offset: kr.Offset})
		if p.kind == engine.KindDefinitions && len(r.pending) > 0 {
			// The refused --definitions lines are tried again right
			// after this definition, whatever the batch size.
			r.retry = true
			return out, nil
		}
	}
	return out, nil
}

// erasureTombstone reports whether a definitions record is a tombstone the
// engine wrote for the blacklist entries of an erased member: the replay
// applies the erasure itself.
func erasureTombstone(r *kgo.Record) bool {
	if r.Value != nil {
		return false
	}
	for _, h := range r.Headers {
		if h.Key == kafka.HeaderErasure {
			return true
		}
	}
	return false
}

// Write filters a batch's output and writes it: events and access events
// from EmitFrom on, dead letters with the position the record had on its
// topic (or in the --definitions file).
func (r *replayer) Write(res *engine.Result) error {
	r.batchMu.Lock()
	defer r.batchMu.Unlock()
	kept := engine.Result{}
	for _, ev := range res.Events {
		if r.before(ev.TS) {
			r.sum.EventsBeforeEmitFrom++
			continue
		}
		kept.Events = append(kept.Events, ev)
	}
	for _, a := range res.Access {
		if r.before(a.TS) {
			r.sum.AccessBeforeEmitFrom++
			continue
		}
		kept.Access = append(kept.Access, a)
	}
	refused := map[int64]bool{}
	for _, d := range res.DeadLetters {
		i := d.Offset - r.base
		if i < 0 || i >= int64(len(r.batch)) {
			kept.DeadLetters = append(kept.DeadLetters, d)
			continue
		}
		p := r.batch[i]
		d.Topic, d.Partition, d.Offset = p.topic, p.partition, p.offset
		if p.fromFile {
			// Held back: the line is tried again after later definitions.
			pd := r.pending[p.offset]
			pd.dead = d
			r.pending[p.offset] = pd
			refused[p.offset] = true
			continue
		}
		kept.DeadLetters = append(kept.DeadLetters, d)
	}
	for _, p := range r.batch {
		if p.fromFile && !refused[p.offset] {
			delete(r.pending, p.offset)
		}
	}
	r.sum.Events += int64(len(kept.Events))
	r.sum.Access += int64(len(kept.Access))
	r.sum.DeadLetters += int64(len(kept.DeadLetters))
	if err := r.sink.Write(&kept); err != nil {
		return err
	}
	if r.out != nil {
		return r.out.add(&kept)
	}
	return nil
}

// Flush commits the batch's output: the Kafka transaction, then the files.
func (r *replayer) Flush() error {
	if r.out != nil {
		if err := r.out.commit(); err != nil {
			return err
		}
	}
	return r.sink.Flush()
}

// finish writes the dead letters of the --definitions lines that were
// never accepted.
func (r *replayer) finish() error {
	if len(r.pending) == 0 {
		return nil
	}
	lines := make([]int64, 0, len(r.pending))
	for l := range r.pending {
		lines = append(lines, l)
	}
	slices.Sort(lines)
	res := &engine.Result{}
	for _, l := range lines {
		res.DeadLetters = append(res.DeadLetters, r.pending[l].dead)
	}
	r.sum.DeadLetters += int64(len(res.DeadLetters))
	if err := r.sink.Write(res); err != nil {
		return err
	}
	return r.sink.Flush()
}

// before reports whether an event's ts is before EmitFrom.
func (r *replayer) before(ts string) bool {
	if !r.cfg.HasEmitFrom {
		return false
	}
	t, err := rule.ParseTime(ts)
	return err == nil && t < r.cfg.EmitFrom
}

// progress prints a progress line every ProgressEvery until the returned
// function is called.
func (r *replayer) progress(start time.Time) func() {
	w := r.cfg.Progress
	if w == nil {
		return func() {}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(r.cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				fmt.Fprintf(w, "\r%s\n", progressLine(r.m, start))
				return
			case <-t.C:
				fmt.Fprintf(w, "\r%s", progressLine(r.m, start))
			}
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}

func progressLine(m *merger, start time.Time) string {
	n, total := m.done()
	el := time.Since(start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(n) / el
	}
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(n) / float64(total)
	}
	eta := "-"
	if rate > 0 && total > n {
		eta = (time.Duration(float64(total-n)/rate) * time.Second).Round(time.Second).String()
	}
	line := fmt.Sprintf("replay: %d/%d offsets (%.1f%%), %.0f records/s, ETA %s", n, total, pct, rate, eta)
	return line + strings.Repeat(" ", max(0, 72-len(line)))
}
