package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// fresh makes kadm metadata calls skip the client's metadata cache (which
// answers from data up to 5s old): kadm bypasses the cache when authorized
// operations are requested. Topic layout checks and leader lookups after an
// error must see the cluster as it is now.
func fresh(ctx context.Context) context.Context { return kadm.WithAuthorizedOps(ctx) }

// sleepCtx sleeps for d or until ctx is done, returning ctx's error then.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
