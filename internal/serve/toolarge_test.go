package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/engine"
)

// TestTooLargeRecordOnEmbeddedBroker produces a 2 MiB profile record
// through the embedded broker to a running serve: it is dead-lettered
// (too_large) with its first 64 KiB, its size and its SHA-256 on the
// dead-letter topic, read read_committed, and the member's next valid
// record is applied.
func TestTooLargeRecordOnEmbeddedBroker(t *testing.T) {
	cfg := testConfig(t)
	in := start(t, cfg)
	dlTopic, memTopic := cfg.Kafka.DeadLetterTopic(), cfg.Kafka.MembershipsTopic()
	// Uncompressed, so that the broker sees the 2 MiB the record is.
	cl, err := kgo.NewClient(kgo.SeedBrokers(in.ready.Brokers...), kgo.ProducerBatchMaxBytes(4<<20),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeTopics(dlTopic, memTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	p := cfg.Kafka.TopicPrefix
	produce(t, cl, p+"definitions", "acme/group/vips", map[string]any{"kind": "group", "spot": "acme", "id": "vips", "type": "smart",
		"name": "VIPs", "rule": map[string]any{"field": "profile.tags", "op": "has_any", "value": []string{"vip"}}})
	now := time.Now().UnixMilli()
	big := `{"spot":"acme","member":"u1","ts":` + strconv.FormatInt(now, 10) +
		`,"profile":{"status":"accepted","tags":["vip"],"title":"` + strings.Repeat("t", 2<<20) + `"}}`
	if len(big) <= 2<<20 {
		t.Fatalf("the record is %d bytes", len(big))
	}
	produce(t, cl, p+"profiles", "acme/u1", big)
	produce(t, cl, p+"profiles", "acme/u1", map[string]any{"spot": "acme", "member": "u1", "ts": now + 1,
		"profile": map[string]any{"status": "accepted", "tags": []string{"vip"}}})

	var dead []*kgo.Record
	var events []engine.Event
	deadline := time.Now().Add(60 * time.Second)
	for (len(dead) == 0 || len(events) == 0) && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			if r.Topic == dlTopic {
				dead = append(dead, r)
				return
			}
			var ev engine.Event
			if err := json.Unmarshal(r.Value, &ev); err != nil {
				t.Fatalf("membership record %q: %v", r.Value, err)
			}
			events = append(events, ev)
		})
	}
	if len(dead) != 1 {
		t.Fatalf("want one dead letter, got %d", len(dead))
	}
	var d engine.DeadLetter
	if err := json.Unmarshal(dead[0].Value, &d); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(big))
	digest := hex.EncodeToString(sum[:])
	if d.Code != engine.CodeTooLarge || d.Value != big[:engine.TruncatedValueBytes] || d.Size != int64(len(big)) || d.SHA256 != digest {
		t.Fatalf("dead letter: code %q, value of %d bytes, size %d, sha256 %s; want too_large, %d bytes, %d, %s",
			d.Code, len(d.Value), d.Size, d.SHA256, engine.TruncatedValueBytes, len(big), digest)
	}
	if d.Key != "acme/u1" || d.Topic != p+"profiles" || !strings.Contains(d.Reason, "limit of 1048576 bytes") {
		t.Fatalf("dead letter of %s %s: %s", d.Topic, d.Key, d.Reason)
	}
	headers := map[string]string{}
	for _, h := range dead[0].Headers {
		headers[h.Key] = string(h.Value)
	}
	if headers[kafka.HeaderCode] != "too_large" || headers[kafka.HeaderSize] != strconv.Itoa(len(big)) || headers[kafka.HeaderSHA256] != digest {
		t.Fatalf("dead-letter headers: %v", headers)
	}
	if len(events) != 1 || events[0].Member != "u1" || events[0].Group != "vips" || events[0].Op != engine.OpAdd {
		t.Fatalf("want u1 added to vips by the valid record, got %+v", events)
	}
}
