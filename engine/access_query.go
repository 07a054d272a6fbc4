package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/smartgroups/smartgroups/engine/rule"
)

// AccessCount is how many members would gain and lose access to one
// resource (a dry run of a group change).
type AccessCount struct {
	Granted int `json:"granted"`
	Revoked int `json:"revoked"`
}

// DiffAccess computes, for the given owned partitions, per resource, how
// many members would gain and lose access if group's rule became raw (nil:
// unchanged; smart groups only) and its resource list became resources.
// As in DiffRule, the group's blacklist and eligibility apply and groups
// depending on it are not followed.
func (e *Engine) DiffAccess(ctx context.Context, parts []int32, spot, group string, raw json.RawMessage, resources []Resource) (map[string]AccessCount, error) {
	out := map[string]AccessCount{}
	for _, p := range parts {
		set, r, typ, err := e.accessDiffSet(p, spot, group, raw)
		if err != nil {
			return nil, err
		}
		err = e.eachChunk(ctx, p, spot, set, func(t *txn, ords []uint32) error {
			sd := e.defs.Spot(spot)
			if sd == nil {
				return nil
			}
			for _, ord := range ords {
				m, err := t.memberByOrd(p, spot, ord)
				if err != nil {
					return err
				}
				if m == nil {
					continue
				}
				static := m.st.Profile.StaticGroups
				in := slices.Contains(static, group)
				if typ == GroupSmart {
					in = m.InSmartGroup(group)
					if raw != nil {
						in = false
						if m.eligible() && !sd.Blacklist[group][m.st.ID] {
							if in, err = rule.Eval(r, m, e.now); err != nil {
								return err
							}
						}
					}
				}
				before := sd.Access(m.st.Groups, static)
				after := sd.accessWith(m.st.Groups, static, group, in, resources)
				for id := range before {
					if _, ok := after[id]; !ok {
						c := out[id]
						c.Revoked++
						out[id] = c
					}
				}
				for id := range after {
					if _, ok := before[id]; !ok {
						c := out[id]
						c.Granted++
						out[id] = c
					}
				}
				t.release(m)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// accessDiffSet returns the members of partition p whose access a change
// of group can change (its members now, and for a new rule the candidates
// of that rule), the compiled new rule and the group's type.
func (e *Engine) accessDiffSet(p int32, spot, group string, raw json.RawMessage) (*roaring.Bitmap, *rule.Rule, GroupType, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.readable(p); err != nil {
		return nil, nil, "", err
	}
	sd := e.defs.Spot(spot)
	if sd == nil || sd.Groups[group] == nil {
		return nil, nil, "", fmt.Errorf("%w: %q", ErrUnknownGroup, group)
	}
	typ := sd.Groups[group].Type
	t := e.begin()
	defer t.close()
	cur, err := t.posting(p, spot, termGroup(group, typ))
	if err != nil {
		return nil, nil, "", err
	}
	set := cur.Clone()
	var r *rule.Rule
	if raw != nil && typ == GroupSmart {
		if r, err = rule.CompileRule(raw, e.defs.Catalog(spot), e.cfg.Limits.Rule()); err != nil {
			return nil, nil, "", rerr("invalid_rule", "%v", err)
		}
		cand, err := t.backfillSet(p, spot, r)
		if err != nil {
			return nil, nil, "", err
		}
		set.Or(cand)
	}
	return set, r, typ, nil
}

// accessWith is Access for a member in the given smart and static groups
// as if group listed resources and the member were in it exactly when in.
func (s *SpotDefs) accessWith(smart, static []string, group string, in bool, resources []Resource) map[string][]string {
	out := map[string][]string{}
	for id, gs := range s.Access(withoutString(smart, group), withoutString(static, group)) {
		out[id] = gs
	}
	if in {
		for _, r := range resources {
			out[r.ID] = append(out[r.ID], group)
		}
	}
	return out
}

func withoutString(ss []string, s string) []string {
	if !slices.Contains(ss, s) {
		return ss
	}
	out := make([]string, 0, len(ss)-1)
	for _, x := range ss {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// MemberResource is a resource a member has access to, with the groups
// giving it.
type MemberResource struct {
	Resource
	Groups []string `json:"groups"`
}

// MemberResources returns the resources a member has access to (SPEC
// §2.4), in id order, each with the groups giving it. The member's
// partition must be owned.
func (e *Engine) MemberResources(spot, member string) ([]MemberResource, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, t, err := e.loadMember(spot, member)
	if err != nil {
		return nil, err
	}
	defer t.close()
	out := []MemberResource{}
	sd := e.defs.Spot(spot)
	if sd == nil {
		return out, nil
	}
	for _, s := range m.st.accessSeqs {
		if s.seq%2 == 0 {
			continue
		}
		groups := sd.GroupsGiving(m.st.Groups, m.st.Profile.StaticGroups, s.group)
		mr := MemberResource{Resource: Resource{ID: s.group}, Groups: groups}
		if len(groups) > 0 {
			for _, r := range sd.Groups[groups[0]].Resources {
				if r.ID == s.group {
					mr.Resource = r
				}
			}
		}
		mr.ID = string([]byte(s.group)) // outlives the member's state
		out = append(out, mr)
	}
	return out, nil
}
