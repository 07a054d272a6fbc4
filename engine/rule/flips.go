package rule

// flips appends the instants after now at which test(t, ·) can change.
func (d *DateCond) flips(t, now Millis, out []Millis) []Millis {
	switch d.Op {
	case "within_last":
		if t > now {
			out = append(out, t)
		}
		if t+d.A+1 > now {
			out = append(out, t+d.A+1)
		}
	case "more_than_ago":
		if t+d.A+1 > now {
			out = append(out, t+d.A+1)
		}
	}
	return out
}

// FlipInstants appends the instants after now at which a relative date
// trigger in the tree can change value for the member. The error is the
// member view's, from reading activities.
func FlipInstants(n *Node, m MemberView, now Millis, out []Millis) ([]Millis, error) {
	switch n.Kind {
	case NodeAll, NodeAny, NodeNot:
		for _, c := range n.Children {
			var err error
			if out, err = FlipInstants(c, m, now, out); err != nil {
				return nil, err
			}
		}
	case NodeField:
		if n.TimeDependent() {
			if v, ok := fieldValue(n, m); ok {
				out = n.date.flips(v.t, now, out)
			}
		}
	case NodeActivity:
		if n.TimeDependent() {
			acts, err := m.Activities(n.Activity)
			if err != nil {
				return nil, err
			}
			for i := range acts {
				out = n.ActivityFlips(&acts[i], now, out)
			}
		}
	}
	return out, nil
}

// ActivityFlips appends the instants after now at which activity a can
// change whether it counts for an activity trigger with a relative date
// filter (none for other triggers or another resource).
func (n *Node) ActivityFlips(a *Activity, now Millis, out []Millis) []Millis {
	if !n.TimeDependent() || n.Kind != NodeActivity || !n.hasResource(a.Resource) {
		return out
	}
	return n.When.flips(a.TS, now, out)
}

// nextFlip returns the earliest instant after `after` at which test(t, ·)
// can change: the minimum of flips(t, after).
func (d *DateCond) nextFlip(t, after Millis) (Millis, bool) {
	switch d.Op {
	case "within_last":
		if t > after {
			return t, true
		}
		if t+d.A+1 > after {
			return t + d.A + 1, true
		}
	case "more_than_ago":
		if t+d.A+1 > after {
			return t + d.A + 1, true
		}
	}
	return 0, false
}

// NextFlip returns the earliest instant after `after` at which a relative
// date trigger in the tree changes value for the member (LeafNextFlip of
// each), ok false when none will: the rule's value cannot change before
// it, and it is one of FlipInstants(n, m, after). It reads the member's
// activities with binary searches, so m.Activities must return them
// sorted by ts (the engine's are). The error is the member view's, from
// reading activities.
func NextFlip(n *Node, m MemberView, after Millis) (Millis, bool, error) {
	var best Millis
	found := false
	take := func(at Millis, ok bool) {
		if ok && (!found || at < best) {
			best, found = at, true
		}
	}
	switch n.Kind {
	case NodeAll, NodeAny, NodeNot:
		for _, c := range n.Children {
			at, ok, err := NextFlip(c, m, after)
			if err != nil {
				return 0, false, err
			}
			take(at, ok)
		}
	case NodeField, NodeActivity:
		if n.TimeDependent() {
			at, ok, err := LeafNextFlip(n, m, after)
			if err != nil {
				return 0, false, err
			}
			take(at, ok)
		}
	}
	return best, found, nil
}

// NextFlip is NextFlip(r.Root, m, after), reading only the rule's
// time-dependent triggers (collected when it was compiled).
func (r *Rule) NextFlip(m MemberView, after Millis) (Millis, bool, error) {
	if !r.compiled {
		return NextFlip(r.Root, m, after)
	}
	var best Millis
	found := false
	for _, n := range r.timeLeaves {
		at, ok, err := LeafNextFlip(n, m, after)
		if err != nil {
			return 0, false, err
		}
		if ok && (!found || at < best) {
			best, found = at, true
		}
	}
	return best, found, nil
}

// LeafNextFlip is NextFlip of one time-dependent trigger (a relative
// date filter on a field or an activity trigger): the earliest instant
// after `after` at which its value differs from its value at after. For
// an activity trigger it is exact: the count of activities in the window
// only matters where it crosses the trigger's count condition, so an
// activity leaving a window that still holds enough of them is no flip.
func LeafNextFlip(n *Node, m MemberView, after Millis) (Millis, bool, error) {
	if n.Kind == NodeField {
		if v, ok := fieldValue(n, m); ok {
			at, ok := n.date.nextFlip(v.t, after)
			return at, ok, nil
		}
		return 0, false, nil
	}
	if n.Kind != NodeActivity || !n.TimeDependent() {
		return 0, false, nil
	}
	acts, err := m.Activities(n.Activity)
	if err != nil {
		return 0, false, err
	}
	at, ok := activityNextFlip(n, acts, after)
	return at, ok, nil
}

// activityNextFlip finds the first instant after `after` at which the
// count of n's matching activities (sorted by ts) crosses n's count
// condition. An activity at t counts for within_last A from t to t+A
// (it enters at t and leaves at t+A+1), for more_than_ago A from t+A+1 on.
func activityNextFlip(n *Node, acts []Activity, after Millis) (Millis, bool) {
	w := n.When
	within := w.Op == "within_last"
	// The count at after.
	var c int64
	for i := range acts {
		if n.hasResource(acts[i].Resource) && w.test(acts[i].TS, after) {
			c++
		}
	}
	v0 := compareCount(n.CountOp, c, n.CountN)
	// Two streams of instants, each increasing with the activities' ts:
	// enters (within_last: t > after; more_than_ago: t+A+1 > after) and
	// leaves (within_last only: t+A+1 > after).
	shift := w.A + 1
	var ei, li int
	if within {
		ei = searchTS(acts, after)
		li = searchTS(acts, after-shift)
	} else {
		ei = searchTS(acts, after-shift)
		li = len(acts)
	}
	next := func(i int) int {
		for i < len(acts) && !n.hasResource(acts[i].Resource) {
			i++
		}
		return i
	}
	ei, li = next(ei), next(li)
	for ei < len(acts) || li < len(acts) {
		x := maxMillis
		if ei < len(acts) {
			x = acts[ei].TS
			if !within {
				x += shift
			}
		}
		if li < len(acts) && acts[li].TS+shift < x {
			x = acts[li].TS + shift
		}
		// Everything at instant x, then the value at x.
		for ei < len(acts) && enterAt(acts[ei].TS, within, shift) == x {
			c++
			ei = next(ei + 1)
		}
		for li < len(acts) && acts[li].TS+shift == x {
			c--
			li = next(li + 1)
		}
		if compareCount(n.CountOp, c, n.CountN) != v0 {
			return x, true
		}
	}
	return 0, false
}

// enterAt is the instant an activity at t starts counting.
func enterAt(t Millis, within bool, shift Millis) Millis {
	if within {
		return t
	}
	return t + shift
}

// searchTS returns the index of the first activity with ts > bound.
func searchTS(acts []Activity, bound Millis) int {
	lo, hi := 0, len(acts)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if acts[mid].TS <= bound {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

const maxMillis = Millis(^uint64(0) >> 1)
