package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	sgkafka "github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/internal/process"
	"github.com/smartgroups/smartgroups/internal/readme"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var outputLine = regexp.MustCompile(`^(\S+) (\S+)\[(\d+)\]@(\d+)$`)

// TestProducesCoPartitionedValidRecords runs the example for several
// members against a broker with 4-partition member topics: each member's
// three records are in the partition of the same number, the one murmur2
// of the key gives (the engine's choice), and the records, read back, are
// valid input that puts every member in a group that needs all three.
func TestProducesCoPartitionedValidRecords(t *testing.T) {
	emb, err := sgkafka.StartEmbedded(sgkafka.EmbeddedConfig{Addr: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = emb.Close() })
	cfg := sgkafka.DefaultConfig()
	cfg.Brokers = []string{emb.Addr()}
	cfg.Partitions = 4
	cl, err := kgo.NewClient(kgo.SeedBrokers(emb.Addr()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, sgkafka.EnsureTopics(ctx, kadm.NewClient(cl), cfg))

	murmur2 := kgo.StickyKeyPartitioner(nil).ForTopic("")
	members := []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"}
	used := map[int]bool{}
	records := 0
	for _, m := range members {
		var out, errOut bytes.Buffer
		code := run(ctx, []string{"--brokers", emb.Addr(), "--topic-prefix", cfg.TopicPrefix, "--spot", "acme", "--member", m}, &out, &errOut)
		require.Equal(t, 0, code, errOut.String())
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		require.Len(t, lines, 3, out.String())
		key := "acme/" + m
		want := murmur2.Partition(&kgo.Record{Key: []byte(key)}, 4)
		topics := map[string]bool{}
		for _, l := range lines {
			f := outputLine.FindStringSubmatch(l)
			require.NotNil(t, f, "output line %q", l)
			require.Equal(t, key, f[1])
			p, _ := strconv.Atoi(f[3])
			require.Equal(t, want, p, "%s in %s: not the murmur2 partition", key, f[2])
			topics[f[2]] = true
			used[p] = true
			records++
		}
		require.Equal(t, map[string]bool{"smartgroups.profiles": true, "smartgroups.properties": true, "smartgroups.activities": true}, topics)
	}
	require.Greater(t, len(used), 1, "every member in one partition: the test shows nothing")

	// Read everything back and run it through the engine.
	in := bytes.NewBufferString(`{"topic":"definitions","key":"acme/property/seats","value":{"kind":"property","spot":"acme","id":"seats","label":"Seats","type":"number"}}` + "\n" +
		`{"topic":"definitions","key":"acme/group/g","value":{"kind":"group","spot":"acme","id":"g","type":"smart","name":"G",` +
		`"rule":{"all":[{"field":"profile.tags","op":"has_any","value":["vip"]},{"field":"custom.seats","op":"gte","value":10},{"activity":"attended_live","resources":["live-42"]}]}}}` + "\n")
	rd, err := kgo.NewClient(kgo.SeedBrokers(emb.Addr()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.ConsumeTopics("smartgroups.profiles", "smartgroups.properties", "smartgroups.activities"))
	require.NoError(t, err)
	defer rd.Close()
	for got := 0; got < records; {
		fs := rd.PollFetches(ctx)
		require.NoError(t, fs.Err())
		fs.EachRecord(func(r *kgo.Record) {
			got++
			line, err := json.Marshal(map[string]any{"topic": strings.TrimPrefix(r.Topic, cfg.TopicPrefix), "key": string(r.Key), "value": json.RawMessage(r.Value)})
			require.NoError(t, err)
			in.Write(append(line, '\n'))
		})
	}
	var events, dead bytes.Buffer
	_, err = process.Run(ctx, process.Options{Now: time.Now().UnixMilli(), HasNow: true}, in, &events, &dead)
	require.NoError(t, err)
	require.Empty(t, dead.String(), "the example's records were dead-lettered")
	for _, m := range members {
		require.Contains(t, events.String(), fmt.Sprintf(`"member":%q,"op":"add"`, m))
	}
}

// TestReadmeShowsThisProgram: every Go block of the README's "Producing
// input" section is a run of lines of this file (compared without their
// indentation), so the README cannot show a client this program does not
// build.
func TestReadmeShowsThisProgram(t *testing.T) {
	blocks, err := readme.Load()
	require.NoError(t, err)
	src, err := os.ReadFile("main.go")
	require.NoError(t, err)
	trim := func(s string) []string {
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			out = append(out, strings.TrimSpace(l))
		}
		return out
	}
	file := "\n" + strings.Join(trim(string(src)), "\n") + "\n"
	shown := 0
	for _, b := range blocks {
		if b.Section != "Producing input" || b.Lang != "go" {
			continue
		}
		shown++
		if !strings.Contains(file, "\n"+strings.Join(trim(b.Text), "\n")+"\n") {
			t.Errorf("the README's Go block at line %d is not in examples/produce/main.go:\n%s", b.Line, b.Text)
		}
	}
	require.NotZero(t, shown, "the README's Producing input section shows no Go code")
}
