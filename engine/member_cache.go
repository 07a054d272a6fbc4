package engine

import "github.com/smartgroups/smartgroups/engine/rule"

// memberCache keeps decoded member states, the activities read from the
// store and ordinals across batches, so a hot member costs no store read
// and no decoding. It only ever holds committed states (it is filled
// after a commit; a failed batch makes the engine unusable) and is
// cleared when a partition's state is dropped or restored.
type memberCache struct {
	max    int
	ords   map[idRef]uint32
	states map[memberRef]cachedMember
}

// cachedMember is a committed member state and the activity lists of the
// types read so far (each sorted like the store keys: by ts, then
// arrival).
type cachedMember struct {
	st   *MemberState
	acts map[string][]rule.Activity
}

func newMemberCache(max int) *memberCache {
	return &memberCache{max: max, ords: map[idRef]uint32{}, states: map[memberRef]cachedMember{}}
}

// keep records the members of a committed transaction, evicting arbitrary
// entries beyond the size limit.
func (c *memberCache) keep(t *txn) {
	if c.max <= 0 {
		return
	}
	for r, m := range t.members {
		c.states[r] = cachedMember{st: m.st, acts: m.acts}
		c.ords[idRef{r.part, r.spot, m.st.ID}] = r.ord
	}
	if len(c.states) > c.max {
		for r, cm := range c.states {
			delete(c.states, r)
			delete(c.ords, idRef{r.part, r.spot, cm.st.ID})
			if len(c.states) <= c.max*9/10 {
				break
			}
		}
	}
	if len(c.ords) > 2*c.max {
		clear(c.ords)
	}
}

func (c *memberCache) clear() {
	clear(c.ords)
	clear(c.states)
}

func hasCached(c *memberCache, r memberRef) bool {
	_, ok := c.states[r]
	return ok
}
