package engine

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/smartgroups/smartgroups/state"
)

// loadPartition builds the in-memory state of partition p with one scan of
// its keys: ordinals, member states (JSON ones re-encoded to binary),
// activity logs, activity-id hashes, erased members' seqs, applied
// fingerprints and blacklist entries; then derives the posting lists and
// the timer index from them. Posting lists left in the store by earlier
// versions are deleted: nothing reads them any more.
func (e *Engine) loadPartition(p int32) error {
	ps := newPartState()
	var (
		enc      stateEncoder
		loadErr  error
		postings bool
	)
	bad := func(k []byte) bool {
		loadErr = fmt.Errorf("engine: load partition %d: malformed key %q", p, k)
		return false
	}
	pp := state.PartitionPrefix(p)
	err := e.st.Scan(pp, state.PrefixEnd(pp), func(k, v []byte) bool {
		if len(k) <= len(pp) {
			return true
		}
		sub, rest := k[len(pp)], k[len(pp)+1:]
		if sub == state.SubPosting {
			postings = true
			return true
		}
		if sub == state.SubOrdCounter {
			if len(v) != 4 {
				return bad(k)
			}
			ps.spot(string(rest)).next = state.DecodeU32(v)
			return true
		}
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return true // keys without a spot: positions, clock, outbox, timers
		}
		spot, rest := string(rest[:i]), rest[i+1:]
		switch sub {
		case state.SubMemberID:
			if len(v) != 4 {
				return bad(k)
			}
			if loadErr = ps.spot(spot).ids.put(string(rest), state.DecodeU32(v)); loadErr != nil {
				return false
			}
		case state.SubMember:
			if len(rest) != 4 {
				return bad(k)
			}
			blob := slices.Clone(v)
			if len(v) == 0 || v[0] != binaryStateVersion {
				st, err := DecodeMemberState(v)
				if err != nil {
					loadErr = fmt.Errorf("engine: load partition %d: member %q: %w", p, k, err)
					return false
				}
				blob = enc.append(nil, st, sortedSeqs(st.Seqs))
			}
			ps.spot(spot).slot(state.DecodeU32(rest)).blob = blob
		case state.SubActivity:
			// ord u32, type 0, i64 ts, u32 n
			j := bytes.IndexByte(rest[min(4, len(rest)):], 0) + 4
			if len(rest) < 5 || j < 4 || len(rest) != j+1+12 {
				return bad(k)
			}
			typ, ok := actTypeIndex[string(rest[4:j])]
			if !ok {
				return bad(k)
			}
			ss := ps.spot(spot)
			s := ss.slot(state.DecodeU32(rest[:4]))
			s.acts = append(s.acts, actEntry{ts: state.DecodeI64(rest[j+1 : j+9]), n: state.DecodeU32(rest[j+9:]),
				res: ss.res.intern(string(v)), typ: typ})
		case state.SubActivityID:
			if len(rest) < 4 {
				return bad(k)
			}
			s := ps.spot(spot).slot(state.DecodeU32(rest[:4]))
			s.seen = append(s.seen, hashID(string(rest[4:])))
		case state.SubSeq:
			j := bytes.IndexByte(rest, 0)
			if j < 0 || len(v) != 8 {
				return bad(k)
			}
			ss := ps.spot(spot)
			id, g := string(rest[:j]), string(rest[j+1:])
			if r, ok := strings.CutPrefix(g, erasedAccessPrefix); ok {
				ss.erasedAccess[id] = append(ss.erasedAccess[id], groupSeq{group: r, seq: state.DecodeU64(v)})
				return true
			}
			ss.erased[id] = append(ss.erased[id], groupSeq{group: g, seq: state.DecodeU64(v)})
		case state.SubApplied:
			if ps.applied[spot] == nil {
				ps.applied[spot] = map[string]string{}
			}
			ps.applied[spot][string(rest)] = string(v)
		case state.SubAppliedRes:
			if ps.appliedRes[spot] == nil {
				ps.appliedRes[spot] = map[string]string{}
			}
			ps.appliedRes[spot][string(rest)] = string(v)
		case state.SubBlacklist:
			j := bytes.IndexByte(rest, 0)
			if j < 0 {
				return bad(k)
			}
			ps.black[blackEntry{spot, string(rest[:j]), string(rest[j+1:])}] = true
		}
		return true
	})
	if err == nil {
		err = loadErr
	}
	if err != nil {
		return err
	}
	lists, err := derive(p, ps)
	if err != nil {
		return err
	}
	if postings {
		b := e.st.NewBatch()
		lp := append(append([]byte(nil), pp...), state.SubPosting)
		if err := b.DeleteRange(lp, state.PrefixEnd(lp)); err != nil {
			_ = b.Close()
			return err
		}
		if err := b.Commit(); err != nil {
			return err
		}
	}
	e.forget(p)
	e.parts[p] = ps
	maps.Copy(e.postings, lists)
	return nil
}

// derive sorts what the scan produced in key order and builds the
// partition's posting lists and timer index.
func derive(p int32, ps *partState) (map[string]*roaring.Bitmap, error) {
	lists := map[string]*roaring.Bitmap{}
	add := func(spot, term string, ord uint32) {
		k := string(state.PostingKey(p, spot, term))
		bm := lists[k]
		if bm == nil {
			bm = roaring.New()
			lists[k] = bm
		}
		bm.Add(ord)
	}
	var buf stateBuf
	for _, ss := range ps.spotList {
		for ord := range ss.slots {
			s := &ss.slots[ord]
			slices.Sort(s.seen)
			s.seen = slices.Compact(s.seen)
			for _, a := range s.acts {
				typ := actTypeNames[a.typ]
				add(ss.name, termActivity(typ), uint32(ord))
				if a.res != 0 {
					add(ss.name, termActivityResource(typ, ss.res.name(a.res)), uint32(ord))
				}
			}
			if s.blob == nil {
				continue
			}
			if err := buf.decode(s.blob); err != nil {
				return nil, fmt.Errorf("engine: load partition %d: member %s#%d: %w", p, ss.name, ord, err)
			}
			m := &member{st: &buf.st}
			add(ss.name, termAll, uint32(ord))
			for _, term := range m.terms() {
				add(ss.name, term, uint32(ord))
			}
			for _, g := range buf.st.Groups {
				add(ss.name, termSmartGroup(g), uint32(ord))
			}
			if buf.st.Timer != nil {
				s.due = *buf.st.Timer
			}
		}
		for id, seqs := range ss.erased {
			slices.SortFunc(seqs, func(a, b groupSeq) int { return strings.Compare(a.group, b.group) })
			ss.erased[id] = seqs
		}
		for id, seqs := range ss.erasedAccess {
			slices.SortFunc(seqs, func(a, b groupSeq) int { return strings.Compare(a.group, b.group) })
			ss.erasedAccess[id] = seqs
		}
	}
	ps.rebuildTimers()
	return lists, nil
}
