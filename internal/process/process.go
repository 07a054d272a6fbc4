package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartgroups/smartgroups/connectors/file"
	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/state"
)

// Options configure a run.
type Options struct {
	// DataDir holds the state; empty means a temporary directory removed
	// at the end, so every run starts from nothing.
	DataDir string
	// Now fixes the clock when HasNow; otherwise the event clock is used.
	Now    rule.Millis
	HasNow bool
	// BatchSize is the number of input lines per committed batch.
	BatchSize int
	// Limits; zero value means engine.DefaultLimits().
	Limits engine.Limits
	// Registerer receives engine metrics (may be nil).
	Registerer prometheus.Registerer
	// Access, when set, receives the access events (SPEC §4.3) as NDJSON
	// in emission order; otherwise they are not written.
	Access io.Writer
}

// Stats summarize a run.
type Stats struct {
	Records     int
	Events      int
	Access      int
	DeadLetters int
}

// Source yields the input records of a run, in the order they are
// applied: up to max records per call, and io.EOF (possibly with the last
// records) once exhausted. *file.Source reads NDJSON lines; replay merges
// Kafka topics.
type Source interface {
	Next(max int) ([]engine.Record, error)
}

// Sink receives the output of each committed batch: Write with its
// events, access events and dead letters, then Flush. A run acknowledges
// a batch's outbox once Flush returned, so what Flush returned for is
// never written again. *file.Sink writes NDJSON.
type Sink interface {
	Write(res *engine.Result) error
	Flush() error
}

var _ Sink = (*file.Sink)(nil)

// Run reads in, applies every record in order and writes membership events
// to out and dead letters to dead.
func Run(ctx context.Context, o Options, in io.Reader, out, dead io.Writer) (stats Stats, err error) {
	sink := file.NewSink(out, dead)
	if o.Access != nil {
		sink.WithAccess(o.Access)
	}
	maxRecord := o.Limits.MaxRecordBytes
	if o.Limits == (engine.Limits{}) {
		maxRecord = engine.DefaultLimits().MaxRecordBytes
	}
	// A line holds a record value, maybe escaped as a JSON string: leave
	// room for values over the size limit, which are dead-lettered.
	src := file.NewSourceMax(in, max(file.MaxLineBytes, 8*maxRecord))
	return RunSource(ctx, o, src, sink)
}

// RunSource is Run over any source and sink: the engine of `process`
// (one partition, the event clock unless Options fix now, one synced
// batch per BatchSize records), fed by src, its output written to sink.
// Options.Access is not used: the sink decides what to write.
func RunSource(ctx context.Context, o Options, src Source, sink Sink) (stats Stats, err error) {
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	dir := o.DataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "smartgroups-process-")
		if err != nil {
			return stats, fmt.Errorf("process: temp dir: %w", err)
		}
		defer func() { _ = os.RemoveAll(tmp) }()
		dir = tmp
	}
	st, err := state.Open(dir, state.Options{})
	if err != nil {
		return stats, err
	}
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	cfg := engine.DefaultConfig()
	cfg.Registerer = o.Registerer
	if o.Limits != (engine.Limits{}) {
		cfg.Limits = o.Limits
	}
	if o.HasNow {
		cfg.Clock, cfg.Now = engine.ClockFixed, o.Now
	}
	eng, err := engine.New(st, cfg)
	if err != nil {
		return stats, err
	}
	// Output committed by an earlier run that crashed before writing it.
	for _, p := range []int32{engine.DefPartition, 0} {
		pending, err := eng.Pending(p)
		if err != nil {
			return stats, err
		}
		for _, en := range pending {
			if err := sink.Write(&engine.Result{Events: en.Events, Access: en.Access, DeadLetters: en.DeadLetters}); err != nil {
				return stats, err
			}
		}
		if err := sink.Flush(); err != nil {
			return stats, err
		}
		if len(pending) > 0 {
			if err := eng.Ack(p, pending[len(pending)-1].ID); err != nil {
				return stats, err
			}
		}
	}
	res, err := eng.Assign(ctx, []int32{0})
	if err != nil {
		return stats, err
	}
	if err := emit(eng, sink, res, &stats); err != nil {
		return stats, err
	}
	for {
		recs, rerr := src.Next(o.BatchSize)
		if len(recs) > 0 {
			stats.Records += len(recs)
			res, err := eng.Process(ctx, recs)
			if err != nil {
				return stats, err
			}
			if err := emit(eng, sink, res, &stats); err != nil {
				return stats, err
			}
		}
		if errors.Is(rerr, io.EOF) {
			return stats, nil
		}
		if rerr != nil {
			return stats, rerr
		}
	}
}

func emit(eng *engine.Engine, sink Sink, res *engine.Result, stats *Stats) error {
	if err := sink.Write(res); err != nil {
		return err
	}
	if err := sink.Flush(); err != nil {
		return err
	}
	stats.Events += len(res.Events)
	stats.Access += len(res.Access)
	stats.DeadLetters += len(res.DeadLetters)
	for _, o := range res.Outbox {
		if err := eng.Ack(o.Partition, o.ID); err != nil {
			return err
		}
	}
	return nil
}
