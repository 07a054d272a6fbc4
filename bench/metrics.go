package bench

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type scrape struct {
	at       time.Time
	consumed float64 // member records
	commits  float64
	events   float64 // membership changes
	// recordEvents are the membership changes caused by records (every
	// reason but time).
	recordEvents float64
	// members are the live members of the partitions serve owns;
	// restoresRunning the partitions being restored from the changelog and
	// restoreRecords the changelog records applied by restores.
	members, restoresRunning, restoreRecords float64
	// timerLag is how far behind its clock serve's earliest due timer
	// is (seconds; 0: none overdue).
	timerLag float64
}

func scrapeMetrics(ctx context.Context, url string) (scrape, error) {
	s := scrape{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return s, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, err
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "smartgroups_records_consumed_total{"):
			if strings.Contains(line, `topic="definitions"`) {
				continue
			}
			s.consumed += metricValue(line)
		case strings.HasPrefix(line, `smartgroups_transactions_total{result="commit"}`):
			s.commits = metricValue(line)
		case strings.HasPrefix(line, "smartgroups_membership_changes_total{"):
			v := metricValue(line)
			s.events += v
			if !strings.Contains(line, `reason="time"`) {
				s.recordEvents += v
			}
		case strings.HasPrefix(line, "smartgroups_members "):
			s.members = metricValue(line)
		case strings.HasPrefix(line, "smartgroups_restores_running "):
			s.restoresRunning = metricValue(line)
		case strings.HasPrefix(line, "smartgroups_restore_records_total "):
			s.restoreRecords = metricValue(line)
		case strings.HasPrefix(line, "smartgroups_timer_lag_seconds "):
			s.timerLag = metricValue(line)
		}
	}
	s.at = time.Now()
	return s, sc.Err()
}

func metricValue(line string) float64 {
	i := strings.LastIndexByte(line, ' ')
	v, _ := strconv.ParseFloat(line[i+1:], 64)
	return v
}

func counterValue(g prometheus.Gatherer, name string) float64 {
	mfs, err := g.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		total := 0.0
		for _, m := range mf.GetMetric() {
			total += m.GetCounter().GetValue()
		}
		return total
	}
	return 0
}
