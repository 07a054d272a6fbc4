package bench

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/smartgroups/smartgroups/internal/process"
)

// process runs file mode over the initial load, then (timed) over the
// live stream, or its first ProcessEvents records, on the same state.
func (r *runner) process(ctx context.Context) error {
	dir := filepath.Join(r.dir, "process")
	tally := &eventTally{comm: r.comm}
	if r.keepFinal {
		tally.final = map[string]bool{}
	}
	one := func(path string, lines int) (process.Stats, time.Duration, error) {
		f, err := os.Open(path)
		if err != nil {
			return process.Stats{}, 0, err
		}
		defer func() { _ = f.Close() }()
		var in io.Reader = bufio.NewReaderSize(f, 1<<20)
		if lines >= 0 {
			in = &lineLimiter{r: in, left: lines}
		}
		t := time.Now()
		st, err := process.Run(ctx, process.Options{DataDir: dir, BatchSize: r.o.BatchSize}, in, tally, io.Discard)
		return st, time.Since(t), err
	}
	dd := &r.res.Details
	dd.ProcessRecords = prefix(r.o.ProcessEvents, DefaultProcessEvents, r.res.Events)
	lst, ld, err := one(r.load, -1)
	if err != nil {
		return err
	}
	dd.ProcessLoad = ld
	r.log("process (file mode): initial load of %d records in %s: %.0f records/s, %d events", lst.Records, ld.Round(time.Millisecond),
		float64(lst.Records)/ld.Seconds(), lst.Events)
	tally.templates = map[string]int{}
	stopProfile, err := startCPUProfile(r.o.ProcessCPUProfile)
	if err != nil {
		return err
	}
	st, d, err := one(r.live, dd.ProcessRecords)
	stopProfile()
	if err != nil {
		return err
	}
	dd.Process, dd.ProcessEvents, dd.ProcessDeadLetters = d, st.Events, lst.DeadLetters+st.DeadLetters
	dd.ProcessRecords = st.Records
	dd.TemplateEvents = tally.templates
	if r.keepFinal {
		r.finalProcess = members(tally.final)
	}
	r.res.ProcessEventsPerSec = float64(st.Records) / d.Seconds()
	if dd.ProcessStateBytes, err = settledSize(dir); err != nil {
		return err
	}
	r.log("process (file mode): %d of %d live records in %s: %.0f records/s, %d events, %d dead letters", st.Records, r.res.Events,
		d.Round(time.Millisecond), r.res.ProcessEventsPerSec, st.Events, dd.ProcessDeadLetters)
	return nil
}

// lineLimiter reads up to left newline-terminated lines from r.
type lineLimiter struct {
	r    io.Reader
	left int
}

func (l *lineLimiter) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, io.EOF
	}
	n, err := l.r.Read(p)
	for i := 0; i < n; i++ {
		if p[i] == '\n' {
			if l.left--; l.left == 0 {
				return i + 1, nil
			}
		}
	}
	return n, err
}
