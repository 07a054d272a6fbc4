package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// rawConsume reads the member topics from the start with a plain franz-go
// consumer that does nothing with the records: the input ceiling.
func (r *runner) rawConsume(ctx context.Context) error {
	parts := map[string]map[int32]kgo.Offset{}
	for topic, ps := range r.liveStart {
		parts[topic] = map[int32]kgo.Offset{}
		for p, off := range ps {
			parts[topic][p] = kgo.NewOffset().At(off)
		}
	}
	cl, err := r.client(kgo.ConsumePartitions(parts))
	if err != nil {
		return err
	}
	defer cl.Close()
	want := r.res.Events
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	t := time.Now()
	got := 0
	for got < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %d of %d records: %w", got, want, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return ferr
		}
		got += fs.NumRecords()
	}
	d := time.Since(t)
	r.res.Details.RawConsume = d
	r.res.RawConsumeEventsPerSec = float64(got) / d.Seconds()
	r.log("raw consume: %d records in %s: %.0f records/s", got, d.Round(time.Millisecond), r.res.RawConsumeEventsPerSec)
	return nil
}
