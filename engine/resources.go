package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/smartgroups/smartgroups/engine/rule"
)

// Resource is a resource a group gives access to (SPEC §2.4 "Linked
// resources"): a live, course, channel, forum or collection.
type Resource struct {
	ID    string `json:"id"`
	Type  string `json:"type"`
	Title string `json:"title"`
}

// ResourceTypes are the known resource types, in order.
var ResourceTypes = []string{"live", "course", "channel", "forum", "collection"}

// MaxGroupResources is the most resources one group may list.
const MaxGroupResources = 1000

// checkResources validates a group's resource list: ids are key segments
// of at most 256 bytes (the access key is <spot>/<resource>/<member>),
// types are known, titles are present, no id appears twice and the list
// has at most MaxGroupResources entries.
func checkResources(group string, rs []Resource) *RecordError {
	if len(rs) > MaxGroupResources {
		return rerr("invalid_field", "group %q lists %d resources, more than the limit of %d (max resources per group)", group, len(rs), MaxGroupResources)
	}
	seen := make(map[string]bool, len(rs))
	for i, r := range rs {
		if err := rule.CheckKeyID("resource id", r.ID); err != nil {
			return rerr("invalid_id", "group %q: resources[%d]: %v", group, i, err)
		}
		if !slices.Contains(ResourceTypes, r.Type) {
			return rerr("invalid_field", "group %q: resource %q: type must be one of %s, not %q", group, r.ID, strings.Join(ResourceTypes, ", "), r.Type)
		}
		if strings.TrimSpace(r.Title) == "" {
			return rerr("missing_field", "group %q: resource %q: title is required", group, r.ID)
		}
		if seen[r.ID] {
			return rerr("invalid_field", "group %q: resource %q is listed twice", group, r.ID)
		}
		seen[r.ID] = true
	}
	return nil
}

// HasResource reports whether the group lists resource id.
func (g *GroupDef) HasResource(id string) bool {
	return slices.ContainsFunc(g.Resources, func(r Resource) bool { return r.ID == id })
}

// ResourceIDs returns the ids of the resources a group lists, sorted.
func (g *GroupDef) ResourceIDs() []string {
	out := make([]string, len(g.Resources))
	for i, r := range g.Resources {
		out[i] = r.ID
	}
	slices.Sort(out)
	return out
}

// resourceFingerprint identifies what of a group decides the access it
// gives: its type and the ids of its resources ("" for a group without
// resources, which gives none).
func resourceFingerprint(g *GroupDef) string {
	if g == nil || len(g.Resources) == 0 {
		return ""
	}
	h := sha256.New()
	h.Write([]byte(g.Type))
	for _, id := range g.ResourceIDs() {
		h.Write([]byte{0})
		h.Write([]byte(id))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// resourceGroups returns the ids of the spot's groups that list resources.
func (s *SpotDefs) resourceGroups() []string {
	var out []string
	for id, g := range s.Groups {
		if len(g.Resources) > 0 {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// GroupsGiving returns the groups among a member's smart groups (sorted)
// and static groups (sorted) that give access to resource r, sorted.
func (s *SpotDefs) GroupsGiving(smart, static []string, r string) []string {
	var out []string
	for _, id := range smart {
		if g := s.Groups[id]; g != nil && g.Type == GroupSmart && g.HasResource(r) {
			out = append(out, id)
		}
	}
	for _, id := range static {
		if g := s.Groups[id]; g != nil && g.Type == GroupStatic && g.HasResource(r) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Access returns the resources a member in the given smart and static
// groups has access to, sorted, each with the groups giving it (sorted).
func (s *SpotDefs) Access(smart, static []string) map[string][]string {
	out := map[string][]string{}
	add := func(id string, want GroupType) {
		g := s.Groups[id]
		if g == nil || g.Type != want {
			return
		}
		for _, r := range g.Resources {
			out[r.ID] = append(out[r.ID], id)
		}
	}
	for _, id := range smart {
		add(id, GroupSmart)
	}
	for _, id := range static {
		add(id, GroupStatic)
	}
	for r, gs := range out {
		slices.Sort(gs)
		out[r] = slices.Compact(gs)
	}
	return out
}
