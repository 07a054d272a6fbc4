// Command downstream is an example consumer of the smartgroups memberships
// and access topics: it keeps the membership table and the access table
// (who has access to which linked resource) in memory (see package table),
// prints every change and every breach of the streams' guarantees
// (duplicate or missing seq, ops out of order), and a summary on exit.
//
//	go run ./examples/downstream --brokers 127.0.0.1:9092
//
// It reads with segmentio/kafka-go, read_committed, from the start of every
// partition. Exit status: 0, or 1 on an error, or 2 when --fail-on-violation
// is set and a violation was seen.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/smartgroups/smartgroups/examples/downstream/table"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("downstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated seed brokers")
	topic := fs.String("topic", table.DefaultTopic, "memberships topic")
	accessTopic := fs.String("access-topic", table.DefaultAccessTopic, "access topic (empty: do not read it)")
	quiet := fs.Bool("quiet", false, "do not print each change")
	strict := fs.Bool("strict", false, "require every key's history to start at seq 1 (uncompacted topics)")
	every := fs.Duration("stats", 10*time.Second, "print table statistics this often (0: never)")
	duration := fs.Duration("duration", 0, "stop after this long (0: until SIGINT/SIGTERM)")
	failOnViolation := fs.Bool("fail-on-violation", false, "exit with status 2 if a violation was seen")
	useTLS := fs.Bool("tls", false, "connect with TLS (system CAs)")
	saslMech := fs.String("sasl-mechanism", "", "plain, scram-sha-256 or scram-sha-512")
	saslUser := fs.String("sasl-user", "", "SASL user")
	saslPass := fs.String("sasl-password", os.Getenv("DOWNSTREAM_SASL_PASSWORD"), "SASL password (default $DOWNSTREAM_SASL_PASSWORD)")
	if err := fs.Parse(args); err != nil {
		return 1
	}

	transport := &kafka.Transport{ClientID: "smartgroups-downstream"}
	defer transport.CloseIdleConnections()
	if *useTLS {
		transport.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if *saslMech != "" {
		mech, err := saslMechanism(*saslMech, *saslUser, *saslPass)
		if err != nil {
			fmt.Fprintln(stderr, "downstream:", err)
			return 1
		}
		transport.SASL = mech
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	tb := table.New()
	tb.Strict = *strict
	at := table.NewAccess()
	at.Strict = *strict
	out := &syncWriter{w: stdout}
	onChange := func(c table.Change) {
		if !*quiet {
			e := c.Event
			out.printf("%s %s/%s/%s seq=%d reason=%s ts=%s (partition %d offset %d)\n",
				e.Op, e.Spot, e.Group, e.Member, e.Seq, e.Reason, e.TS, c.Partition, c.Offset)
		}
	}
	onViolation := func(v table.Violation) { out.printf("VIOLATION %s\n", v) }
	onAccess := func(c table.Change) {
		if !*quiet {
			e := c.Event
			out.printf("%s %s/%s/%s seq=%d groups=%s ts=%s (partition %d offset %d)\n",
				e.Op, e.Spot, e.Resource, e.Member, e.Seq, strings.Join(e.Groups, ","), e.TS, c.Partition, c.Offset)
		}
	}

	if *every > 0 {
		go func() {
			t := time.NewTicker(*every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					m, k, a := tb.Stats()
					g, _, ga := at.Stats()
					out.printf("stats: %d memberships, %d keys, %d events, %d violations; %d access grants, %d access events, %d violations\n",
						m, k, a, len(tb.Violations()), g, ga, len(at.Violations()))
				}
			}
		}()
	}

	cfg := table.ReaderConfig{Brokers: strings.Split(*brokers, ","), Topic: *topic, Transport: transport}
	var accessErr error
	var wg sync.WaitGroup
	if *accessTopic != "" {
		acfg := cfg
		acfg.Topic = *accessTopic
		wg.Add(1)
		go func() {
			defer wg.Done()
			accessErr = table.Run(ctx, acfg, at, onAccess, onViolation)
		}()
	}
	err := table.Run(ctx, cfg, tb, onChange, onViolation)
	stop()
	wg.Wait()
	m, k, a := tb.Stats()
	vs := append(tb.Violations(), at.Violations()...)
	g, ak, ga := at.Stats()
	out.printf("summary: %d memberships, %d keys, %d events, %d violations\n", m, k, a, len(tb.Violations()))
	if *accessTopic != "" {
		out.printf("access: %d grants, %d keys, %d events, %d violations\n", g, ak, ga, len(at.Violations()))
	}
	for _, e := range []error{err, accessErr} {
		if e != nil && !errors.Is(e, context.Canceled) {
			fmt.Fprintln(stderr, "downstream:", e)
			return 1
		}
	}
	if *failOnViolation && len(vs) > 0 {
		return 2
	}
	return 0
}

func saslMechanism(name, user, pass string) (sasl.Mechanism, error) {
	switch strings.ToLower(name) {
	case "plain":
		return plain.Mechanism{Username: user, Password: pass}, nil
	case "scram-sha-256":
		return scram.Mechanism(scram.SHA256, user, pass)
	case "scram-sha-512":
		return scram.Mechanism(scram.SHA512, user, pass)
	}
	return nil, fmt.Errorf("unknown SASL mechanism %q", name)
}

// syncWriter serializes output from the partition goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, format, args...)
}
