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
