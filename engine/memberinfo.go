package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/smartgroups/smartgroups/engine/rule"
)

// MemberInfo is everything the engine holds about a member: what
// GET /v1/spots/{spot}/members/{member} and `smartgroups inspect member`
// answer.
type MemberInfo struct {
	Spot      string `json:"spot"`
	Member    string `json:"member"`
	Partition int32  `json:"partition"`
	// Profile holds the profile fields set, instants as timestamps.
	Profile    map[string]any             `json:"profile"`
	Custom     map[string]json.RawMessage `json:"custom"`
	Form       map[string]json.RawMessage `json:"form"`
	Activities ActivitySummary            `json:"activities"`
	// Groups are the smart groups the member is in, by id.
	Groups []MemberGroup `json:"groups"`
	// Access are the resources the member has access to, by id.
	Access []MemberAccess `json:"access"`
	// Timer is the member's pending time re-evaluation, if any.
	Timer string `json:"timer,omitempty"`
	// History are the newest transitions, newest first.
	History []HistoryEntry `json:"history"`
}

// ActivitySummary counts a member's activities.
type ActivitySummary struct {
	Total          int                    `json:"total"`
	LastActivityAt string                 `json:"last_activity_at,omitempty"`
	ByType         map[string]TypeSummary `json:"by_type"`
}

// TypeSummary counts a member's activities of one type, with the first
// and last ts.
type TypeSummary struct {
	Count int    `json:"count"`
	First string `json:"first"`
	Last  string `json:"last"`
}

// MemberGroup is a smart group a member is in: the seq of the key's last
// event and when the member joined (empty for a membership older than the
// history).
type MemberGroup struct {
	Group string `json:"group"`
	Seq   uint64 `json:"seq"`
	Since string `json:"since,omitempty"`
}

// MemberAccess is a resource a member has access to, with the seq of the
// key's last access event.
type MemberAccess struct {
	Resource string `json:"resource"`
	Seq      uint64 `json:"seq"`
}

// actTS is one activity of a member as a summary needs it.
type actTS struct {
	typ string
	ts  rule.Millis
}

// profileInstants are the profile fields holding instants (Unix ms).
var profileInstants = []string{"invited_at", "registered_at", "last_activity_at"}

// newMemberInfo builds a MemberInfo from a member's stored state, its
// activities, since instants and history (newest first).
func newMemberInfo(spot string, p int32, st *MemberState, acts []actTS, since map[string]rule.Millis, hist []HistoryEntry) (*MemberInfo, error) {
	raw, err := json.Marshal(&st.Profile)
	if err != nil {
		return nil, fmt.Errorf("engine: member %q: profile: %w", st.ID, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	profile := map[string]any{}
	if err := dec.Decode(&profile); err != nil {
		return nil, fmt.Errorf("engine: member %q: profile: %w", st.ID, err)
	}
	for _, f := range profileInstants {
		if n, ok := profile[f].(json.Number); ok {
			if ms, err := n.Int64(); err == nil {
				profile[f] = rule.FormatMillis(ms)
			}
		}
	}
	info := &MemberInfo{Spot: spot, Member: st.ID, Partition: p, Profile: profile,
		Custom: st.Custom, Form: st.Form, Groups: []MemberGroup{}, Access: []MemberAccess{},
		Activities: ActivitySummary{ByType: map[string]TypeSummary{}}}
	if info.Custom == nil {
		info.Custom = map[string]json.RawMessage{}
	}
	if info.Form == nil {
		info.Form = map[string]json.RawMessage{}
	}
	type agg struct {
		n           int
		first, last rule.Millis
	}
	byType := map[string]*agg{}
	for _, a := range acts {
		g := byType[a.typ]
		if g == nil {
			g = &agg{first: a.ts, last: a.ts}
			byType[a.typ] = g
		}
		g.n++
		g.first, g.last = min(g.first, a.ts), max(g.last, a.ts)
	}
	for typ, g := range byType {
		info.Activities.ByType[typ] = TypeSummary{Count: g.n, First: rule.FormatMillis(g.first), Last: rule.FormatMillis(g.last)}
	}
	info.Activities.Total = len(acts)
	if st.LastAct != nil {
		info.Activities.LastActivityAt = rule.FormatMillis(*st.LastAct)
	}
	for _, g := range st.Groups {
		mg := MemberGroup{Group: g, Seq: st.Seqs[g]}
		if ms, ok := since[g]; ok {
			mg.Since = rule.FormatMillis(ms)
		}
		info.Groups = append(info.Groups, mg)
	}
	for _, r := range slices.Sorted(maps.Keys(st.Access)) {
		if seq := st.Access[r]; seq%2 == 1 {
			info.Access = append(info.Access, MemberAccess{Resource: r, Seq: seq})
		}
	}
	if st.Timer != nil {
		info.Timer = rule.FormatMillis(*st.Timer)
	}
	info.History = hist[:min(len(hist), recentHistory)]
	if info.History == nil {
		info.History = []HistoryEntry{}
	}
	return info, nil
}
