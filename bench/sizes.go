package bench

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/smartgroups/smartgroups/state"
)

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// settledSize returns the size of a closed store's directory after
// reopening it, which replays its write-ahead log into tables, and
// flushing it. A clean shutdown leaves the memtables' contents in the log:
// with 64 MiB memtables, every version of every state written since the
// last flush, which at small sizes outweighs the state itself.
func settledSize(dir string) (int64, error) {
	st, err := state.Open(dir, state.Options{})
	if err != nil {
		return 0, err
	}
	if err := st.Flush(); err != nil {
		_ = st.Close()
		return 0, err
	}
	if err := st.Close(); err != nil {
		return 0, err
	}
	return dirSize(dir), nil
}

// brokerBytes returns the size of the run's topics on the broker, by topic
// without the run's prefix (nil when the broker does not tell).
func (r *runner) brokerBytes(ctx context.Context) map[string]int64 {
	cl, err := r.client()
	if err != nil {
		return nil
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return nil
	}
	set := kadm.TopicsSet{}
	for t, ps := range topics.TopicsSet() {
		if strings.HasPrefix(t, r.kc.TopicPrefix) {
			set[t] = ps
		}
	}
	if len(set) == 0 {
		return nil
	}
	dirs, err := adm.DescribeAllLogDirs(ctx, set)
	if err != nil {
		return nil
	}
	out := map[string]int64{}
	dirs.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			out[strings.TrimPrefix(p.Topic, r.kc.TopicPrefix)] += p.Size
		})
	})
	return out
}

// brokerText lists topic sizes, largest first.
func brokerText(m map[string]int64) string {
	names := make([]string, 0, len(m))
	var total int64
	for k, v := range m {
		names = append(names, k)
		total += v
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(m[b], m[a]) })
	parts := []string{fmt.Sprintf("%.1f MiB in all", float64(total)/(1<<20))}
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s %.1f MiB", k, float64(m[k])/(1<<20)))
	}
	return strings.Join(parts, ", ")
}
