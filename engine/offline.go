package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/state"
)

// StateReader reads the state a stopped engine left in a store (a
// state.Snapshot) for the export and inspect tools: the keys a restart
// loads (partload.go), decoded the same way, and the membership history.
// It never writes.
type StateReader struct {
	r     state.Reader
	parts []int32
}

// NewStateReader returns a reader of the member partitions r holds.
func NewStateReader(r state.Reader) (*StateReader, error) {
	parts, err := state.Partitions(r)
	if err != nil {
		return nil, fmt.Errorf("engine: list partitions: %w", err)
	}
	parts = slices.DeleteFunc(parts, func(p int32) bool { return p < 0 })
	return &StateReader{r: r, parts: parts}, nil
}

// Membership is one current membership of a smart group: `smartgroups
// export` writes one per line.
type Membership struct {
	Spot   string `json:"spot"`
	Group  string `json:"group"`
	Member string `json:"member"`
	// Since is when the member joined (empty for a membership older than
	// the history).
	Since string `json:"since,omitempty"`
	Seq   uint64 `json:"seq"`
}

// AccessRow is one member's access to a resource (`export --what access`).
type AccessRow struct {
	Spot     string `json:"spot"`
	Resource string `json:"resource"`
	Member   string `json:"member"`
	Seq      uint64 `json:"seq"`
}

