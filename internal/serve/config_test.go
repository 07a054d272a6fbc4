package serve

import (
	"strings"
	"testing"

	"github.com/smartgroups/smartgroups/engine"
)

func TestConfigCaches(t *testing.T) {
	cfg := DefaultConfig()
	if cfg.MemberCache != 0 || cfg.StateCacheBytes != 64<<20 {
		t.Fatalf("defaults: member cache %d, state cache %d", cfg.MemberCache, cfg.StateCacheBytes)
	}
	cfg.DataDir = t.TempDir()
	for _, c := range []struct {
		member int
		state  int64
		ok     bool
	}{{0, 0, true}, {1_000_000, 1 << 30, true}, {-1, 0, false}, {0, -1, false}} {
		cfg.MemberCache, cfg.StateCacheBytes = c.member, c.state
		if err := cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("member cache %d, state cache %d: Validate() = %v", c.member, c.state, err)
		}
	}
}

func TestConfigLimits(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	if cfg.Limits != engine.DefaultLimits() || cfg.MaxRequestBytes != 1<<20 {
		t.Fatalf("defaults: limits %+v, max request bytes %d", cfg.Limits, cfg.MaxRequestBytes)
	}
	for _, c := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Limits.MaxRuleNodes = 0 }, "the max rule nodes limit must be positive, not 0"},
		{func(c *Config) { c.Limits.MaxRecordBytes = -5 }, "the max record bytes limit must be positive, not -5"},
		{func(c *Config) { c.MaxRequestBytes = 0 }, "the max request bytes limit must be positive, not 0"},
	} {
		bad := cfg
		c.mod(&bad)
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate() = %v, want %q", err, c.want)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}
