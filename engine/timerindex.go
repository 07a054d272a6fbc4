package engine

import "github.com/smartgroups/smartgroups/engine/rule"

// timerIndex is a partition's timers in memory: a min-heap of (due, spot,
// ordinal) in the order of the store's timer keys. Replacing or removing
// a member's timer only changes the member's memSlot.due; heap entries
// that no longer match it are dropped when they reach the top, and the
// heap is rebuilt when they outnumber the live timers.
type timerIndex struct {
	h    []timerEntry
	live int
}

type timerEntry struct {
	due  rule.Millis
	ord  uint32
	spot uint32
}

// less orders entries like the timer keys: due, spot name, ordinal.
func (ps *partState) timerLess(a, b timerEntry) bool {
	if a.due != b.due {
		return a.due < b.due
	}
	if a.spot != b.spot {
		return ps.spotList[a.spot].name < ps.spotList[b.spot].name
	}
	return a.ord < b.ord
}

// current reports whether a heap entry is the member's timer.
func (ps *partState) current(x timerEntry) bool {
	ss := ps.spotList[x.spot]
	return x.ord < uint32(len(ss.slots)) && ss.slots[x.ord].due == x.due
}

// setTimer records a member's new timer (noTimer: none).
func (ps *partState) setTimer(ss *spotState, ord uint32, due rule.Millis) {
	s := ss.slot(ord)
	if s.due != noTimer {
		ps.timers.live--
	}
	s.due = due
	if due == noTimer {
		return
	}
	ps.timers.live++
	ps.push(timerEntry{due: due, ord: ord, spot: ss.idx})
	if len(ps.timers.h) > 2*ps.timers.live+1024 {
		ps.rebuildTimers()
	}
}

// rebuildTimers rebuilds the heap from the members' timers.
func (ps *partState) rebuildTimers() {
	h := ps.timers.h[:0]
	for _, ss := range ps.spotList {
		for ord := range ss.slots {
			if d := ss.slots[ord].due; d != noTimer {
				h = append(h, timerEntry{due: d, ord: uint32(ord), spot: ss.idx})
			}
		}
	}
	ps.timers = timerIndex{h: h, live: len(h)}
	for i := len(h)/2 - 1; i >= 0; i-- {
		ps.down(i)
	}
}

// next returns the earliest timer, dropping stale entries on the way.
func (ps *partState) next() (timerEntry, bool) {
	for len(ps.timers.h) > 0 {
		top := ps.timers.h[0]
		if ps.current(top) {
			return top, true
		}
		ps.pop()
	}
	return timerEntry{}, false
}

// popDue removes and returns the timers due by now, in order, at most
// limit of them (negative: all). Their members are left without a timer.
func (ps *partState) popDue(now rule.Millis, out []timerEntry, limit int) []timerEntry {
	for n := 0; limit < 0 || n < limit; n++ {
		x, ok := ps.next()
		if !ok || x.due > now {
			return out
		}
		ps.pop()
		ps.spotList[x.spot].slots[x.ord].due = noTimer
		ps.timers.live--
		out = append(out, x)
	}
	return out
}

func (ps *partState) push(x timerEntry) {
	ps.timers.h = append(ps.timers.h, x)
	h := ps.timers.h
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !ps.timerLess(h[i], h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (ps *partState) pop() {
	h := ps.timers.h
	n := len(h) - 1
	h[0] = h[n]
	ps.timers.h = h[:n]
	ps.down(0)
}

func (ps *partState) down(i int) {
	h := ps.timers.h
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && ps.timerLess(h[r], h[l]) {
			m = r
		}
		if !ps.timerLess(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