// eachMember calls fn with every member state of spot (every spot when
// empty), in key order: partition, spot, ordinal.
func (s *StateReader) eachMember(spot string, fn func(p int32, spot string, ord uint32, st *MemberState) error) error {
	for _, p := range s.parts {
		lo := state.MemberPartPrefix(p)
		if spot != "" {
			lo = state.MemberSpotPrefix(p, spot)
		}
		var ferr error
		err := s.r.Scan(lo, state.PrefixEnd(lo), func(k, v []byte) bool {
			rest := k[len(state.MemberPartPrefix(p)):]
			i := bytes.IndexByte(rest, 0)
			if i < 0 || len(rest) != i+5 {
				ferr = fmt.Errorf("engine: partition %d: malformed member key %q", p, k)
				return false
			}
			st, err := DecodeMemberState(v)
			if err != nil {
				ferr = fmt.Errorf("engine: partition %d: member %q: %w", p, k, err)
				return false
			}
			ferr = fn(p, string(rest[:i]), state.DecodeU32(rest[i+1:]), st)
			return ferr == nil
		})
		if err == nil {
			err = ferr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Memberships calls fn with every current membership of spot's smart
// groups (every spot when empty; group narrows it to one group).
func (s *StateReader) Memberships(spot, group string, fn func(Membership) error) error {
	return s.eachMember(spot, func(p int32, sp string, ord uint32, st *MemberState) error {
		for _, g := range st.Groups {
			if group != "" && g != group {
				continue
			}
			m := Membership{Spot: sp, Group: g, Member: st.ID, Seq: st.Seqs[g]}
			if ms, ok := st.since[g]; ok {
				m.Since = rule.FormatMillis(ms)
			} else {
				// A store written before states held since.
				v, ok, err := s.r.Get(state.SinceKey(p, sp, ord, g))
				if err != nil {
					return err
				}
				if ok && len(v) == 8 {
					m.Since = rule.FormatMillis(state.DecodeI64(v))
				}
			}
			if err := fn(m); err != nil {
				return err
			}
		}
		return nil
	})
}

// Access calls fn with every member's access to a resource of spot
// (every spot when empty; resource narrows it to one resource).
func (s *StateReader) Access(spot, resource string, fn func(AccessRow) error) error {
	return s.eachMember(spot, func(_ int32, sp string, _ uint32, st *MemberState) error {
		for _, r := range slices.Sorted(maps.Keys(st.Access)) {
			if seq := st.Access[r]; seq%2 == 1 && (resource == "" || r == resource) {
				if err := fn(AccessRow{Spot: sp, Resource: r, Member: st.ID, Seq: seq}); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Member returns what the store holds about a member, as MemberInfo
// (ErrUnknownMember when it holds nothing).
func (s *StateReader) Member(spot, id string) (*MemberInfo, error) {
	for _, p := range s.parts {
		v, ok, err := s.r.Get(state.MemberIDKey(p, spot, id))
		if err != nil {
			return nil, err
		}
		if !ok || len(v) != 4 {
			continue
		}
		ord := state.DecodeU32(v)
		blob, ok, err := s.r.Get(state.MemberKey(p, spot, ord))
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		st, err := DecodeMemberState(blob)
		if err != nil {
			return nil, fmt.Errorf("engine: member %q: %w", id, err)
		}
		var acts []actTS
		ap := state.ActivityPrefix(p, spot, ord, "")
		var aerr error
		err = s.r.Scan(ap, state.PrefixEnd(ap), func(k, _ []byte) bool {
			rest := k[len(ap):]
			i := bytes.IndexByte(rest, 0)
			if i < 0 || len(rest) != i+13 {
				aerr = fmt.Errorf("engine: member %q: malformed activity key %q", id, k)
				return false
			}
			acts = append(acts, actTS{typ: string(rest[:i]), ts: state.DecodeI64(rest[i+1 : i+9])})
			return true
		})
		if err == nil {
			err = aerr
		}
		if err != nil {
			return nil, err
		}
		sp := state.SincePrefix(p, spot, ord)
		sinceKV, err := s.rangeOf(sp)
		if err != nil {
			return nil, err
		}
		hp := state.HistoryPrefix(p, spot, ord)
		histKV, err := s.rangeOf(hp)
		if err != nil {
			return nil, err
		}
		hist, err := decodeHistory(histKV)
		if err != nil {
			return nil, err
		}
		return newMemberInfo(spot, p, st, acts, mergeSince(decodeSince(len(sp), sinceKV), st), hist)
	}
	return nil, fmt.Errorf("%w: %q in spot %q", ErrUnknownMember, id, spot)
}

func (s *StateReader) rangeOf(prefix []byte) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.r.Scan(prefix, state.PrefixEnd(prefix), func(k, v []byte) bool {
		out[string(k)] = slices.Clone(v)
		return true
	})
	return out, err
}

// GroupInfo is what `smartgroups inspect group` prints.
type GroupInfo struct {
	Spot  string `json:"spot"`
	Group string `json:"group"`
	// Definition is the group's definition as stored.
	Definition json.RawMessage `json:"definition"`
	// MemberCount counts the members of the store's partitions in the
	// group.
	MemberCount   int `json:"member_count"`
	BlacklistSize int `json:"blacklist_size"`
}

// Group returns a group's definition, member count and blacklist size
// (ErrUnknownGroup when the store has no such group).
func (s *StateReader) Group(spot, id string) (*GroupInfo, error) {
	def, ok, err := s.r.Get(state.DefKey("group", spot, id, ""))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %q in spot %q", ErrUnknownGroup, id, spot)
	}
	var head struct {
		Type GroupType `json:"type"`
	}
	if err := json.Unmarshal(def, &head); err != nil {
		return nil, fmt.Errorf("engine: group %q: %w", id, err)
	}
	info := &GroupInfo{Spot: spot, Group: id, Definition: def}
	bl := append(state.DefKey("blacklist", spot, id, ""), 0)
	if err := s.r.Scan(bl, state.PrefixEnd(bl), func(_, _ []byte) bool { info.BlacklistSize++; return true }); err != nil {
		return nil, err
	}
	err = s.eachMember(spot, func(_ int32, _ string, _ uint32, st *MemberState) error {
		in := slices.Contains(st.Groups, id)
		if head.Type == GroupStatic {
			in = slices.Contains(st.Profile.StaticGroups, id)
		}
		if in {
			info.MemberCount++
		}
		return nil
	})
	return info, err
}

// Stats is what `smartgroups inspect stats` prints.
type Stats struct {
	DataDir     string           `json:"data_dir"`
	DiskBytes   uint64           `json:"disk_bytes"`
	Definitions int              `json:"definitions"`
	Partitions  []PartitionStats `json:"partitions"`
}

// PartitionStats describes one partition's stored state.
type PartitionStats struct {
	Partition      int32 `json:"partition"`
	Members        int   `json:"members"`
	HistoryEntries int   `json:"history_entries"`
	// StateBytes is the size of the partition's keys and values.
	StateBytes int64 `json:"state_bytes"`
	// Positions are the next input offsets, by topic.
	Positions map[string]int64 `json:"positions"`
	// Snapshot is the changelog record the state reflects (serve).
	Snapshot *SnapshotInfo `json:"snapshot,omitempty"`
	// Clock is the event clock the partition's state reflects.
	Clock string `json:"clock,omitempty"`
}

// SnapshotInfo is a partition's snapshot tag.
type SnapshotInfo struct {
	Offset int64  `json:"offset"`
	Time   string `json:"time"`
}

// Stats counts the store's definitions and, per partition, members,
// history entries and bytes, with its input positions, snapshot tag and
// clock.
func (s *StateReader) Stats() (*Stats, error) {
	out := &Stats{Partitions: []PartitionStats{}}
	if err := s.r.Scan(state.DefPrefix(), state.PrefixEnd(state.DefPrefix()), func(_, _ []byte) bool {
		out.Definitions++
		return true
	}); err != nil {
		return nil, err
	}
	for _, p := range s.parts {
		ps := PartitionStats{Partition: p, Positions: map[string]int64{}}
		pp := state.PartitionPrefix(p)
		posLen := len(state.PositionPrefix(p))
		var perr error
		err := s.r.Scan(pp, state.PrefixEnd(pp), func(k, v []byte) bool {
			ps.StateBytes += int64(len(k) + len(v))
			_, sub, _ := state.PartitionOfKey(k)
			switch sub {
			case state.SubMember:
				ps.Members++
			case state.SubHistory:
				ps.HistoryEntries += historyEntries(v)
			case state.SubSnapshot:
				off, ms, ok := state.DecodeSnapshotTag(v)
				if !ok {
					perr = fmt.Errorf("engine: partition %d: malformed snapshot tag", p)
					return false
				}
				ps.Snapshot = &SnapshotInfo{Offset: off, Time: rule.FormatMillis(ms)}
			}
			switch {
			case bytes.HasPrefix(k, state.PositionPrefix(p)) && len(v) == 8:
				ps.Positions[strings.Clone(string(k[posLen:]))] = state.DecodeI64(v)
			case bytes.Equal(k, state.PartitionClockKey(p)) && len(v) == 8:
				ps.Clock = rule.FormatMillis(state.DecodeI64(v))
			}
			return true
		})
		if err == nil {
			err = perr
		}
		if err != nil {
			return nil, err
		}
		out.Partitions = append(out.Partitions, ps)
	}
	return out, nil
}
