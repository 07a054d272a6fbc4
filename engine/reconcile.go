package engine

import (
	"bytes"
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/smartgroups/smartgroups/state"
)

// applyDefinition validates and applies a definitions record, then brings
// every owned partition in line with it, access included.
func (t *txn) applyDefinition(rec *Record) error {
	if err := t.applyDef(rec); err != nil {
		return err
	}
	return t.flushAccess()
}

// applyDef validates and applies a definitions record to the memberships.
func (t *txn) applyDef(rec *Record) error {
	dc, rerr := DecodeDefinition(*rec, t.e.cfg.Limits)
	if rerr == nil {
		rerr = t.e.defs.Check(dc)
	}
	if rerr != nil {
		t.deadLetter(rec, rerr)
		return nil
	}
	t.ts = noTS
	if dc.Delete {
		if err := t.deleteDefinition(dc); err != nil {
			return err
		}
	} else {
		key := state.DefKey(dc.Kind, dc.Spot, dc.ID, dc.Member)
		if err := t.set(key, rec.Value); err != nil {
			return err
		}
		t.e.defs.Apply(dc)
	}
	switch dc.Kind {
	case "blacklist":
		p := t.e.cfg.PartitionOf(dc.Spot, dc.Member)
		if t.e.owned[p] {
			t.reason = ReasonBlacklist
			return t.syncBlacklist(p, dc.Spot, dc.ID, dc.Member)
		}
	default:
		for _, p := range t.e.ownedSorted() {
			if err := t.reconcileGroups(p, dc.Spot); err != nil {
				return err
			}
		}
	}
	return nil
}

// deleteDefinition removes a definition from the store and the in-memory
// definitions; deleting a group deletes its blacklist.
func (t *txn) deleteDefinition(dc *DefChange) error {
	key := state.DefKey(dc.Kind, dc.Spot, dc.ID, dc.Member)
	if err := t.del(key); err != nil {
		return err
	}
	if dc.Kind == "group" {
		bl := append(state.DefKey("blacklist", dc.Spot, dc.ID, ""), 0)
		if err := t.delRange(bl, state.PrefixEnd(bl)); err != nil {
			return err
		}
	}
	t.e.defs.Apply(dc)
	return nil
}

// reconcilePartition brings a partition in line with all definitions.
func (t *txn) reconcilePartition(p int32) error {
	ps, err := t.partState(p)
	if err != nil {
		return err
	}
	spots := map[string]bool{}
	for _, s := range t.e.defs.Spots() {
		spots[s] = true
	}
	for s := range ps.applied {
		spots[s] = true
	}
	t.ts = noTS
	for _, s := range slices.Sorted(maps.Keys(spots)) {
		if err := t.reconcileGroups(p, s); err != nil {
			return err
		}
	}
	// Blacklist entries: reflected here versus defined.
	type entry = blackEntry
	have := maps.Clone(ps.black)
	want := map[entry]bool{}
	for _, s := range t.e.defs.Spots() {
		sd := t.e.defs.Spot(s)
		for g, ms := range sd.Blacklist {
			for m := range ms {
				if t.e.cfg.PartitionOf(s, m) == p {
					want[entry{s, g, m}] = true
				}
			}
		}
	}
	var diff []entry
	for e := range have {
		if !want[e] {
			diff = append(diff, e)
		}
	}
	for e := range want {
		if !have[e] {
			diff = append(diff, e)
		}
	}
	slices.SortFunc(diff, func(a, b entry) int {
		return cmp.Or(strings.Compare(a.spot, b.spot), strings.Compare(a.group, b.group), strings.Compare(a.member, b.member))
	})
	t.reason = ReasonBlacklist
	for _, e := range diff {
		if err := t.syncBlacklist(p, e.spot, e.group, e.member); err != nil {
			return err
		}
	}
	return t.flushAccess()
}

// syncBlacklist reflects the current blacklist state of (group, member)
// in partition p and re-evaluates the member for the group.
func (t *txn) syncBlacklist(p int32, spot, group, id string) error {
	ps, err := t.partState(p)
	if err != nil {
		return err
	}
	key := state.BlacklistKey(p, spot, group, id)
	if t.e.defs.Blacklisted(spot, group, id) {
		err = t.set(key, nil)
		ps.black[blackEntry{spot, group, id}] = true
	} else {
		err = t.del(key)
		delete(ps.black, blackEntry{spot, group, id})
	}
	if err != nil {
		return err
	}
	sd := t.e.defs.Spot(spot)
	if sd == nil {
		return nil
	}
	t.hist.group = group
	m, err := t.memberByID(p, spot, id, false)
	if err != nil || m == nil {
		return err
	}
	if err := t.reevaluate(m, sd, []string{group}); err != nil {
		return err
	}
	t.release(m)
	return nil
}

// reconcileGroups empties deleted groups and backfills groups whose
// definition changed since partition p last reflected them.
func (t *txn) reconcileGroups(p int32, spot string) error {
	ps, err := t.partState(p)
	if err != nil {
		return err
	}
	applied := ps.applied[spot]
	if applied == nil {
		applied = map[string]string{}
		ps.applied[spot] = applied
	}
	sd := t.e.defs.Spot(spot)
	for _, g := range slices.Sorted(maps.Keys(applied)) {
		if sd != nil {
			if def := sd.Groups[g]; def != nil && def.Type == GroupSmart {
				continue
			}
		}
		t.reason, t.hist.group = ReasonGroupDeleted, g
		if err := t.emptyGroup(p, spot, g); err != nil {
			return err
		}
		if err := t.del(state.AppliedGroupKey(p, spot, g)); err != nil {
			return err
		}
		delete(applied, g)
		var keys [][]byte
		for b := range ps.black {
			if b.spot == spot && b.group == g {
				keys = append(keys, state.BlacklistKey(p, spot, g, b.member))
				delete(ps.black, b)
			}
		}
		slices.SortFunc(keys, bytes.Compare)
		bl := state.BlacklistKey(p, spot, g, "")
		if err := t.delKnownRange(bl, state.PrefixEnd(bl), keys); err != nil {
			return err
		}
	}
	if sd == nil {
		return t.reconcileAccess(p, spot)
	}
	for _, g := range sd.order {
		fp := sd.Fingerprint(g)
		if applied[g] == fp {
			continue
		}
		t.reason, t.hist.group = ReasonDefinition, g
		if err := t.backfill(p, sd, g); err != nil {
			return err
		}
		if err := t.set(state.AppliedGroupKey(p, spot, g), []byte(fp)); err != nil {
			return err
		}
		applied[g] = fp
	}
	return t.reconcileAccess(p, spot)
}

// reconcileAccess emits the access changes of the memberships just
// reconciled, then those of changed resource lists.
func (t *txn) reconcileAccess(p int32, spot string) error {
	if err := t.flushAccess(); err != nil {
		return err
	}
	return t.reconcileResources(p, spot)
}
