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
// date trigger in the tree can change value for the member: the minimum
// of FlipInstants(n, m, after), ok false when it lists none. It finds it
// without listing every instant: an activity trigger's instants grow with
// the activity's ts, so it binary-searches the member's activities, which
// m.Activities must return sorted by ts (the engine's are). The error is
// the member view's, from reading activities.
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
			at, ok, err := leafNextFlip(n, m, after)
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
		at, ok, err := leafNextFlip(n, m, after)
		if err != nil {
			return 0, false, err
		}
		if ok && (!found || at < best) {
			best, found = at, true
		}
	}
	return best, found, nil
}

// leafNextFlip is NextFlip of a time-dependent trigger.
func leafNextFlip(n *Node, m MemberView, after Millis) (Millis, bool, error) {
	if n.Kind == NodeField {
		if v, ok := fieldValue(n, m); ok {
			at, ok := n.date.nextFlip(v.t, after)
			return at, ok, nil
		}
		return 0, false, nil
	}
	acts, err := m.Activities(n.Activity)
	if err != nil {
		return 0, false, err
	}
	w := n.When
	// An activity at t flips at t+A+1 (leaving the window, or becoming
	// old enough) and, for within_last, at t itself (entering it, for an
	// activity ts ahead of the clock). Both grow with t: the first
	// matching activity past each bound gives the earliest of each kind.
	at, ok := firstActivityAfter(n, acts, after-w.A-1, w.A+1)
	if w.Op == "within_last" {
		if at2, ok2 := firstActivityAfter(n, acts, after, 0); ok2 && (!ok || at2 < at) {
			at, ok = at2, true
		}
	}
	return at, ok, nil
}

// firstActivityAfter returns ts+shift of the first activity in acts
// (sorted by ts) with ts > bound that counts for activity trigger n's
// resources.
func firstActivityAfter(n *Node, acts []Activity, bound, shift Millis) (Millis, bool) {
	lo, hi := 0, len(acts)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if acts[mid].TS <= bound {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	for i := lo; i < len(acts); i++ {
		if n.hasResource(acts[i].Resource) {
			return acts[i].TS + shift, true
		}
	}
	return 0, false
}
