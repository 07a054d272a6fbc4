// Command produce is an example producer of smartgroups input with
// franz-go: it writes one member's profile, custom properties and an
// activity, keyed "<spot>/<member>", to the three member topics (SPEC §4.1).
//
//	go run ./examples/produce --brokers 127.0.0.1:9092 --spot acme --member u42
//
// The engine expects the member topics co-partitioned: a member's records of
// every member topic are in partitions of the same number, which holds when
// every producer hashes the key with murmur2, as the Java client does.
// franz-go's default partitioner hashes keys with murmur2 already; the
// client below names its partitioner so that the choice is visible.
//
// It prints one line per record: topic, partition and offset.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated seed brokers")
	prefix := fs.String("topic-prefix", "smartgroups.", "prefix of the topic names (serve's --topic-prefix)")
	spot := fs.String("spot", "acme", "spot id")
	member := fs.String("member", "u42", "member id")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	recs, err := produceMember(ctx, strings.Split(*brokers, ","), *prefix, *spot, *member)
	if err != nil {
		fmt.Fprintln(stderr, "produce:", err)
		return 1
	}
	for _, r := range recs {
		fmt.Fprintf(stdout, "%s %s[%d]@%d\n", r.Key, r.Topic, r.Partition, r.Offset)
	}
	return 0
}

// produceMember writes a profile, custom properties and an activity of one
// member and returns the records as the broker stored them.
func produceMember(ctx context.Context, brokers []string, prefix, spot, member string) ([]*kgo.Record, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		// murmur2 of the key, like the Java client: "<spot>/<member>" lands
		// in the same partition number of every member topic.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()

	now := time.Now().UTC().Format(time.RFC3339Nano)
	key := []byte(spot + "/" + member) // must equal "<spot>/<member>" of the value
	record := func(topic string, value map[string]any) (*kgo.Record, error) {
		value["spot"], value["member"], value["ts"] = spot, member, now
		b, err := json.Marshal(value)
		if err != nil {
			return nil, fmt.Errorf("encoding the %s record: %w", topic, err)
		}
		return &kgo.Record{Topic: prefix + topic, Key: key, Value: b}, nil
	}
	var recs []*kgo.Record
	for _, r := range []struct {
		topic string
		value map[string]any
	}{
		{"profiles", map[string]any{"profile": map[string]any{
			"first_name": "Ada", "last_name": "Lovelace", "status": "accepted", "tags": []string{"vip"}}}},
		{"properties", map[string]any{"custom": map[string]any{"plan": "pro", "seats": 12}}},
		{"activities", map[string]any{"id": "evt-" + member + "-1", "type": "attended_live",
			"resource": map[string]string{"id": "live-42", "title": "Weekly AMA"}}},
	} {
		rec, err := record(r.topic, r.value)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	// ProduceSync returns once the broker has every record (acks=all,
	// idempotent by default).
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, fmt.Errorf("producing: %w", err)
	}
	return recs, nil
}
