package reference

import (
	"sort"

	"github.com/smartgroups/smartgroups/engine"
)

// Access returns, for every member with access to a linked resource (SPEC
// §2.4) at the model's current instant, the key
// "<spot>/<resource>/<member>" and the groups giving that access, sorted;
// computed from scratch: a smart group gives its resources to the members
// inSmartGroup says are in it, a static group to the members listing it in
// static_groups.
func (m *Model) Access() map[string][]string {
	out := map[string][]string{}
	for spot, ms := range m.members {
		sd := m.defs.Spot(spot)
		if sd == nil {
			continue
		}
		for gid, g := range sd.Groups {
			if len(g.Resources) == 0 {
				continue
			}
			for id, mem := range ms {
				var in bool
				if g.Type == engine.GroupSmart {
					in = m.safeInSmartGroup(spot, gid, id, mem)
				} else {
					for _, s := range mem.profile.StaticGroups {
						in = in || s == gid
					}
				}
				if !in {
					continue
				}
				for _, r := range g.Resources {
					k := spot + "/" + r.ID + "/" + id
					out[k] = append(out[k], gid)
				}
			}
		}
	}
	for _, gs := range out {
		sort.Strings(gs)
	}
	return out
}
