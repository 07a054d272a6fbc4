package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/internal/demo"
	"github.com/smartgroups/smartgroups/internal/serve"
)

func newDemoCmd() *cobra.Command {
	cfg := serve.DefaultConfig()
	cfg.DataDir = ""
	var (
		sf      serveFlags
		members int
		rate    float64
		seed    uint64
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run broker, engine and HTTP in one process, fed with a generated community",
		Long: `Starts the embedded Kafka-compatible broker, the engine and the HTTP endpoints,
defines smart groups of every trigger kind in two spots, creates a community
of members and keeps producing activity at --rate records per second.
Membership changes are printed as they happen. Ctrl-C stops.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.DataDir == "" {
				dir, err := os.MkdirTemp("", "smartgroups-demo-")
				if err != nil {
					return err
				}
				defer func() { _ = os.RemoveAll(dir) }()
				cfg.DataDir = dir
			}
			if err := sf.apply(&cfg); err != nil {
				return err
			}
			return runDemo(cmd.Context(), cmd.OutOrStdout(), cfg, demo.Config{Spots: []string{"acme", "globex"}, Members: members, Seed: seed}, rate)
		},
	}
	addServeFlags(cmd.Flags(), &cfg, &sf)
	cmd.Flags().Lookup("data-dir").Usage = "state directory (default: a temporary directory removed at exit)"
	cmd.Flags().IntVar(&members, "members", 2000, "members per spot")
	cmd.Flags().Float64Var(&rate, "rate", 50, "live records per second after the initial load")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "seed of the generated community")
	return cmd
}

func runDemo(ctx context.Context, out io.Writer, cfg serve.Config, dc demo.Config, rate float64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var adds, removes atomic.Int64
	cfg.OnEvents = func(evs []engine.Event) {
		for _, e := range evs {
			if e.Op == engine.OpAdd {
				adds.Add(1)
			} else {
				removes.Add(1)
			}
		}
		if len(evs) > 8 {
			fmt.Fprintf(out, "  %d membership changes (initial load or backfill); totals: %d adds, %d removes\n", len(evs), adds.Load(), removes.Load())
			return
		}
		for _, e := range evs {
			sign := "+"
			if e.Op == engine.OpRemove {
				sign = "-"
			}
			fmt.Fprintf(out, "%s %-28s %-8s %-11s seq %d\n", sign, e.Spot+"/"+e.Group, e.Member, e.Reason, e.Seq)
		}
	}
	ready := make(chan serve.Ready, 1)
	cfg.OnReady = func(r serve.Ready) { ready <- r }
	errc := make(chan error, 1)
	go func() { errc <- serve.Run(ctx, cfg) }()

	var r serve.Ready
	select {
	case r = <-ready:
	case err := <-errc:
		return err
	}
	fmt.Fprint(out, demo.Banner{HTTPAddr: r.HTTPAddr, Broker: r.Brokers[0], TopicPrefix: cfg.Kafka.TopicPrefix,
		Spot: dc.Spots[0], Token: bannerToken(cfg, dc.Spots[0])})

	gen := make(chan error, 1)
	go func() { gen <- produceCommunity(ctx, r.Brokers, cfg.Kafka.TopicPrefix, dc, rate) }()
	select {
	case err := <-errc:
		return err
	case err := <-gen:
		if err != nil && !errors.Is(err, context.Canceled) {
			cancel()
			if serr := <-errc; serr != nil {
				return errors.Join(err, serr)
			}
			return err
		}
		return <-errc
	}
}

// bannerToken is the token the banner's requests on spot carry: the admin
// token, or else that spot's token; empty when the API is open.
func bannerToken(cfg serve.Config, spot string) string {
	if cfg.APIToken != "" {
		return cfg.APIToken
	}
	for _, st := range cfg.SpotTokens {
		if st.Spot == spot {
			return st.Token
		}
	}
	return ""
}

// produceCommunity writes the definitions and the members, then a live
// stream at rate records per second, until ctx is done.
func produceCommunity(ctx context.Context, brokers []string, prefix string, dc demo.Config, rate float64) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	g := demo.New(dc)
	send := func(recs []demo.Record) error {
		krecs := make([]*kgo.Record, len(recs))
		for i, r := range recs {
			krecs[i] = &kgo.Record{Topic: prefix + string(r.Kind), Key: []byte(r.Key), Value: r.Value}
		}
		return cl.ProduceSync(ctx, krecs...).FirstErr()
	}
	if err := send(g.Definitions()); err != nil {
		return fmt.Errorf("demo: producing definitions: %w", err)
	}
	if err := send(g.Members(time.Now())); err != nil {
		return fmt.Errorf("demo: producing members: %w", err)
	}
	if rate <= 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now := <-tick.C:
			r := g.Next(now)
			cl.Produce(ctx, &kgo.Record{Topic: prefix + string(r.Kind), Key: []byte(r.Key), Value: r.Value}, nil)
		}
	}
}
