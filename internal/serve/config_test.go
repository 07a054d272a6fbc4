package serve

import (
	"testing"
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
