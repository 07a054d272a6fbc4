package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"
)

var (
	bannerConsole = regexp.MustCompile(`console: +(http://\S+/) `)
	countCell     = regexp.MustCompile(`data-count="([^"]+)">([0-9]+)<`)
)

// TestDemoConsole follows a newcomer: run the demo (no token: loopback
// only, no sign-in), open the console URL it prints first, and see the
// groups of both spots with member counts that change as the demo
// produces activity.
func TestDemoConsole(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root := newRootCmd()
	var out syncBuffer
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"demo", "--embedded-broker", "127.0.0.1:0", "--http", "127.0.0.1:0", "--members", "300",
		"--rate", "200", "--partitions", "2", "--log-level", "error"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("demo: %v", err)
		}
	}()
	var m []string
	for m == nil {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("demo stopped before printing its banner: %v\n%s", err, out.String())
		case <-ctx.Done():
			t.Fatalf("no console URL in the banner:\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
		m = bannerConsole.FindStringSubmatch(out.String())
	}
	url := m[1]
	counts := func() map[string]string {
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", url, res.Status)
		}
		out := map[string]string{}
		// Both spots have the same group ids; the first table is acme's.
		for _, c := range countCell.FindAllStringSubmatch(string(b), -1) {
			if _, seen := out[c[1]]; !seen {
				out[c[1]] = c[2]
			}
		}
		return out
	}
	// The initial load (profiles and properties) fills paying-teams;
	// recent-attendees fills only as live activities arrive.
	var first map[string]string
	deadline := time.Now().Add(60 * time.Second)
	for first = counts(); first["paying-teams"] == "0" || first["paying-teams"] == ""; first = counts() {
		if time.Now().After(deadline) {
			t.Fatalf("paying-teams has no members on %s after 60s: %v", url, first)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for {
		now := counts()
		if now["recent-attendees"] != first["recent-attendees"] {
			t.Logf("recent-attendees went from %s to %s members", first["recent-attendees"], now["recent-attendees"])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recent-attendees stayed at %s members on %s for 60s", first["recent-attendees"], url)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
