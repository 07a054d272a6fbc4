package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/engine"
)

// hookLog records the Consumer hooks' calls.
type hookLog struct {
	mu       sync.Mutex
	assigned []Assignment
	revoked  []Assignment
	offsets  Offsets
}

func (h *hookLog) hooks() ConsumerHooks {
	return ConsumerHooks{
		OnAssigned: func(_ context.Context, a Assignment) (Offsets, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.assigned = append(h.assigned, a)
			return h.offsets, nil
		},
		OnRevoked: func(_ context.Context, r Assignment) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.revoked = append(h.revoked, r)
		},
	}
}

func count(a []Assignment) int {
	n := 0
	for _, x := range a {
		for _, ps := range x {
			n += len(ps)
		}
	}
	return n
}

func (h *hookLog) counts() (assigned, revoked int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return count(h.assigned), count(h.revoked)
}

func memberRecord(topic string, p int32, i int) *kgo.Record {
	return &kgo.Record{Topic: topic, Partition: p,
		Key: fmt.Appendf(nil, "acme/u%d-%d", p, i), Value: fmt.Appendf(nil, `{"i":%d}`, i)}
}

// pollN polls until n records arrived, then checks that nothing more comes.
func pollN(t *testing.T, c *Consumer, n int) []engine.Record {
	t.Helper()
	var out []engine.Record
	deadline := time.Now().Add(30 * time.Second)
	for len(out) < n {
		require.True(t, time.Now().Before(deadline), "got %d of %d records", len(out), n)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		recs, err := c.Poll(ctx, 0)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		require.NoError(t, err)
		out = append(out, recs...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	extra, err := c.Poll(ctx, 0)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Empty(t, extra)
	return out
}

func fastGroup() []kgo.Opt {
	return []kgo.Opt{kgo.HeartbeatInterval(200 * time.Millisecond), kgo.FetchMaxWait(200 * time.Millisecond)}
}

func TestConsumerSeeksToProvidedOffsets(t *testing.T) {
	e := newEnv(t)
	e.ensureTopics()
	profiles, activities, properties := e.cfg.Topic(engine.KindProfiles), e.cfg.Topic(engine.KindActivities), e.cfg.Topic(engine.KindProperties)

	var recs []*kgo.Record
	for p := range int32(3) {
		for i := range 10 {
			recs = append(recs, memberRecord(profiles, p, i))
		}
	}
	e.produce(recs...)
	var txn []*kgo.Record
	for i := range 5 {
		txn = append(txn, memberRecord(activities, 1, i))
	}
	e.produceTxn(true, txn...)
	e.produceTxn(false, memberRecord(properties, 2, 0), memberRecord(properties, 2, 1))

	h := &hookLog{offsets: Offsets{
		profiles:   {0: 5, 1: 9, 2: -1},
		activities: {1: 2},
	}}
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	c, err := NewConsumer(e.cfg, h.hooks(), m, fastGroup()...)
	require.NoError(t, err)

	// profiles: 5 from p0, 1 from p1, 10 from p2; activities p1: 3;
	// properties: the aborted transaction is invisible.
	got := pollN(t, c, 5+1+10+3)
	first := map[string]int64{}
	n := map[string]int{}
	for _, r := range got {
		k := fmt.Sprintf("%s/%d", r.Kind, r.Partition)
		if _, ok := first[k]; !ok {
			first[k] = r.Offset
		}
		n[k]++
		require.Equal(t, e.cfg.Topic(r.Kind), r.Topic)
		require.False(t, r.Produced.IsZero())
	}
	require.Equal(t, map[string]int64{"profiles/0": 5, "profiles/1": 9, "profiles/2": 0, "activities/1": 2}, first)
	require.Equal(t, map[string]int{"profiles/0": 5, "profiles/1": 1, "profiles/2": 10, "activities/1": 3}, n)

	a, _ := h.counts()
	require.Equal(t, 9, a, "all 9 member partitions assigned to the only member")
	assigned := c.Assigned()
	require.Len(t, assigned, 3)
	for _, ps := range assigned {
		require.Len(t, ps, 3)
	}

	lag := c.Lag()
	require.Equal(t, int64(0), lag[profiles][0])
	require.Equal(t, int64(0), lag[profiles][2])
	// The commit marker after the last activity is counted.
	require.Equal(t, int64(1), lag[activities][1])
	require.Equal(t, 0.0, testutil.ToFloat64(m.ConsumerLag.WithLabelValues(profiles, "0")))
	require.GreaterOrEqual(t, testutil.ToFloat64(m.Rebalances), 1.0)

	// Records produced now arrive too.
	e.produce(memberRecord(profiles, 0, 10))
	more := pollN(t, c, 1)
	require.Equal(t, int64(10), more[0].Offset)

	c.Close()
	c.Close()
	_, revoked := h.counts()
	require.Equal(t, 9, revoked, "leaving the group revokes everything")
	_, err = c.Poll(context.Background(), 0)
	require.ErrorIs(t, err, ErrConsumerClosed)
}

func TestConsumerOnAssignedError(t *testing.T) {
	e := newEnv(t)
	e.ensureTopics()
	c, err := NewConsumer(e.cfg, ConsumerHooks{
		OnAssigned: func(context.Context, Assignment) (Offsets, error) {
			return nil, fmt.Errorf("state store unavailable")
		},
	}, nil, fastGroup()...)
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		_, err := c.Poll(ctx, 0)
		require.Error(t, err)
		if !errors.Is(err, ctx.Err()) {
			require.ErrorContains(t, err, "state store unavailable")
			return
		}
		require.NoError(t, ctx.Err(), "OnAssigned error never surfaced")
	}
}

func TestConsumerDefinitions(t *testing.T) {
	e := newEnv(t)
	e.ensureTopics()
	defs := e.cfg.Topic(engine.KindDefinitions)
	def := func(k, v string) *kgo.Record {
		r := &kgo.Record{Topic: defs, Key: []byte(k)}
		if v != "" {
			r.Value = []byte(v)
		}
		return r
	}
	e.produceTxn(true, def("acme/group/g1", `{"v":1}`), def("acme/group/g2", `{"v":2}`))
	e.produceTxn(false, def("acme/group/g3", `{"aborted":true}`))
	e.produce(def("acme/property/p1", `{"v":3}`), def("acme/group/g2", ""))

	c, err := NewConsumer(e.cfg, ConsumerHooks{}, nil, fastGroup()...)
	require.NoError(t, err)
	defer c.Close()
	ctx := e.ctx()
	got, err := c.ReadDefinitions(ctx)
	require.NoError(t, err)
	var keys []string
	for _, r := range got {
		require.Equal(t, engine.KindDefinitions, r.Kind)
		require.Equal(t, defs, r.Topic)
		keys = append(keys, string(r.Key))
	}
	require.Equal(t, []string{"acme/group/g1", "acme/group/g2", "acme/property/p1", "acme/group/g2"}, keys)
	require.True(t, got[3].Tombstone())
	require.False(t, got[0].Tombstone())

	_, err = c.ReadDefinitions(ctx)
	require.ErrorIs(t, err, ErrDefinitionsRead)

	// Later definitions are tailed and returned by Poll, with member records.
	e.produceTxn(true, def("acme/group/g4", `{"v":4}`))
	e.produce(memberRecord(e.cfg.Topic(engine.KindProfiles), 1, 0))
	recs := pollN(t, c, 2)
	sort.Slice(recs, func(i, j int) bool { return recs[i].Kind < recs[j].Kind })
	require.Equal(t, engine.KindDefinitions, recs[0].Kind)
	require.Equal(t, "acme/group/g4", string(recs[0].Key))
	require.Equal(t, engine.KindProfiles, recs[1].Kind)
}

func TestConsumerEmptyDefinitions(t *testing.T) {
	e := newEnv(t)
	e.ensureTopics()
	c, err := NewConsumer(e.cfg, ConsumerHooks{}, nil)
	require.NoError(t, err)
	defer c.Close()
	got, err := c.ReadDefinitions(e.ctx())
	require.NoError(t, err)
	require.Empty(t, got)
}

// TestConsumerRebalance checks that partitions move between two members
// with OnRevoked before the new owner's OnAssigned, and that every record is
// returned once overall when each owner seeks to the shared positions.
func TestConsumerRebalance(t *testing.T) {
	e := newEnv(t)
	e.ensureTopics()
	profiles := e.cfg.Topic(engine.KindProfiles)

	// Shared "engine state": the next offset per partition.
	var mu sync.Mutex
	pos := map[string]map[int32]int64{}
	hooks := func(h *hookLog) ConsumerHooks {
		return ConsumerHooks{
			OnAssigned: func(ctx context.Context, a Assignment) (Offsets, error) {
				_, _ = h.hooks().OnAssigned(ctx, a)
				mu.Lock()
				defer mu.Unlock()
				out := Offsets{}
				for t, ps := range pos {
					out[t] = map[int32]int64{}
					for p, o := range ps {
						out[t][p] = o
					}
				}
				return out, nil
			},
			OnRevoked: h.hooks().OnRevoked,
		}
	}
	seen := map[string]int{}
	apply := func(recs []engine.Record) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range recs {
			seen[fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)]++
			if pos[r.Topic] == nil {
				pos[r.Topic] = map[int32]int64{}
			}
			pos[r.Topic][r.Partition] = r.Offset + 1
		}
	}

	h1, h2 := &hookLog{}, &hookLog{}
	c1, err := NewConsumer(e.cfg, hooks(h1), nil, fastGroup()...)
	require.NoError(t, err)
	defer c1.Close()
	for p := range int32(3) {
		e.produce(memberRecord(profiles, p, 0))
	}
	apply(pollN(t, c1, 3))

	c2, err := NewConsumer(e.cfg, hooks(h2), nil, fastGroup()...)
	require.NoError(t, err)
	defer c2.Close()

	// Both poll until the group settled with partitions on both.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, c := range []*Consumer{c1, c2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
				recs, err := c.Poll(pctx, 0)
				pcancel()
				if err == nil {
					apply(recs)
				}
			}
		}()
	}
	for {
		a2, _ := h2.counts()
		_, r1 := h1.counts()
		if a2 > 0 && r1 > 0 {
			break
		}
		require.NoError(t, ctx.Err(), "no rebalance: h1 revoked %d, h2 assigned %d", r1, a2)
		time.Sleep(50 * time.Millisecond)
	}
	for p := range int32(3) {
		e.produce(memberRecord(profiles, p, 1))
	}
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == 6 {
			break
		}
		require.NoError(t, ctx.Err(), "saw %d of 6 records", n)
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for k, n := range seen {
		require.Equal(t, 1, n, k)
	}
	all := map[string]int{}
	for _, c := range []*Consumer{c1, c2} {
		for tp, ps := range c.Assigned() {
			all[tp] += len(ps)
		}
	}
	require.Equal(t, map[string]int{
		e.cfg.Topic(engine.KindProfiles): 3, e.cfg.Topic(engine.KindActivities): 3, e.cfg.Topic(engine.KindProperties): 3,
	}, all, "each partition owned by exactly one member")
	// Co-partitioning: a member owns the same partition numbers on every
	// member topic, so all of a member's records reach one engine.
	for i, c := range []*Consumer{c1, c2} {
		a := c.Assigned()
		want := sortedParts(a[e.cfg.Topic(engine.KindProfiles)])
		require.NotEmpty(t, want, "consumer %d owns nothing", i)
		for _, k := range MemberKinds {
			require.Equal(t, want, sortedParts(a[e.cfg.Topic(k)]), "consumer %d: %s", i, k)
		}
	}
}

func sortedParts(ps []int32) []int32 {
	out := append([]int32(nil), ps...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
