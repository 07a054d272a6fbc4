package scenario

import (
	"errors"
	"fmt"

	"github.com/smartgroups/smartgroups/engine/rule"
)

// Config shapes a scenario.
type Config struct {
	// Spots is the number of spots (tenants), 1 to 3. Default 2.
	Spots int
	// MembersPerSpot is the size of each spot's member pool. Default 25.
	MembersPerSpot int
	// Records is the number of lines to generate, the initial definitions
	// included (a scenario is never shorter than its initial definitions).
	// Default 2,000.
	Records int
	// GroupsPerSpot is the number of smart-group ids per spot (g1…gN); most
	// are defined at the start, the others later. Default 8.
	GroupsPerSpot int
	// Now is the instant (epoch ms) timestamps are drawn around. Default
	// 2026-11-20T09:00:00Z.
	Now rule.Millis
	// InvalidRate is the probability that a record is deliberately invalid,
	// 0 to 1. Default 0.08.
	InvalidRate float64
	// Span, when positive, moves the instant timestamps are drawn around
	// from Now to Now+Span over the scenario, so that with the event clock
	// relative windows open and close while it runs and timers fire
	// between records; the scenario then ends with one more line, a
	// profile record 100 days past Now+Span, so that every pending timer
	// fires. Default 0: every timestamp is drawn around Now.
	Span rule.Millis
}

// DefaultNow is 2026-11-20T09:00:00Z.
const DefaultNow rule.Millis = 1795165200000

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Spots: 2, MembersPerSpot: 25, Records: 2000, GroupsPerSpot: 8, Now: DefaultNow, InvalidRate: 0.08}
}

// Validate reports a Config that Generate would have to adjust.
func (c Config) Validate() error {
	var errs []error
	if c.Spots < 1 || c.Spots > len(spotIDs) {
		errs = append(errs, fmt.Errorf("scenario: spots is %d, want 1 to %d", c.Spots, len(spotIDs)))
	}
	if c.MembersPerSpot < 1 {
		errs = append(errs, fmt.Errorf("scenario: members per spot is %d, want at least 1", c.MembersPerSpot))
	}
	if c.Records < 0 {
		errs = append(errs, fmt.Errorf("scenario: records is %d, want at least 0", c.Records))
	}
	if c.GroupsPerSpot < 1 || c.GroupsPerSpot > 99 {
		errs = append(errs, fmt.Errorf("scenario: groups per spot is %d, want 1 to 99", c.GroupsPerSpot))
	}
	if c.InvalidRate < 0 || c.InvalidRate > 1 {
		errs = append(errs, fmt.Errorf("scenario: invalid rate is %v, want 0 to 1", c.InvalidRate))
	}
	return errors.Join(errs...)
}

// normalized clamps every field into its valid range.
func (c Config) normalized() Config {
	c.Spots = clamp(c.Spots, 1, len(spotIDs))
	c.MembersPerSpot = clamp(c.MembersPerSpot, 1, 1<<20)
	c.Records = clamp(c.Records, 0, 1<<30)
	c.GroupsPerSpot = clamp(c.GroupsPerSpot, 1, 99)
	if !(c.InvalidRate >= 0) { // also NaN
		c.InvalidRate = 0
	}
	if c.InvalidRate > 1 {
		c.InvalidRate = 1
	}
	return c
}

func clamp(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}
